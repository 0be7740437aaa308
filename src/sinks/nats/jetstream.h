#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "src/core/error.h"
#include "src/sinks/nats/nats_client.h"
#include "src/sinks/nats/nats_parser.h"

namespace pgfanout::nats {

// How long the server remembers a Nats-Msg-Id (the stream's duplicate_window) when
// pgfanout creates the stream: a re-publish within it is dropped as a duplicate. See
// README.md for why one hour.
inline constexpr std::chrono::seconds kDuplicateWindow{3600};

// The stream a sink publishes to, as its config says.
struct StreamSettings {
  std::string sink_id;
  std::string name;            // the stream
  std::string subject_prefix;  // the sink publishes to <prefix>.<tenant>.<schema>.<table>
  size_t replicas = 1;
};

// What the sink needs to know of the stream it found or made.
struct StreamState {
  bool created = false;       // pgfanout created it just now
  int64_t max_msg_size = -1;  // the stream's limit per message (headers and body); -1: none
  uint64_t last_seq = 0;
};

// A JetStream publish acknowledgement: {"stream":"S","seq":N[,"duplicate":true]}.
struct PubAck {
  std::string stream;
  uint64_t seq = 0;
  bool duplicate = false;  // the server had this Nats-Msg-Id already (within the window)
};

// Reads the reply to a publish. Errors:
// - kSink (retried): no responders (status 503: no stream took the subject, or its leader
//   is being elected), other statuses, JetStream errors that may pass (5xx, limits);
// - kMismatch (the sink stops): a message over the stream's max_msg_size (10054), the
//   subject caught by another stream than the one expected (10060);
// - kProtocol: a reply that is neither an ack nor an error.
Result<PubAck> ParsePubAck(const NatsMessage& reply);

// The JetStream API error in a response ({"error":{"code":…,"err_code":…,"description":…}}).
struct ApiError {
  int code = 0;
  int err_code = 0;
  std::string description;
  std::string ToString() const;  // "stream not found (404, 10059)"
};
std::optional<ApiError> ApiErrorOf(const nlohmann::json& response);

// The $JS.API.STREAM.CREATE request body: subjects ["<prefix>.>"], file storage, limits
// retention with no limits set (discard old), num_replicas, kDuplicateWindow, and a
// description naming the sink (CheckStream reads it back).
std::string StreamCreateRequest(const StreamSettings& settings);

// Whether the subject filter `filter` (tokens, `*`, `>`) matches every subject
// `<prefix>.<a>.<b>.<c>` the sink can publish.
bool FilterCoversPrefix(std::string_view filter, std::string_view prefix);

// Checks a STREAM.INFO (or CREATE) response for what the sink needs. kMismatch, saying what
// to change, when the stream cannot take the sink's messages as acknowledged, deduplicated
// publishes: subjects that do not cover the prefix, acks off (no_ack), sealed, a mirror, or
// a description that names another pgfanout sink (two sinks in one stream would dedupe one
// sink's copy of an event against the other's).
Result<StreamState> CheckStream(const nlohmann::json& info, const StreamSettings& settings);

// Finds the stream ($JS.API.STREAM.INFO) and creates it when missing
// ($JS.API.STREAM.CREATE), then checks it. Errors: kSink when JetStream does not answer
// (not enabled, no meta leader yet, too few servers for the replicas), kMismatch from
// CheckStream or a create the server refuses for good (subjects overlapping another
// stream, replicas > 1 without a cluster), kConnection from the client.
Result<StreamState> EnsureStream(NatsClient& client, const StreamSettings& settings,
                                 std::chrono::milliseconds timeout);

}  // namespace pgfanout::nats
