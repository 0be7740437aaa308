#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "checkpoints/event_log.h"
#include "src/config/config.h"
#include "src/daemon/partition_watch.h"
#include "src/metrics/metrics.h"
#include "src/pgclient/pg_connection.h"
#include "src/pipeline/sink_runner.h"

namespace pgfanout {

// The slot as the source reports it (pg_replication_slots), read on the monitor's own
// connection.
struct SlotView {
  bool read = false;   // false: not read yet, or `error`
  std::string error;   // why the last read failed
  bool exists = false;
  std::string confirmed_flush_lsn, restart_lsn, wal_status, server_lsn;
  std::optional<int64_t> active_pid;
  int64_t retained_wal_bytes = 0;      // pg_current_wal_lsn() - restart_lsn
  std::optional<int64_t> safe_wal_size;  // bytes before max_slot_wal_keep_size invalidates it
  std::chrono::system_clock::time_point checked_at;
};

struct SinkLag {
  std::string id;
  uint64_t events_behind = 0;
  bool events_capped = false;  // at least `events_behind`
  uint64_t bytes_behind = 0;   // WAL between the sink's cursor and its newest undelivered event
  double seconds_behind = 0;   // age of its oldest undelivered event (0 when caught up)
};

struct MonitorSnapshot {
  SlotView slot;
  uint64_t log_bytes = 0;
  std::vector<SinkLag> sinks;
  // The last changes to tracked roots' partitions the stream did not carry (newest last,
  // at most kPartitionChangesKept).
  std::vector<PartitionWatch::Change> partition_changes;
};

// One sample of a sink's lag.
struct LagPoint {
  int64_t unix_ms = 0;
  double seconds_behind = 0;
  uint64_t events_behind = 0;
  uint64_t bytes_behind = 0;
};

// Samples, on a thread of its own every `interval`: the slot (retained WAL, wal_status),
// the event log's size and every sink's lag (events counted up to kCountLimit), keeps an
// hour of lag samples per sink for the lag page, sets the gauges, warns when retained WAL
// passes source.retained_wal_warn, reports partition changes the stream does not carry
// (partition_watch.h), and, with source.heartbeat_interval, writes a
// non-transactional logical message so the slot moves even when nothing else is written.
// Its own libpq connection (blocking calls stay off the replication loop); a failed read
// is shown in the snapshot and retried next time, never fatal.
class Monitor {
 public:
  static constexpr uint64_t kCountLimit = 100'000;
  static constexpr size_t kPartitionChangesKept = 20;

  using SinkStatuses = std::function<std::vector<SinkRunner::Status>()>;
  Monitor(const Config& config, const EventLog& log, MetricsRegistry& metrics,
          SinkStatuses sinks, std::chrono::milliseconds interval = std::chrono::seconds(5));
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Per-sink lag gauges and lag page lines (metrics.per_sink); without, one aggregate:
  // sinks_behind, sink_lag_seconds_max, and a lag page line "(furthest behind)". Set
  // before Start().
  void SetPerSinkSeries(bool per_sink) { per_sink_ = per_sink; }
  // Called, on the monitor's thread, with a tracked table whose sinks no longer equal it
  // after a partition change the stream does not carry (detached, dropped or truncated
  // partition, or one attached with rows): the daemon copies it again for them. Unset:
  // reported only. Set before Start().
  using PartitionRepair = std::function<void(const std::string& table)>;
  void SetPartitionRepair(PartitionRepair repair) { repair_ = std::move(repair); }
  static constexpr const char* kAggregateId = "(furthest behind)";

  void Start();
  void Stop();  // joins the thread; idempotent

  MonitorSnapshot snapshot() const;
  // Per sink, the samples of the last hour, oldest first.
  std::map<std::string, std::vector<LagPoint>> history() const;
  std::chrono::milliseconds interval() const { return interval_; }

 private:
  void Run();
  void Sample();
  SlotView ReadSlot();
  void Heartbeat();
  std::vector<SinkLag> SinkLags();
  void WatchPartitions();

  const Config& config_;
  const EventLog& log_;
  MetricsRegistry& metrics_;
  SinkStatuses sinks_;
  const std::chrono::milliseconds interval_;
  bool per_sink_ = true;
  PartitionRepair repair_;

  std::optional<PgConnection> conn_;  // monitor thread only
  std::chrono::steady_clock::time_point last_heartbeat_{};
  std::chrono::steady_clock::time_point last_wal_warning_{};
  PartitionWatch partitions_;                             // monitor thread only
  std::deque<PartitionWatch::Change> partition_changes_;  // under mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  MonitorSnapshot snapshot_;
  std::map<std::string, std::deque<LagPoint>> history_;
  std::thread thread_;
};

}  // namespace pgfanout
