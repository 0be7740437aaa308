#include "src/sinks/webhook/webhook_sink.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "src/core/failpoint.h"
#include "src/sinks/webhook/address_guard.h"
#include "src/sinks/webhook/response_policy.h"

namespace pgfanout {
namespace {

webhook::PayloadFormatter::Options FormatterOptions(const SinkBasics& basics,
                                                    const WebhookSinkOptions& options) {
  return {.envelope = options.envelope == "debezium" ? webhook::Envelope::kDebezium
                                                     : webhook::Envelope::kPgfanout,
          .sink_id = basics.id,
          .truncate_scope = basics.TruncateScope(),
          .bare_single = basics.batch_size == 1};
}

int64_t UnixMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

WebhookSink::WebhookSink(const SinkBasics& basics, WebhookSinkOptions options)
    : id_(basics.id), options_(std::move(options)), formatter_(FormatterOptions(basics, options_)) {
  where_ = "sink " + id_;
  if (auto url = ParseHttpUrl(options_.url)) {
    const std::string& target = url.value().target;
    where_ += ": receiver " + url.value().Origin() + target.substr(0, target.find('?'));
  }
}

WebhookSink::~WebhookSink() { Stop(); }

std::string WebhookSink::Redact(std::string message) const {
  const auto q = options_.url.find('?');
  if (q == std::string::npos || q + 1 >= options_.url.size()) return message;
  const std::string query = options_.url.substr(q + 1);
  for (size_t at = message.find(query); at != std::string::npos; at = message.find(query, at)) {
    message.replace(at, query.size(), "…");
  }
  return message;
}

Result<void> WebhookSink::CheckAddress(const boost::asio::ip::address& address) const {
  auto reason = webhook::NonPublicReason(address);
  if (!reason) return boost::outcome_v2::success();
  return MakeError(ErrorKind::kInvalidArgument,
                   fmt::format("{}: refused to connect to {}, a {} address; a webhook reaches "
                               "public addresses only unless the sink sets allow_private: true",
                               where_, address.to_string(), *reason));
}

Result<std::optional<TargetPosition>> WebhookSink::Open(const std::optional<SinkCursor>&,
                                                  const Lineage&) {
  Stop();
  if (!signer_) {
    auto signer = webhook::WebhookSigner::Create(options_.secret);
    if (!signer) return signer.error().Wrap("sink " + id_ + ": secret_file");
    signer_.emplace(std::move(signer).value());
  }
  if (!options_.ca_file.empty() && ::access(options_.ca_file.c_str(), R_OK) != 0) {
    return MakeError(
        ErrorKind::kInvalidArgument,
        fmt::format("sink {}: ca_file {}: {}", id_, options_.ca_file, std::strerror(errno)));
  }
  HttpClient::Options options{
      .url = options_.url, .timeout = options_.timeout, .ca_file = options_.ca_file};
  if (!options_.allow_private) {
    options.address_filter = [this](const boost::asio::ip::address& a) { return CheckAddress(a); };
  }
  auto client = HttpClient::Create(std::move(options));
  if (!client) return MakeError(ErrorKind::kInvalidArgument, Redact(client.error().message));
  client_ = std::move(client).value();
  return std::optional<TargetPosition>();
}

Result<void> WebhookSink::Rewind(const SinkCursor&, const Lineage&) {
  // `pgfanout replay` wants the range sent again: forget what was acknowledged.
  pending_.reset();
  return boost::outcome_v2::success();
}

void WebhookSink::Stop() { client_.reset(); }

std::vector<WebhookSink::Request> WebhookSink::Plan(std::span<const ChangeEvent> events) const {
  std::vector<Request> out;
  const size_t n = events.size();
  size_t k = 0;  // next request of the pending cut
  for (size_t i = 0; i < n;) {
    if (pending_ && k < pending_->requests.size()) {
      const Request& p = pending_->requests[k];
      if (p.first == events[i].id && i + p.count <= n) {
        out.push_back(p);
        i += p.count;
        ++k;
        continue;
      }
      k = pending_->requests.size();  // the batch changed from here on: cut afresh
    }
    const size_t start = i == 0 ? 0 : piece_end_[i - 1];
    size_t j = i + 1;
    while (j < n && piece_end_[j] - start <= kMaxBodyBytes) ++j;
    out.push_back({.first = events[i].id, .count = j - i});
    i = j;
  }
  return out;
}

Result<std::string> WebhookSink::Write(std::span<const ChangeEvent> events) {
  if (!client_) return MakeError(ErrorKind::kSink, where_ + ": written before Open");
  const auto now = std::chrono::system_clock::now();
  if (not_before_ && now < *not_before_) {
    return MakeError(
        ErrorKind::kSink,
        fmt::format(
            "{}: nothing sent: the receiver asked (Retry-After) for no request in the "
            "next {} s",
            where_,
            std::chrono::duration_cast<std::chrono::seconds>(*not_before_ - now).count() + 1));
  }
  not_before_.reset();
  // A retry of the batch that failed last keeps its cut, its acknowledged requests and its
  // formatting time, so that the receiver sees the very same requests again.
  if (pending_ && pending_->requests.front().first != events.front().id) pending_.reset();
  const int64_t formatted_ms = pending_ ? pending_->formatted_ms : UnixMillis(now);
  pieces_.clear();
  piece_end_.clear();
  piece_end_.reserve(events.size());
  for (const auto& e : events) {
    formatter_.AppendEvent(e, formatted_ms, pieces_);
    piece_end_.push_back(pieces_.size());
  }
  pending_ = Pending{.requests = Plan(events), .formatted_ms = formatted_ms};
  std::string id;
  size_t begin = 0;
  for (size_t r = 0; r < pending_->requests.size(); ++r) {
    Request& req = pending_->requests[r];
    const size_t end = begin + req.count;
    id = fmt::format("{}+{}", req.first.ToString(), req.count);
    // The earlier requests of the batch are acknowledged, the last is not: a batch half
    // delivered (a crash here leaves the receiver with part of it).
    if (r + 1 == pending_->requests.size()) PGF_TRY(FailpointHit("sink.mid_write"));
    if (!req.acknowledged) {
      PGF_TRY(Post(id, events, begin, end));
      req.acknowledged = true;
    }
    begin = end;
  }
  pending_.reset();
  PGF_TRY(FailpointHit("sink.after_write"));
  return id;
}

Result<void> WebhookSink::Post(std::string_view id, std::span<const ChangeEvent> events,
                               size_t begin, size_t end) {
  const size_t from = begin == 0 ? 0 : piece_end_[begin - 1];
  body_.clear();
  formatter_.AppendBody(id, events.subspan(begin, end - begin),
                        std::string_view(pieces_.data() + from, piece_end_[end - 1] - from), body_);
  const auto sent_at = std::chrono::system_clock::now();
  const int64_t timestamp =
      std::chrono::duration_cast<std::chrono::seconds>(sent_at.time_since_epoch()).count();
  HttpRequest request{.method = "POST", .body = std::string(body_.data(), body_.size())};
  PGF_TRY(auto signature, signer_->Sign(id, timestamp, request.body));
  request.headers = {{"Content-Type", "application/json"},
                     {"webhook-id", std::string(id)},
                     {"webhook-timestamp", std::to_string(timestamp)},
                     {"webhook-signature", std::move(signature)}};
  auto response = client_->Send(request);
  if (!response) {
    Error e = response.error();
    // The guard's refusal already names the sink.
    if (!e.message.starts_with(where_)) e = e.Wrap("sink " + id_);
    e.message = Redact(std::move(e.message));
    return e;
  }
  auto verdict = webhook::JudgeResponse(response.value(), where_, sent_at);
  if (verdict.delivered) return boost::outcome_v2::success();
  if (verdict.not_before) not_before_ = verdict.not_before;
  // After a refusal the connection may be in any state; the retry starts afresh.
  client_->Close();
  return verdict.error;
}

}  // namespace pgfanout
