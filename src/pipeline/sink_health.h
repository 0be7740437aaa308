#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>

#include "checkpoints/event_log.h"
#include "src/core/error.h"
#include "src/metrics/metrics.h"

namespace pgfanout {

// A sink's failures and what follows from each: the directive (retry_policy.h), the
// backoff before the next attempt, what status() shows, the record kept in the log's
// metadata for `pgfanout status` (another process), the error counter and sink_up. The
// next success clears the error, in memory and (one write, only when one is on record) in
// the log.
//
// Threads: Fail() and Succeeded() from the runner's turn; shown() from any.
class SinkHealth {
 public:
  // What status() shows; kept in the log's metadata (meta::SinkStateKey) between runs.
  struct Record {
    std::string last_error;                                         // empty when healthy
    bool stopped = false;                                           // gave up: needs a person
    std::optional<std::chrono::system_clock::time_point> retry_at;  // next attempt
  };
  SinkHealth(std::string sink_id, EventLog& log) : sink_id_(std::move(sink_id)), log_(log) {}

  // Counts errors into sink_errors_total{kind} (with the sink label when `per_sink`) and
  // sets `up` (per-sink series only; may be null).
  void SetMetrics(MetricsRegistry* registry, bool per_sink, Gauge* up) {
    registry_ = registry;
    per_sink_ = per_sink;
    up_ = up;
  }

  struct Verdict {
    // Wait this long before the next attempt; nullopt: the sink stops.
    std::optional<std::chrono::milliseconds> retry_in;
    bool stop_process = false;  // the log itself failed: the daemon must stop
  };
  // Records a failure of the current attempt (the n-th in a row sets the backoff) and logs it.
  Verdict Fail(const Error& error);
  // A batch (or an open) succeeded: the failures in a row start over, the error is cleared.
  void Succeeded();

  Record shown() const {
    std::lock_guard lock(mu_);
    return shown_;
  }
  bool stopped() const {
    std::lock_guard lock(mu_);
    return shown_.stopped;
  }

 private:
  void Store(const Record& record);

  const std::string sink_id_;
  EventLog& log_;
  MetricsRegistry* registry_ = nullptr;
  bool per_sink_ = true;
  Gauge* up_ = nullptr;
  int attempt_ = 0;  // failures in a row
  // An error may be on record in the log's metadata (from this run, or from one before a
  // restart): the next success clears it.
  bool on_record_ = true;
  mutable std::mutex mu_;
  Record shown_;
};

}  // namespace pgfanout
