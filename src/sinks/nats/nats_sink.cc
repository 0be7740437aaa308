#include "src/sinks/nats/nats_sink.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "src/core/failpoint.h"

namespace pgfanout {
namespace {

using Clock = std::chrono::steady_clock;

// Bytes queued before they are handed to the I/O thread: large writes, few wake-ups.
constexpr size_t kSendChunk = 256 << 10;
// nats-server's default max_control_line: the HPUB line (subject, reply, sizes) must fit.
constexpr size_t kMaxControlLine = 4096;

nats::NatsClient::Options ClientOptions(const std::string& id, const NatsSinkOptions& c) {
  nats::NatsClient::Options o{
      .user = c.user, .password = c.password, .name = "pgfanout sink " + id, .timeout = c.timeout};
  o.servers.push_back(c.url);
  o.servers.insert(o.servers.end(), c.servers.begin(), c.servers.end());
  return o;
}

std::map<std::string, std::vector<std::string>, std::less<>> Keys(
    const std::vector<TableConfig>& tables) {
  std::map<std::string, std::vector<std::string>, std::less<>> keys;
  for (const auto& t : tables) {
    if (!t.key.empty()) keys[t.QualifiedName()] = t.key;
  }
  return keys;
}

}  // namespace

NatsSink::NatsSink(SinkBasics basics, NatsSinkOptions options)
    : basics_(std::move(basics)),
      options_(std::move(options)),
      stream_{.sink_id = basics_.id,
              .name = options_.stream,
              .subject_prefix = options_.subject_prefix,
              .replicas = options_.replicas},
      encoder_(options_.subject_prefix, options_.stream, Keys(basics_.tracked),
               basics_.TruncateScope()),
      client_(ClientOptions(basics_.id, options_)) {}

NatsSink::~NatsSink() { Stop(); }

Result<void> NatsSink::CheckMappings() const {
  for (size_t i = 0; i < basics_.tables.size(); ++i) {
    const SinkTableConfig& t = basics_.tables[i];
    auto source = ParseQualifiedName(t.source, "public");
    const bool renamed = source && !t.target.empty() && t.target != source->second;
    if (renamed || !t.columns.empty() || !t.rename.empty() || !t.computed.empty() ||
        t.delete_mode != DeleteMode::kHard) {
      return MakeError(ErrorKind::kInvalidArgument,
                       fmt::format("tables[{}] ({}): a nats sink publishes whole rows under the "
                                   "source's names; target, columns, rename, computed and "
                                   "delete: soft are for database sinks",
                                   i, t.source));
    }
  }
  return boost::outcome_v2::success();
}

Result<std::optional<TargetPosition>> NatsSink::Open(const std::optional<SinkCursor>&,
                                                  const Lineage&) {
  Stop();
  PGF_TRY(CheckMappings());
  PGF_TRY(client_.Connect());
  auto st = nats::EnsureStream(client_, stream_, options_.timeout);
  if (!st) {
    client_.Close();
    return st.error();
  }
  max_msg_size_ = st.value().max_msg_size;
  open_ = true;
  return std::optional<TargetPosition>();
}

Result<std::string> NatsSink::Write(std::span<const ChangeEvent> events) {
  if (!open_) return MakeError(ErrorKind::kSink, "NATS sink written before Open");
  // A connection lost while the sink was idle, or a server going away (lame duck mode):
  // nothing of this batch is out yet, so connecting again (to the next server) is safe.
  if (!client_.healthy()) PGF_TRY(client_.Connect());
  auto last = Publish(events);
  if (!last) {
    // Acks still on their way must not be taken for the next batch's: a new connection.
    client_.Close();
    return last.error().Wrap(
        fmt::format("NATS stream {} at {}", options_.stream, client_.server_address()));
  }
  PGF_TRY(FailpointHit("sink.after_write"));
  return fmt::format("{}:{}", options_.stream, last.value());
}

Result<uint64_t> NatsSink::Publish(std::span<const ChangeEvent> events) {
  const size_t n = events.size();
  const size_t max_payload = client_.server().max_payload;
  sizes_.assign(n, 0);
  acked_.assign(n, 0);
  const size_t mid = (n + 1) / 2;  // sink.mid_write: after this many are out
  size_t sent = 0, acked = 0, in_flight_bytes = 0;
  uint64_t first_reply = 0, last_seq = 0;
  auto deadline = Clock::now() + options_.timeout;
  while (acked < n) {
    while (sent < n && sent - acked < kMaxInFlight && in_flight_bytes < kMaxInFlightBytes) {
      const ChangeEvent& ev = events[sent];
      encoder_.Encode(ev, subject_, headers_, body_);
      const size_t size = headers_.size() + body_.size();
      if (size > max_payload || (max_msg_size_ >= 0 && size > static_cast<size_t>(max_msg_size_))) {
        return MakeError(
            ErrorKind::kMismatch,
            fmt::format("event {} ({}) is {} bytes, over the {} limit of {} bytes: raise {}",
                        ev.id.ToString(), subject_, size,
                        size > max_payload ? "server's max_payload" : "stream's max_msg_size",
                        size > max_payload ? max_payload : static_cast<size_t>(max_msg_size_),
                        size > max_payload ? "max_payload in nats-server's config"
                                           : "the stream's max_msg_size"));
      }
      if (subject_.size() + 80 > kMaxControlLine) {
        return MakeError(ErrorKind::kMismatch,
                         fmt::format("event {}: its subject is {} bytes, too long for a NATS "
                                     "control line ({} bytes): {}…",
                                     ev.id.ToString(), subject_.size(), kMaxControlLine,
                                     subject_.substr(0, 80)));
      }
      uint64_t number = 0;
      const std::string reply = client_.NewReply(&number);
      if (sent == 0) first_reply = number;
      client_.Publish(subject_, reply, headers_, body_);
      sizes_[sent] = static_cast<uint32_t>(size);
      in_flight_bytes += size;
      ++sent;
      if (client_.queued() >= kSendChunk) PGF_TRY(client_.Send());
      if (sent == mid) {
        PGF_TRY(client_.Flush(deadline));
        PGF_TRY(FailpointHit("sink.mid_write"));
      }
    }
    PGF_TRY(client_.Send());
    auto reply = client_.Receive(deadline);
    if (!reply) {
      return reply.error().Wrap(
          fmt::format("{} of {} messages of the batch unacknowledged", n - acked, n));
    }
    auto number = client_.ReplyNumber(reply.value().subject);
    if (!number || *number < first_reply || *number >= first_reply + sent) continue;  // stale
    const size_t i = static_cast<size_t>(*number - first_reply);
    if (acked_[i]) continue;
    auto ack = nats::ParsePubAck(reply.value());
    if (!ack) {
      return ack.error().Wrap(fmt::format("publishing event {}", events[i].id.ToString()));
    }
    if (ack.value().stream != options_.stream) {
      return MakeError(ErrorKind::kMismatch,
                       fmt::format("event {} was stored by stream {}, not {}: that stream "
                                   "catches {}.>; give this sink another subject_prefix",
                                   events[i].id.ToString(), ack.value().stream, options_.stream,
                                   options_.subject_prefix));
    }
    acked_[i] = 1;
    ++acked;
    in_flight_bytes -= sizes_[i];
    last_seq = std::max(last_seq, ack.value().seq);
    deadline = Clock::now() + options_.timeout;  // progress: the wait starts again
  }
  return last_seq;
}

void NatsSink::Stop() {
  client_.Close();
  open_ = false;
}

}  // namespace pgfanout
