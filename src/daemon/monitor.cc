#include "src/daemon/monitor.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace pgfanout {
namespace {

constexpr auto kHistory = std::chrono::hours(1);
constexpr auto kWalWarningEvery = std::chrono::minutes(5);

std::optional<int64_t> Int(const PgResult& r, int col) {
  auto v = GetValue(r, 0, col);
  if (!v) return std::nullopt;
  return std::stoll(*v);
}

double Seconds(std::chrono::system_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

Monitor::Monitor(const Config& config, const EventLog& log, MetricsRegistry& metrics,
                 SinkStatuses sinks, std::chrono::milliseconds interval)
    : config_(config),
      log_(log),
      metrics_(metrics),
      sinks_(std::move(sinks)),
      interval_(interval),
      partitions_(config) {}

Monitor::~Monitor() { Stop(); }

void Monitor::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Monitor::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

MonitorSnapshot Monitor::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

std::map<std::string, std::vector<LagPoint>> Monitor::history() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::vector<LagPoint>> out;
  for (const auto& [id, points] : history_) out[id].assign(points.begin(), points.end());
  return out;
}

void Monitor::Run() {
  while (true) {
    Sample();
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, interval_, [this] { return stop_; })) return;
  }
}

SlotView Monitor::ReadSlot() {
  SlotView v{.checked_at = std::chrono::system_clock::now()};
  if (!conn_) {
    auto c = PgConnection::Connect(config_.source.dsn, PgConnection::Mode::kNormal, "source",
                                   config_.source.password);
    if (!c) {
      v.error = c.error().message;
      return v;
    }
    conn_.emplace(std::move(c).value());
  }
  auto r = conn_->Exec(
      "reading the slot",
      "SELECT confirmed_flush_lsn::text, restart_lsn::text, wal_status, active_pid, "
      "pg_current_wal_lsn()::text, "
      "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint, safe_wal_size "
      "FROM pg_replication_slots WHERE slot_name = $1",
      {config_.source.slot});
  if (!r) {
    v.error = r.error().message;
    if (r.error().kind == ErrorKind::kConnection) conn_.reset();
    return v;
  }
  v.read = true;
  const auto& res = r.value();
  if (PQntuples(res.get()) == 0) return v;
  v.exists = true;
  v.confirmed_flush_lsn = GetValue(res, 0, 0).value_or("");
  v.restart_lsn = GetValue(res, 0, 1).value_or("");
  v.wal_status = GetValue(res, 0, 2).value_or("");
  v.active_pid = Int(res, 3);
  v.server_lsn = GetValue(res, 0, 4).value_or("");
  v.retained_wal_bytes = Int(res, 5).value_or(0);
  v.safe_wal_size = Int(res, 6);
  return v;
}

void Monitor::Heartbeat() {
  const auto every = config_.source.heartbeat_interval;
  if (every.count() <= 0 || !conn_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_heartbeat_ < every) return;
  last_heartbeat_ = now;
  // Non-transactional: written at once, whatever else this connection does. pgoutput
  // does not pass it on (messages are off); the server's position moves past it.
  auto r = conn_->Exec("writing a heartbeat",
                       "SELECT pg_logical_emit_message(false, 'pgfanout.heartbeat', now()::text)");
  if (!r) {
    spdlog::warn("source: heartbeat failed: {}", r.error().message);
    metrics_.CounterOf("errors_total", "Errors, by component and kind",
                       {{"component", "monitor"}, {"kind", ToString(r.error().kind)}})
        .Add();
  }
}

std::vector<SinkLag> Monitor::SinkLags() {
  std::vector<SinkLag> out;
  const auto last = log_.LastDurableEvent();
  const auto now = std::chrono::system_clock::now();
  for (const auto& st : sinks_()) {
    SinkLag lag{.id = st.sink_id};
    const EventId at = st.cursor.value_or(EventId{});
    // A caught-up sink of some tenants has nothing pending, whatever its stored cursor
    // (not moved for other tenants' events).
    if (last && at < *last && !st.idle) {
      auto count = log_.CountAfter(at, kCountLimit);
      lag.events_behind = count ? count.value() : 0;
      lag.events_capped = lag.events_behind >= kCountLimit;
      if (lag.events_behind > 0) {
        lag.bytes_behind = last->commit_lsn.value() - std::min(last->commit_lsn, at.commit_lsn).value();
        auto next = log_.Read(at, 1);
        if (next && !next.value().empty()) {
          auto committed = std::chrono::system_clock::time_point(
              std::chrono::microseconds(next.value()[0].commit_time_us));
          lag.seconds_behind = std::max(0.0, Seconds(now - committed));
        }
      }
    }
    out.push_back(lag);
  }
  return out;
}

void Monitor::WatchPartitions() {
  if (!conn_ || !partitions_.active()) return;
  auto changes = partitions_.Check(*conn_);
  if (!changes) {
    if (changes.error().kind == ErrorKind::kConnection) conn_.reset();
    spdlog::warn("source: could not read the partitions of the tracked tables: {}",
                 changes.error().message);
    return;
  }
  for (const auto& c : changes.value()) {
    metrics_
        .CounterOf("partition_changes_total",
                   "Changes to a tracked table's partitions that the stream does not carry",
                   {{"table", c.table}, {"change", c.what}})
        .Add();
    const bool repaired = repair_ && c.what != "identity" && (c.what != "added" || c.had_rows);
    const std::string fix =
        repaired ? fmt::format(
                       "pgfanout copies {} again for every sink that receives it (a "
                       "resnapshot that replaces; pgfanout status shows it)",
                       c.table)
                 : fmt::format(
                       "to make the sinks equal the source again, run pgfanout "
                       "resnapshot --sink ID --table {} for each sink that receives it",
                       c.table);
    if (c.what == "identity") {
      spdlog::error(
          "table {}: new partition {}: {} Until then its UPDATEs and DELETEs reach "
          "the sinks wrong (pgfanout refuses to start with it)",
          c.table, c.partition, c.detail);
    } else if (c.what == "added" && !c.had_rows) {
      spdlog::info("table {}: partition {} was created or attached empty: nothing to copy", c.table,
                   c.partition);
    } else if (c.what == "added") {
      spdlog::warn(
          "table {}: partition {} was attached with rows, which never passed through the "
          "WAL, so no sink has them; {}",
          c.table, c.partition, fix);
    } else if (c.what == "removed") {
      spdlog::warn(
          "table {}: partition {} was detached or dropped. PostgreSQL sends no "
          "deletes for the rows it held, so the sinks still have them; {}",
          c.table, c.partition, fix);
    } else {
      spdlog::warn(
          "table {}: partition {} was truncated or rewritten. PostgreSQL sends nothing "
          "for a TRUNCATE of one partition, so the sinks may still have its rows (VACUUM "
          "FULL and CLUSTER look the same to pgfanout and change no rows); {}",
          c.table, c.partition, fix);
    }
    if (repaired) repair_(c.table);
  }
  std::lock_guard lock(mu_);
  for (auto& c : changes.value()) {
    partition_changes_.push_back(std::move(c));
    if (partition_changes_.size() > kPartitionChangesKept) partition_changes_.pop_front();
  }
}

void Monitor::Sample() {
  SlotView slot = ReadSlot();
  Heartbeat();
  WatchPartitions();
  if (!slot.error.empty()) {
    metrics_.CounterOf("errors_total", "Errors, by component and kind",
                       {{"component", "monitor"}, {"kind", "connection"}})
        .Add();
  }
  const uint64_t warn = config_.source.retained_wal_warn;
  if (slot.exists && warn > 0 && static_cast<uint64_t>(slot.retained_wal_bytes) >= warn) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_wal_warning_ >= kWalWarningEvery) {
      last_wal_warning_ = now;
      spdlog::warn(
          "slot {}: the source retains {} MiB of WAL for it (source.retained_wal_warn: {} MiB; "
          "wal_status {}{}). Is pgfanout keeping up, and is its slot confirmed?",
          config_.source.slot, slot.retained_wal_bytes >> 20, warn >> 20, slot.wal_status,
          slot.safe_wal_size ? fmt::format(", {} MiB until max_slot_wal_keep_size invalidates it",
                                           *slot.safe_wal_size >> 20)
                             : "");
    }
  }
  std::vector<SinkLag> lags = SinkLags();
  const uint64_t log_bytes = log_.ApproximateSize();

  metrics_.GaugeOf("slot_retained_wal_bytes", "WAL the source keeps for the slot (from restart_lsn)")
      .Set(static_cast<double>(slot.retained_wal_bytes));
  metrics_.GaugeOf("slot_active", "1 when the slot has an active walsender")
      .Set(slot.active_pid ? 1 : 0);
  metrics_.GaugeOf("event_log_bytes", "Approximate size of the event log on disk")
      .Set(static_cast<double>(log_bytes));
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  std::lock_guard lock(mu_);
  auto remember = [&](const std::string& id, const SinkLag& lag) {
    auto& points = history_[id];
    points.push_back({.unix_ms = now_ms,
                      .seconds_behind = lag.seconds_behind,
                      .events_behind = lag.events_behind,
                      .bytes_behind = lag.bytes_behind});
    const int64_t oldest = now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(kHistory).count();
    while (!points.empty() && points.front().unix_ms < oldest) points.pop_front();
  };
  if (!per_sink_) {
    SinkLag worst{.id = kAggregateId};
    size_t behind = 0;
    for (const auto& lag : lags) {
      behind += lag.events_behind > 0;
      if (lag.seconds_behind >= worst.seconds_behind) worst = lag;
    }
    metrics_.GaugeOf("sinks_behind", "Sinks with events in the log they have not taken")
        .Set(static_cast<double>(behind));
    metrics_.GaugeOf("sink_lag_seconds_max", "Age of the oldest undelivered event of any sink")
        .Set(worst.seconds_behind);
    remember(kAggregateId, worst);
  }
  for (const auto& lag : lags) {
    if (!per_sink_) break;
    const Labels l = {{"sink", lag.id}};
    metrics_.GaugeOf("sink_lag_events", "Events in the log the sink has not taken (capped at 100000)", l)
        .Set(static_cast<double>(lag.events_behind));
    metrics_.GaugeOf("sink_lag_bytes", "WAL bytes between the sink's cursor and its newest undelivered event", l)
        .Set(static_cast<double>(lag.bytes_behind));
    metrics_.GaugeOf("sink_lag_seconds", "Age of the sink's oldest undelivered event", l)
        .Set(lag.seconds_behind);
    remember(lag.id, lag);
  }
  snapshot_ =
      MonitorSnapshot{.slot = std::move(slot),
                      .log_bytes = log_bytes,
                      .sinks = std::move(lags),
                      .partition_changes = {partition_changes_.begin(), partition_changes_.end()}};
}

}  // namespace pgfanout
