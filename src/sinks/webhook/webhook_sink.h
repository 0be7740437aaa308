#pragma once

#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "src/httpclient/http_client.h"
#include "src/sinks/sink.h"
#include "src/sinks/webhook/payload.h"
#include "src/sinks/webhook/signature.h"

namespace pgfanout {

// POSTs batches of events as signed JSON to one HTTP endpoint (Standard Webhooks headers;
// payload formats, the address guard and error classes in README.md).
//
// Delivery: Write() returns success only once the receiver answered 2xx to every request
// of the batch; that answer is the acknowledgement the cursor waits for. Input is
// at-least-once, and so is delivery: after a failure or a crash the receiver may get events
// again, with the same event ids (the idempotency key). Within one run, a retried batch is
// sent as the same requests (same webhook-id, same events, same body) and requests the
// receiver already acknowledged are not sent again.
//
// A batch is cut into requests of at most kMaxBodyBytes (a single larger event goes
// alone). Threads: one SinkRunner thread calls Open/Write/Stop; one request at a time.
class WebhookSink final : public Sink {
 public:
  WebhookSink(const SinkBasics& basics, WebhookSinkOptions options);
  ~WebhookSink() override;

  // Checks the secret and the URL (kInvalidArgument: the sink stops) and prepares the
  // client; connects lazily. Returns no position: the receiver holds the stream's state,
  // and the runner resumes from its own cursor.
  Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                             const Lineage& lineage) override;
  // Errors: kConnection (resolve, connect, TLS, timeout) and kSink (408, 429, 5xx; or a
  // Retry-After not yet passed) are retried by the runner; kMismatch (any other status) and
  // kInvalidArgument (an address the guard refuses) stop this sink.
  Result<std::string> Write(std::span<const ChangeEvent> events) override;
  Result<void> Rewind(const SinkCursor& to, const Lineage& lineage) override;
  void Stop() override;

  static constexpr size_t kMaxBodyBytes = 8 << 20;

 private:
  // One request of a batch: events [begin, end) of the batch.
  struct Request {
    EventId first;
    size_t count = 0;
    bool acknowledged = false;
  };
  // The requests of a batch that failed, kept for its retry (same cut, same body).
  struct Pending {
    std::vector<Request> requests;
    int64_t formatted_ms = 0;
  };

  // Cuts `events` into requests: the pending batch's cut where it still applies, then
  // greedily up to kMaxBodyBytes.
  std::vector<Request> Plan(std::span<const ChangeEvent> events) const;
  Result<void> Post(std::string_view id, std::span<const ChangeEvent> events, size_t begin,
                    size_t end);
  Result<void> CheckAddress(const boost::asio::ip::address& address) const;
  // `message` with the URL's query (which may hold a token) replaced by "?…".
  std::string Redact(std::string message) const;

  std::string id_;
  WebhookSinkOptions options_;
  std::string where_;  // "sink <id>: <origin><path>", for messages
  std::optional<webhook::WebhookSigner> signer_;
  webhook::PayloadFormatter formatter_;
  std::unique_ptr<HttpClient> client_;
  std::optional<Pending> pending_;
  // A receiver's Retry-After (429, 503): nothing is sent before it.
  std::optional<std::chrono::system_clock::time_point> not_before_;
  // Reused across batches: the events' JSON pieces, where each ends, and one body.
  fmt::memory_buffer pieces_;
  std::vector<size_t> piece_end_;
  fmt::memory_buffer body_;
};

}  // namespace pgfanout
