#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "src/config/config.h"
#include "src/pipeline/sink_runner.h"

namespace pgfanout {

// Deletes events every sink has passed and that are older than log.retain (whole
// transactions only, so a replay from a retained commit LSN never gets half of one).
// Under log.lagging_sinks: hold, a sink's undelivered events are kept however old and a
// warning names the sink once a minute; under drop they are trimmed, the trim point is
// recorded first for each sink that had not taken them (meta::TrimmedPastKey) and
// the sink stops. A sink of some tenants that is caught up (Status::idle) holds nothing,
// however old its stored cursor: events of other tenants are not its to wait for. A sink still in
// its first copy (no cursor) is not lagging: what it needs is kept under either policy.
class Retention {
 public:
  Retention(const LogConfig& config, EventLog& log) : config_(config), log_(log) {}

  // One pass over the log; `runners` are the running sinks.
  Result<void> Trim(const std::vector<SinkRunner*>& runners);
  // Once per state dir, before the first Trim(): a state dir from before per-sink trim
  // marks (meta::TrimmedPastKey) gets one for each sink behind its log-wide mark.
  Result<void> MarkSinksTrimmedBefore();

 private:
  Result<void> WarnLaggingSinks(const std::vector<SinkRunner*>& runners, int64_t cutoff_us,
                                std::chrono::system_clock::time_point now);

  const LogConfig& config_;
  EventLog& log_;
  std::map<std::string, std::chrono::system_clock::time_point> last_lag_warning_;
};

}  // namespace pgfanout
