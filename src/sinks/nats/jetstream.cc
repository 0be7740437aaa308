#include "src/sinks/nats/jetstream.h"

#include <fmt/format.h>

#include <vector>

namespace pgfanout::nats {
namespace {

// JetStream API error codes (nats-server's server/errors.json) the sink treats apart.
constexpr int kStreamNotFound = 10059;
constexpr int kStreamNameInUse = 10058;
constexpr int kSubjectsOverlap = 10065;
constexpr int kReplicasNotSupported = 10074;
constexpr int kInsufficientResources = 10023;
constexpr int kMessageTooLarge = 10054;
constexpr int kStreamNotMatch = 10060;

std::vector<std::string_view> Tokens(std::string_view s) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (true) {
    size_t dot = s.find('.', at);
    out.push_back(s.substr(at, dot == std::string_view::npos ? dot : dot - at));
    if (dot == std::string_view::npos) return out;
    at = dot + 1;
  }
}

Result<nlohmann::json> ParseResponse(const NatsMessage& m, std::string_view what) {
  if (m.status == 503) {
    return MakeError(ErrorKind::kSink,
                     fmt::format("{}: no responders: JetStream does not answer (not enabled on "
                                 "the server, or the cluster has no meta leader yet)",
                                 what));
  }
  if (m.status != 0) {
    return MakeError(ErrorKind::kSink,
                     fmt::format("{}: status {} {}", what, m.status, m.description));
  }
  auto j = nlohmann::json::parse(m.payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return MakeError(ErrorKind::kProtocol, fmt::format("{}: the reply is not a JSON object: {}",
                                                       what, m.payload.substr(0, 200)));
  }
  return j;
}

}  // namespace

std::string ApiError::ToString() const {
  return fmt::format("{} ({}, {})", description, code, err_code);
}

std::optional<ApiError> ApiErrorOf(const nlohmann::json& response) {
  if (!response.is_object() || !response.contains("error")) return std::nullopt;
  const auto& e = response["error"];
  ApiError out;
  if (e.is_object()) {
    if (e.contains("code") && e["code"].is_number_integer()) out.code = e["code"].get<int>();
    if (e.contains("err_code") && e["err_code"].is_number_integer()) {
      out.err_code = e["err_code"].get<int>();
    }
    if (e.contains("description") && e["description"].is_string()) {
      out.description = e["description"].get<std::string>();
    }
  } else if (e.is_string()) {
    out.description = e.get<std::string>();
  }
  if (out.description.empty()) out.description = "JetStream error";
  return out;
}

Result<PubAck> ParsePubAck(const NatsMessage& reply) {
  if (reply.status == 503) {
    return MakeError(ErrorKind::kSink,
                     "no responders: no stream took the subject (the stream was deleted, or "
                     "its leader is being elected)");
  }
  PGF_TRY(auto j, ParseResponse(reply, "publish"));
  if (auto e = ApiErrorOf(j)) {
    if (e->err_code == kMessageTooLarge) {
      return MakeError(ErrorKind::kMismatch, "the stream refused the message: " + e->ToString() +
                                                 "; raise the stream's max_msg_size");
    }
    if (e->err_code == kStreamNotMatch) {
      return MakeError(ErrorKind::kMismatch,
                       "the subject is caught by another stream than the sink's: " + e->ToString() +
                           "; give this sink its own subject_prefix");
    }
    return MakeError(ErrorKind::kSink, "the stream refused the message: " + e->ToString());
  }
  PubAck ack;
  if (!j.contains("stream") || !j["stream"].is_string() || !j.contains("seq") ||
      !j["seq"].is_number_unsigned()) {
    return MakeError(ErrorKind::kProtocol, "the reply to a publish is not a JetStream ack: " +
                                               reply.payload.substr(0, 200));
  }
  ack.stream = j["stream"].get<std::string>();
  ack.seq = j["seq"].get<uint64_t>();
  ack.duplicate =
      j.contains("duplicate") && j["duplicate"].is_boolean() && j["duplicate"].get<bool>();
  return ack;
}

std::string StreamCreateRequest(const StreamSettings& s) {
  nlohmann::json c = {
      {"name", s.name},
      {"description",
       fmt::format("pgfanout sink {}: change events of <{}>.<tenant>.<schema>.<table>", s.sink_id,
                   s.subject_prefix)},
      {"subjects", {s.subject_prefix + ".>"}},
      {"retention", "limits"},
      {"discard", "old"},
      {"storage", "file"},
      {"num_replicas", s.replicas},
      {"duplicate_window",
       std::chrono::duration_cast<std::chrono::nanoseconds>(kDuplicateWindow).count()},
      {"max_msgs", -1},
      {"max_bytes", -1},
      {"max_age", 0},
      {"max_consumers", -1}};
  return c.dump();
}

bool FilterCoversPrefix(std::string_view filter, std::string_view prefix) {
  // The sink's subjects: the prefix's tokens, then three arbitrary ones.
  const auto want = Tokens(prefix);
  const size_t length = want.size() + 3;
  const auto f = Tokens(filter);
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == ">") return i == f.size() - 1 && i < length;  // takes one or more tokens
    if (i >= length) return false;
    if (f[i] == "*") continue;
    if (i >= want.size() || f[i] != want[i]) return false;  // a literal where ours vary
  }
  return f.size() == length;
}

Result<StreamState> CheckStream(const nlohmann::json& info, const StreamSettings& s) {
  auto mismatch = [&](const std::string& why) {
    return MakeError(ErrorKind::kMismatch, fmt::format("stream {} {}", s.name, why));
  };
  if (!info.contains("config") || !info["config"].is_object()) {
    return MakeError(ErrorKind::kProtocol,
                     fmt::format("stream {}: the stream info has no config", s.name));
  }
  const auto& c = info["config"];
  StreamState st;
  std::vector<std::string> subjects;
  if (c.contains("subjects") && c["subjects"].is_array()) {
    for (const auto& v : c["subjects"]) {
      if (v.is_string()) subjects.push_back(v.get<std::string>());
    }
  }
  bool covered = false;
  for (const auto& f : subjects) covered = covered || FilterCoversPrefix(f, s.subject_prefix);
  if (!covered) {
    return mismatch(fmt::format(
        "exists, but its subjects [{}] do not cover {}.> where this sink publishes: add {}.> to "
        "the stream's subjects (nats stream edit {}), or set the sink's stream or "
        "subject_prefix to a pair that match",
        fmt::join(subjects, ", "), s.subject_prefix, s.subject_prefix, s.name));
  }
  if (c.value("no_ack", false)) {
    return mismatch(
        "has acks turned off (no_ack), so a publish cannot be known durable: "
        "turn them on or use another stream");
  }
  if (c.value("sealed", false)) return mismatch("is sealed: it takes no more messages");
  if (c.contains("mirror") && !c["mirror"].is_null()) {
    return mismatch("is a mirror of another stream and takes no publishes");
  }
  const std::string description = c.value("description", "");
  const std::string ours = "pgfanout sink " + s.sink_id + ":";
  if (description.rfind("pgfanout sink ", 0) == 0 && description.rfind(ours, 0) != 0) {
    return mismatch(fmt::format(
        "belongs to another pgfanout sink ('{}'): give each sink its own stream and "
        "subject_prefix (one stream would deduplicate one sink's copy of an event against "
        "the other's)",
        description));
  }
  if (c.contains("max_msg_size") && c["max_msg_size"].is_number_integer()) {
    st.max_msg_size = c["max_msg_size"].get<int64_t>();
    if (st.max_msg_size == 0) st.max_msg_size = -1;
  }
  if (info.contains("state") && info["state"].is_object()) {
    st.last_seq = info["state"].value("last_seq", uint64_t{0});
  }
  return st;
}

Result<StreamState> EnsureStream(NatsClient& client, const StreamSettings& s,
                                 std::chrono::milliseconds timeout) {
  const std::string where =
      fmt::format("stream {} (via NATS at {})", s.name, client.server_address());
  for (int attempt = 0;; ++attempt) {
    PGF_TRY(auto reply, client.Request("$JS.API.STREAM.INFO." + s.name, "", timeout));
    PGF_TRY(auto info, ParseResponse(reply, where));
    auto e = ApiErrorOf(info);
    if (!e) return CheckStream(info, s);
    if (e->err_code != kStreamNotFound) {
      return MakeError(ErrorKind::kSink,
                       fmt::format("{}: cannot read its info: {}", where, e->ToString()));
    }
    PGF_TRY(auto created,
            client.Request("$JS.API.STREAM.CREATE." + s.name, StreamCreateRequest(s), timeout));
    PGF_TRY(auto made, ParseResponse(created, where));
    auto ce = ApiErrorOf(made);
    if (!ce) {
      PGF_TRY(auto st, CheckStream(made, s));
      st.created = true;
      return st;
    }
    const std::string why = fmt::format("{}: cannot create it: {}", where, ce->ToString());
    switch (ce->err_code) {
      case kStreamNameInUse:  // made by someone else meanwhile: read it again
        if (attempt == 0) continue;
        return MakeError(ErrorKind::kSink, why);
      case kSubjectsOverlap:
        return MakeError(ErrorKind::kMismatch,
                         why + fmt::format("; {}.> overlaps another stream's subjects: use that "
                                           "stream (stream:) or another subject_prefix",
                                           s.subject_prefix));
      case kReplicasNotSupported:
        return MakeError(ErrorKind::kMismatch,
                         why + fmt::format("; replicas: {} needs a JetStream cluster, set "
                                           "replicas: 1 for a single server",
                                           s.replicas));
      case kInsufficientResources:
        return MakeError(
            ErrorKind::kSink,
            why + fmt::format(" (replicas: {} needs that many JetStream servers up)", s.replicas));
      default:
        return MakeError(ce->code >= 500 ? ErrorKind::kSink : ErrorKind::kMismatch, why);
    }
  }
}

}  // namespace pgfanout::nats
