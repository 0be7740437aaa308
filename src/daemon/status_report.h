#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "src/config/config.h"
#include "src/core/lsn.h"
#include "src/daemon/monitor.h"
#include "src/pipeline/sink_runner.h"

namespace pgfanout {

// What the run loop knows of the source connection.
struct SourceState {
  // starting, connecting, streaming (the leader: it holds the slot), standby (another
  // pgfanout holds the slot; this one delivers nothing and takes over when it frees),
  // reconnecting, stopping, halted
  std::string state = "starting";
  std::string reason;  // why it is not streaming (empty when it is)
  std::string system_id;
  uint32_t timeline = 0;
  Lsn received_lsn, reported_flush_lsn, durable_lsn;
  std::optional<EventId> last_event;
  uint64_t reconnects = 0;
  std::string last_error;
  std::optional<std::chrono::system_clock::time_point> retry_at;
};

// Which sinks /status lists: `?sink=ID`, `?state=stopped|retrying|running`, paged by
// `page` (from 1) and `per_page` (1 to 10000, default 1000).
struct StatusQuery {
  std::optional<std::string> sink;
  std::optional<std::string> state;
  size_t page = 1;
  size_t per_page = 1000;
};
// kInvalidArgument naming the parameter for anything else.
Result<StatusQuery> ParseStatusQuery(std::string_view query);
// A query string's `key=value` pairs, in order, percent-decoded ('+' is a space);
// kInvalidArgument naming `route` and the key for a bad escape.
Result<std::vector<std::pair<std::string, std::string>>> ParseQueryPairs(std::string_view query,
                                                                         std::string_view route);

// The JSON of /status (see README "Operating it"). No secret reaches it: DSNs are not
// included, and error texts are the redacted ones the components log. Besides the sinks
// the query selects: how many sinks are in each state, and the 20 furthest behind.
std::string StatusJson(const Config& config, const SourceState& source,
                       const MonitorSnapshot& monitor,
                       const std::vector<SinkRunner::Status>& sinks,
                       const StatusQuery& query = {});

// The JSON of /lag.json: per sink, [unix_ms, seconds_behind, events_behind, bytes_behind]
// samples of the last hour, and the sampling interval.
std::string LagHistoryJson(const std::map<std::string, std::vector<LagPoint>>& history,
                           std::chrono::milliseconds interval);

}  // namespace pgfanout
