#include "src/daemon/commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>

#include "checkpoints/event_log.h"
#include "checkpoints/log_identity.h"
#include "checkpoints/meta_records.h"
#include "src/daemon/backfill.h"
#include "src/daemon/sink_factory.h"
#include "src/pgclient/pg_connection.h"
#include "src/pipeline/sink_open.h"
#include "src/pipeline/sink_runner.h"
#include "src/pipeline/target_position.h"
#include "src/source/source_row_fetcher.h"

namespace pgfanout {
namespace {

std::string Describe(const std::optional<EventId>& id) {
  return id ? id->ToString() : std::string("(none)");
}

// Counts durable events after `from`, stopping at `limit` (status must stay cheap).
uint64_t CountAfter(const EventLog& log, EventId from, uint64_t limit) {
  uint64_t n = 0;
  while (n < limit) {
    auto events = log.Read(from, 10'000);
    if (!events || events.value().empty()) break;
    n += events.value().size();
    from = events.value().back().id;
  }
  return n;
}

void PrintSlot(const Config& config) {
  auto conn = PgConnection::Connect(config.source.dsn, PgConnection::Mode::kNormal, "source",
                                    config.source.password);
  if (!conn) {
    fmt::print("source:    unreachable: {}\n", conn.error().message);
    return;
  }
  auto r = conn.value().Exec("reading slot",
                             "SELECT confirmed_flush_lsn, restart_lsn, wal_status, active_pid, "
                             "pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), "
                             "pg_current_wal_lsn() FROM pg_replication_slots WHERE slot_name = $1",
                             {config.source.slot});
  if (!r) {
    fmt::print("slot:      cannot read: {}\n", r.error().message);
    return;
  }
  if (PQntuples(r.value().get()) == 0) {
    fmt::print("slot:      {} does not exist on the source\n", config.source.slot);
    return;
  }
  const auto& res = r.value();
  fmt::print("slot:      {} confirmed {} restart {} wal_status {} retains {} (server at {}){}\n",
             config.source.slot, GetValue(res, 0, 0).value_or("-"),
             GetValue(res, 0, 1).value_or("-"), GetValue(res, 0, 2).value_or("-"),
             GetValue(res, 0, 4).value_or("-"), GetValue(res, 0, 5).value_or("-"),
             GetValue(res, 0, 3) ? " active pid " + *GetValue(res, 0, 3) : " inactive");
}

Result<std::unique_ptr<EventLog>> OpenForReading(const Config& config) {
  return OpenRocksDbEventLogReadOnly(config.state_dir + "/log");
}

}  // namespace

int ShowCheckpoints(const Config& config) {
  auto log = OpenForReading(config);
  if (!log) {
    spdlog::error("{}", log.error().message);
    return 1;
  }
  auto& l = *log.value();
  fmt::print("state dir: {}\n", config.state_dir);
  fmt::print(
      "log:       durable to {} (last event {}), oldest retained {}\n", l.DurableLsn().ToString(),
      Describe(l.LastDurableEvent()),
      Describe(l.FirstRetainedEvent().has_value() ? l.FirstRetainedEvent().value() : std::nullopt));
  auto cursors = l.ListCursors();
  if (!cursors) {
    spdlog::error("{}", cursors.error().message);
    return 1;
  }
  for (const auto& [id, cursor] : cursors.value()) {
    fmt::print("sink {}: applied {}\n", id, cursor.applied.ToString());
  }
  return 0;
}

int ShowStatus(const Config& config, const std::string& sink_id) {
  if (!sink_id.empty() && !config.FindSink(sink_id)) {
    spdlog::error("{}: no sink with id '{}'", config.path, sink_id);
    return 2;
  }
  auto log = OpenForReading(config);
  if (!log) {
    spdlog::error("{}", log.error().message);
    return 1;
  }
  auto& l = *log.value();
  PrintSlot(config);
  fmt::print("log:       durable to {} (last event {}), {} bytes on disk\n",
             l.DurableLsn().ToString(), Describe(l.LastDurableEvent()), l.ApproximateSize());
  constexpr uint64_t kCountLimit = 1'000'000;
  for (const auto& sink : config.sinks) {
    if (!sink_id.empty() && sink.id != sink_id) continue;
    auto cursor = l.LoadCursor(sink.id);
    if (!cursor) {
      fmt::print("sink {}: cannot read cursor: {}\n", sink.id, cursor.error().message);
      continue;
    }
    std::string tenants;
    for (const auto& t : sink.tenants) tenants += (tenants.empty() ? "" : ",") + t;
    EventId at = cursor.value() ? cursor.value()->applied : EventId{};
    uint64_t behind = CountAfter(l, at, kCountLimit);
    // WAL bytes between the sink's position and the newest event it has yet to pass
    // (event-less records after it, such as keepalive positions, are nothing to deliver).
    const auto last = l.LastDurableEvent();
    uint64_t bytes = behind > 0 && last && last->commit_lsn > at.commit_lsn
                         ? last->commit_lsn.value() - at.commit_lsn.value()
                         : 0;
    fmt::print(
        "sink {} ({}) tenants [{}]: applied {}, {}{} events behind, {} bytes of WAL behind\n",
        sink.id, sink.type(), tenants, cursor.value() ? at.ToString() : "(not started)",
        behind >= kCountLimit ? "at least " : "", behind, bytes);
    auto backfill = meta::Load(l, meta::BackfillStatusKey(sink.id));
    if (backfill && backfill.value()) fmt::print("  {}\n", backfill.value()->line);
    auto asked = meta::Load(l, meta::ResnapshotKey(sink.id));
    if (asked && asked.value()) {
      fmt::print("  resnapshot of {} asked ({}), not done yet\n",
                 fmt::join(asked.value()->tables, ", "), asked.value()->origin);
    }
    auto state = meta::Load(l, meta::SinkStateKey(sink.id));
    if (!state || !state.value() || state.value()->message.empty()) continue;
    std::string when = "stopped: needs a person (fix the cause, restart pgfanout)";
    if (!state.value()->stopped && state.value()->retry_at_ms > 0) {
      auto in =
          state.value()->retry_at_ms - std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count();
      when = in > 0 ? fmt::format("retrying in {} ms", in) : "retrying now";
    }
    fmt::print("  last error: {}\n  {}\n", state.value()->message, when);
  }
  return 0;
}

int BackfillCommand(const Config& config, const std::string& sink_id, const std::string& table,
                    size_t connections) {
  const SinkConfig* sc = config.FindSink(sink_id);
  if (!sc) {
    spdlog::error("{}: no sink with id '{}'", config.path, sink_id);
    return 2;
  }
  // Asked for, a copy is made whatever the destination holds, and it replaces the sink's
  // rows there; of every table the sink maps, it also moves the cursor to its snapshot.
  BackfillOptions options{.connections = connections, .replace = true};
  if (!table.empty()) {
    auto name = ParseQualifiedName(table, "public");
    const TableConfig* tc = name ? config.FindTable(name->first, name->second) : nullptr;
    // Receives(): a per-tenant sink never gets a table without a tenant column, whose
    // copy would carry every tenant's rows.
    if (tc == nullptr || !sc->Receives(*tc)) {
      spdlog::error("sink {} receives no table {} (see tables: and the sink's tables:)", sink_id,
                    table);
      return 2;
    }
    options.tables.push_back(name->first + "." + name->second);
  } else {
    for (const auto& t : config.tables) {
      if (sc->Receives(t)) options.tables.push_back(t.QualifiedName());
    }
    if (options.tables.empty()) {
      spdlog::error("sink {} receives no table (see tables: and the sink's tables:)", sink_id);
      return 2;
    }
  }
  auto opened = OpenRocksDbEventLog(config.state_dir + "/log");
  if (!opened) {
    spdlog::error(
        "{} (is pgfanout run still running? backfill needs it stopped; a running "
        "daemon backfills new sinks and tables by itself)",
        opened.error().message);
    return 1;
  }
  auto& log = *opened.value();
  auto lineage = LoadLineage(log, config.source.confirm == SourceConfig::Confirm::kSinks);
  if (!lineage || !lineage.value()) {
    spdlog::error(
        "the state dir has no slot yet: run `pgfanout run` once first, so that the "
        "stream covers everything after the copy");
    return 1;
  }
  auto sink = MakeSink(*sc, config.tables);
  if (!sink) {
    spdlog::error("{}", sink.error().message);
    return 1;
  }
  static std::atomic<bool> interrupted{false};
  std::signal(SIGINT, [](int) { interrupted = true; });
  std::signal(SIGTERM, [](int) { interrupted = true; });
  options.stopping = [] { return interrupted.load(); };
  auto run = [&]() -> Result<std::optional<Lsn>> {
    PGF_TRY(auto opened, OpenSinkAtCursor(*sink.value(), log, sink_id, *lineage.value()));
    const auto& [stored, theirs] = opened;
    if (theirs) {
      PGF_TRY(auto verdict, JudgeTargetPosition(*theirs, stored, *lineage.value(), log));
      if (verdict.trusted && (!stored || stored->applied < theirs->applied)) {
        PGF_TRY(log.StoreCursor(sink_id, SinkCursor{.applied = theirs->applied,
                                                    .token = theirs->applied.ToString()}));
      }
    }
    return BackfillSink(config, *sc, *sink.value(), log, options);
  };
  auto copied = run();
  sink.value()->Stop();
  if (!copied) {
    spdlog::error("backfill of sink {} stopped: {} (run it again to resume)", sink_id,
                  copied.error().message);
    return 1;
  }
  return 0;
}

int ReplaySink(const Config& config, const std::string& sink_id, Lsn from) {
  const SinkConfig* sc = config.FindSink(sink_id);
  if (!sc) {
    spdlog::error("{}: no sink with id '{}'", config.path, sink_id);
    return 2;
  }
  auto opened = OpenRocksDbEventLog(config.state_dir + "/log");
  if (!opened) {
    spdlog::error("{}", opened.error().message);
    return 1;
  }
  auto& log = *opened.value();
  auto first = log.FirstRetainedEvent();
  auto last = log.LastDurableEvent();
  if (!first || !first.value() || !last || from > last->commit_lsn) {
    spdlog::error(
        "cannot replay from {}: the event log holds no event at or after it "
        "(log: {} .. {})",
        from.ToString(), Describe(first ? first.value() : std::nullopt), Describe(last));
    return 1;
  }
  if (from < first.value()->commit_lsn) {
    spdlog::error(
        "cannot replay from {}: the log retains events from {} on only (raise "
        "log.retain to keep more)",
        from.ToString(), first.value()->commit_lsn.ToString());
    return 1;
  }
  auto stored = log.LoadCursor(sink_id);
  if (!stored) {
    spdlog::error("{}", stored.error().message);
    return 1;
  }
  // Just before the first event at `from`: (from - 1, max ordinal).
  EventId before{Lsn(from.value() - 1), UINT32_MAX};
  SinkCursor rewound{.applied = before,
                     .token = stored.value() ? stored.value()->token : std::string()};
  if (stored.value() && stored.value()->applied < before) {
    spdlog::error("sink {} has not reached {} yet (applied {}); nothing to replay", sink_id,
                  from.ToString(), stored.value()->applied.ToString());
    return 1;
  }
  auto sink = MakeSink(*sc, config.tables);
  if (!sink) {
    spdlog::error("{}", sink.error().message);
    return 1;
  }
  auto lineage = LoadLineage(log, config.source.confirm == SourceConfig::Confirm::kSinks);
  if (!lineage || !lineage.value()) {
    spdlog::error("the state dir has not met its source yet: nothing to replay");
    return 1;
  }
  if (auto r = sink.value()->Rewind(rewound, *lineage.value()); !r) {
    spdlog::error("cannot rewind sink {} to {}: {}", sink_id, from.ToString(), r.error().message);
    return 1;
  }
  // The sink keeps what it holds; the rewound cursor's token says so (for JSONL: the file
  // length), so replayed events are appended after it. A sink that never stored a cursor
  // gets one too, so it starts at `from` rather than at the oldest retained event.
  auto rewind =
      stored.value() ? log.RewindCursor(sink_id, rewound) : log.StoreCursor(sink_id, rewound);
  if (!rewind) {
    spdlog::error("{}", rewind.error().message);
    return 1;
  }
  SinkRunner runner(*sc, config.tables, std::move(sink).value(), log, nullptr);
  runner.SetRowFetcher(std::make_unique<SourceRowFetcher>(config.source, config.tables));
  auto done = runner.RunUntil(*last);
  auto st = runner.status();
  runner.Stop();
  if (!done) {
    spdlog::error("replay of sink {} stopped at {}: {}", sink_id, Describe(st.cursor),
                  done.error().message);
    return 1;
  }
  fmt::print("replayed {} events into sink {} from {} through {}\n", st.events_delivered, sink_id,
             from.ToString(), Describe(st.cursor));
  return 0;
}

}  // namespace pgfanout
