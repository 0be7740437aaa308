#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "src/sinks/nats/jetstream.h"
#include "src/sinks/nats/nats_client.h"
#include "src/sinks/nats/nats_event.h"
#include "src/sinks/sink.h"

namespace pgfanout {

// Publishes events to a NATS JetStream stream (see README.md): one message per event on
// `<subject_prefix>.<tenant>.<schema>.<table>`, with `Nats-Msg-Id: <EventId>` so that the
// server drops a re-publish within the stream's duplicate window.
//
// - Open() connects (url, then servers; after a lost connection the next one first),
//   finds the stream or creates it (kDuplicateWindow, file storage, `replicas`), and checks
//   that it can take the sink's subjects. It resumes from `stored`: the stream keeps no
//   position of its own that could be trusted past a cluster's leader change.
// - Write() publishes the batch pipelined (at most kMaxInFlight messages or
//   kMaxInFlightBytes unacknowledged at a time) and returns only once every message is
//   acknowledged by the stream (stored, or a duplicate of a stored one): durable as the
//   stream's replicas and sync settings make it. `timeout` bounds each wait without
//   progress. Any missing or negative ack fails the whole batch (the runner re-publishes
//   it from the cursor; duplicates are dropped by the server). The token it returns is
//   "<stream>:<sequence of the batch's last message>", for people.
// - Errors: kConnection (connection refused, lost, timed out: retried), kSink (JetStream
//   refused or did not answer, e.g. no responders during a leader election: retried),
//   kMismatch (a stream or server the sink cannot use, an event too large for it: the sink
//   stops, the message says what to change), kInvalidArgument (a config it cannot use),
//   kProtocol (the server broke the protocol).
//
// Threads: one SinkRunner thread calls it (the client runs an I/O thread of its own).
class NatsSink final : public Sink {
 public:
  static constexpr size_t kMaxInFlight = 4096;
  static constexpr size_t kMaxInFlightBytes = 16 << 20;

  NatsSink(SinkBasics basics, NatsSinkOptions options);
  ~NatsSink() override;

  Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                             const Lineage& lineage) override;
  Result<std::string> Write(std::span<const ChangeEvent> events) override;
  void Stop() override;

 private:
  // Refuses table mappings a stream sink cannot honour (columns, renames, computed
  // columns, soft deletes).
  Result<void> CheckMappings() const;
  // Publishes the batch and collects every ack; returns the last message's sequence.
  Result<uint64_t> Publish(std::span<const ChangeEvent> events);

  SinkBasics basics_;
  NatsSinkOptions options_;
  nats::StreamSettings stream_;
  nats::NatsEventEncoder encoder_;
  nats::NatsClient client_;  // kept across Open()s: it remembers which server failed
  bool open_ = false;
  int64_t max_msg_size_ = -1;  // the stream's, -1: none
  // Scratch, reused per message and batch.
  std::string subject_, headers_, body_;
  std::vector<uint32_t> sizes_;
  std::vector<uint8_t> acked_;
};

}  // namespace pgfanout
