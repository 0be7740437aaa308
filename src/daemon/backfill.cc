#include "src/daemon/backfill.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "checkpoints/log_identity.h"
#include "checkpoints/meta_records.h"
#include "src/core/failpoint.h"
#include "src/core/predicate.h"
#include "src/pipeline/sink_runner.h"
#include "src/source/snapshot_reader.h"

namespace pgfanout {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kReportEvery = std::chrono::seconds(2);

using Progress = meta::BackfillProgress;

// The tracked tables a sink receives rows of.
std::vector<std::string> MappedTables(const Config& config, const SinkConfig& sink) {
  std::vector<std::string> out;
  for (const auto& t : config.tables) {
    if (sink.Receives(t)) out.push_back(t.QualifiedName());
  }
  return out;
}

Error Cancelled() { return MakeError(ErrorKind::kCancelled, "backfill interrupted by shutdown"); }

// Which tables to copy now; empty: none. Records the sink's tables when nothing is to do.
Result<std::vector<std::string>> TablesToCopy(const Config& config, const SinkConfig& sink,
                                              EventLog& log, const BackfillOptions& options,
                                              bool has_cursor) {
  const auto mapped = MappedTables(config, sink);
  if (!options.tables.empty()) return options.tables;
  PGF_TRY(auto known_record, meta::Load(log, meta::SinkTablesKey(sink.id)));
  std::vector<std::string> copy;
  if (!has_cursor || options.replace) {
    copy = mapped;
  } else if (known_record && !known_record->tables.empty()) {
    const auto& known = known_record->tables;
    for (const auto& t : mapped) {
      if (std::find(known.begin(), known.end(), t) == known.end()) copy.push_back(t);
    }
  }
  // A sink that predates this bookkeeping, or wants no backfill: remember its tables.
  if (copy.empty() || !sink.backfill) {
    PGF_TRY(meta::Store(log, meta::SinkTablesKey(sink.id), meta::SinkTables{mapped}));
    return std::vector<std::string>{};
  }
  return copy;
}

// Whether `tables` holds every table the sink maps.
bool CoversAll(const Config& config, const SinkConfig& sink,
               const std::vector<std::string>& tables) {
  for (const auto& t : MappedTables(config, sink)) {
    if (std::find(tables.begin(), tables.end(), t) == tables.end()) return false;
  }
  return true;
}

}  // namespace

Result<std::optional<Lsn>> BackfillSink(const Config& config, const SinkConfig& sink_config, Sink& sink,
                          EventLog& log, const BackfillOptions& options) {
  const std::string& id = sink_config.id;
  const bool live = options.round.count() > 0;
  auto stopping = [&] { return options.stopping && options.stopping(); };
  PGF_TRY(auto stored, log.LoadCursor(id));
  PGF_TRY(std::optional<Progress> progress, meta::Load(log, meta::BackfillProgressKey(id)));
  if (live && !stored) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "sink " + id + ": a copy while streaming needs the sink's cursor");
  }
  // Between batches the stream is where the runner says; the round leaves it there.
  if (progress && live && options.stream_at) progress->resume_at = *options.stream_at;
  std::vector<std::string> tables;
  if (progress) {
    tables = progress->tables;
  } else {
    PGF_TRY(tables, TablesToCopy(config, sink_config, log, options, stored.has_value()));
    if (tables.empty()) return std::optional<Lsn>();
  }
  std::vector<TableConfig> table_configs;
  for (const auto& name : tables) {
    auto dot = name.find('.');
    const TableConfig* t = config.FindTable(name.substr(0, dot), name.substr(dot + 1));
    if (!t) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "sink " + id + ": cannot backfill " + name + ", it is not in tables:");
    }
    // A per-tenant sink never receives a table without a tenant column (the router drops
    // its rows): a copy would hand it every tenant's rows, and a replace would clear them.
    if (!sink_config.Receives(*t)) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "sink " + id + ": cannot backfill " + name +
                           ": the sink does not receive it (a per-tenant sink and a table "
                           "without tenant_column)");
    }
    table_configs.push_back(*t);
  }
  std::shared_ptr<void> admitted;
  if (options.admit) {
    PGF_TRY(admitted, options.admit());
  }
  // The main slot must exist first: the stream has to cover everything after the snapshot.
  while (true) {
    PGF_TRY(auto source, meta::Load(log, meta::SourceKey()));
    if (source && !source->slot.empty()) break;
    if (stopping()) return Cancelled();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  static std::atomic<int> serial{0};
  const std::string slot = fmt::format("pgfanout_backfill_{}_{}", ::getpid(), serial++);
  PGF_TRY(auto reader, SnapshotReader::Begin(config.source.dsn, config.source.password, slot));
  const Lsn snapshot = reader->consistent_lsn();
  if (!progress) {
    // The stream resumes just before the snapshot's point when the copy gives the sink all
    // its rows (a new sink; a copy that replaces every table it maps); otherwise the copied
    // tables ride on the sink's cursor, which stays.
    const EventId snapshot_point{Lsn(snapshot.value() - 1), UINT32_MAX};
    // A sink that cannot take back rows (a change log) keeps its cursor, so the changes
    // between it and the snapshot still reach it, unless retention trimmed them.
    bool cursor_events_gone = false;
    if (stored) {
      PGF_TRY(auto trimmed, meta::Load(log, meta::TrimmedPastKey(id)));
      cursor_events_gone = trimmed && stored->applied < trimmed->through;
    }
    // A live copy never moves the cursor: the sink's stream goes on from it.
    const bool whole =
        !live && (!stored || (options.replace && CoversAll(config, sink_config, tables) &&
                              (sink.ReplacesRows() || cursor_events_gone)));
    progress = Progress{
        .first = snapshot,
        .resume_at = whole && (!stored || stored->applied < snapshot_point) ? snapshot_point
                                                                          : stored->applied,
        .tables = tables,
        .states = std::vector<TableCopyState>(tables.size()),
        .rows_done = std::vector<uint64_t>(tables.size(), 0),
        .replace = options.replace};
  }
  const std::vector<std::string> tenants =
      sink_config.AllTenants() ? std::vector<std::string>{} : sink_config.tenants;
  PGF_TRY(auto described, reader->Describe(table_configs, tenants));
  for (auto& t : described) {
    // The sink's own where (the copy holds the rows its stream does), and a resnapshot's.
    SinkTableConfig fallback;
    const SinkTableConfig* mapping = sink_config.FindTable(t.config.QualifiedName(), fallback);
    const std::pair<std::string, std::string> wheres[] = {
        {mapping ? mapping->where : std::string(), "where"}, {options.where, "the copy's where"}};
    for (const auto& [where, name] : wheres) {
      auto sql = WhereSql(where, t.schema->columns);
      if (!sql) {
        return MakeError(ErrorKind::kInvalidArgument,
                         fmt::format("sink {}: table {}: {}: {}", id, t.config.QualifiedName(),
                                     name, sql.error().message));
      }
      if (sql.value().empty()) continue;
      t.config.row_filter = t.config.row_filter.empty()
                                ? sql.value()
                                : "(" + t.config.row_filter + ") AND " + sql.value();
    }
  }
  for (size_t i = 0; i < described.size(); ++i) {
    PGF_TRY(reader->Plan(described[i], tenants, options.connections, progress->states[i]));
  }
  PGF_TRY(reader->DonePlanning());
  PGF_TRY(meta::Store(log, meta::BackfillProgressKey(id), *progress));
  std::vector<std::shared_ptr<const TableSchema>> schemas;
  for (const auto& t : described) schemas.push_back(t.schema);
  if (progress->replace && !progress->replace_begun) {
    if (live) {
      PGF_TRY(sink.BeginLiveReplace(schemas));
    } else {
      PGF_TRY(sink.BeginReplace(schemas));
    }
    progress->replace_begun = true;
    PGF_TRY(meta::Store(log, meta::BackfillProgressKey(id), *progress));
  }

  uint64_t total = 0, done_before = 0;
  for (size_t i = 0; i < described.size(); ++i) {
    total += std::max(described[i].estimated_rows, progress->rows_done[i]);
    done_before += progress->rows_done[i];
  }
  // A live copy's later rounds say so at debug level: its progress lines tell the rest.
  spdlog::log(live && done_before > 0 ? spdlog::level::debug : spdlog::level::info,
              "sink {}: {} {} table(s), ~{} rows{}, as of {} over {} connection(s)", id,
              live ? "copying again, while it streams," : "backfilling", tables.size(), total,
              done_before ? fmt::format(" ({} already copied)", done_before) : "",
              snapshot.ToString(), options.connections);

  // Snapshot rows are inserts as of just before the snapshot's consistent point.
  const Lsn version(snapshot.value() - 1);
  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  // Moved with every chunk for its token (the JSONL sink keeps the lines it covers).
  SinkCursor cursor{.applied = progress->resume_at,
                    .token = stored ? stored->token : std::string()};
  if (config.source.confirm == SourceConfig::Confirm::kSinks) {
    // While the copy runs the destination holds part of the rows, and only this state dir
    // knows which: its position is written under this log's own lineage, which another
    // state dir never resumes from (a standby copies again). The end of the copy writes
    // the slot-vouched one.
    PGF_TRY(auto own, LoadLineage(log));
    PGF_TRY(sink.Rewind(cursor, own.value_or(Lineage{})));
  }
  uint32_t ordinal = 0;
  const auto started = Clock::now();
  auto last_report = started;
  uint64_t copied = 0;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  bool round_over = false;
  const char* what = live ? "resnapshot" : "backfill";
  // `quiet`: stored and shown, logged at debug level (a live copy's round ends).
  auto report = [&](bool final, bool quiet = false) -> Result<void> {
    const double secs = std::chrono::duration<double>(Clock::now() - started).count();
    const double rate = secs > 0 ? static_cast<double>(copied) / secs : 0;
    std::string line =
        fmt::format("{} {} of ~{} rows, {:.0f} rows/s", what, done_before + copied, total, rate);
    for (size_t i = 0; i < described.size(); ++i) {
      uint64_t left = described[i].estimated_rows > progress->rows_done[i]
                          ? described[i].estimated_rows - progress->rows_done[i]
                          : 0;
      line +=
          fmt::format("; {} {}/{}", tables[i], progress->rows_done[i], described[i].estimated_rows);
      if (!final && rate > 0 && left > 0) line += fmt::format(" (~{:.0f} s left)", left / rate);
    }
    if (final && live) {
      line = fmt::format("resnapshot done: {} rows", done_before + copied);
    } else if (final) {
      line = fmt::format("backfill done: {} rows in {:.1f} s ({:.0f} rows/s)", copied, secs, rate);
    }
    if (quiet) {
      spdlog::debug("sink {}: {}", id, line);
    } else if (tty && !final) {
      fmt::print(stderr, "\rsink {}: {}\033[K", id, line);
    } else {
      if (tty) fmt::print(stderr, "\n");
      spdlog::info("sink {}: {}", id, line);
    }
    if (options.on_progress) options.on_progress(line);
    return meta::Store(log, meta::BackfillStatusKey(id), meta::BackfillStatus{line});
  };

  auto on_chunk = [&](SnapshotChunk&& chunk) -> Result<void> {
    if (stopping()) return Cancelled();
    const auto& table = described[chunk.table];
    int tenant_index = -1;
    for (size_t i = 0; i < table.schema->columns.size(); ++i) {
      if (table.schema->columns[i].name == table.config.tenant_column) tenant_index = int(i);
    }
    std::vector<ChangeEvent> events;
    events.reserve(chunk.rows.size());
    for (auto& row : chunk.rows) {
      ChangeEvent ev{.id = EventId{version, ordinal},
                     .commit_time_us = now_us,
                     .op = Op::kInsert,
                     .table = table.schema};
      if (ordinal < UINT32_MAX - 1) ++ordinal;
      if (tenant_index >= 0 && row[size_t(tenant_index)].kind == ValueKind::kText) {
        ev.tenant = row[size_t(tenant_index)].text;
      }
      ev.new_row = std::move(row);
      events.push_back(std::move(ev));
    }
    if (!events.empty()) {
      PGF_TRY(cursor.token, sink.Write(events));
      PGF_TRY(log.RewindCursor(id, cursor));
    }
    auto& state = progress->states[chunk.table];
    if (!chunk.last_key.empty()) state.last[chunk.range] = chunk.last_key;
    state.done[chunk.range] = chunk.range_done;
    progress->rows_done[chunk.table] += events.size();
    copied += events.size();
    PGF_TRY(meta::Store(log, meta::BackfillProgressKey(id), *progress));
    PGF_TRY(FailpointHit("backfill.after_chunk"));
    if (Clock::now() - last_report >= kReportEvery) {
      last_report = Clock::now();
      PGF_TRY(report(false));
    }
    if (live && Clock::now() - started >= options.round) {
      round_over = true;
      return MakeError(ErrorKind::kCancelled, "the round is over");
    }
    return boost::outcome_v2::success();
  };
  auto read = reader->Read(described, tenants, progress->states, options.connections,
                           options.chunk_rows, on_chunk);
  if (!read && round_over) {
    // The stream's turn: the cursor (and a destination's own position, which the chunks
    // moved) goes back to where the stream stands; the next round resumes the ranges from
    // a snapshot of its own.
    PGF_TRY(report(false, /*quiet=*/true));
    SinkCursor back{.applied = progress->resume_at, .token = cursor.token};
    PGF_TRY(auto lineage, LoadLineage(log, config.source.confirm == SourceConfig::Confirm::kSinks));
    PGF_TRY(sink.Rewind(back, lineage.value_or(Lineage{})));
    PGF_TRY(log.RewindCursor(id, back));
    if (options.unfinished) *options.unfinished = true;
    return std::optional<Lsn>(progress->first);
  }
  if (!read) return read.error();

  // Rows of the sink's tenants the copy did not write are not on the source (any more).
  if (progress->replace && live) {
    PGF_TRY(sink.FinishLiveReplace(schemas, Lsn(progress->first.value() - 1)));
  } else if (progress->replace) {
    PGF_TRY(sink.FinishReplace(schemas, Lsn(progress->first.value() - 1)));
  }
  // Done: the stream resumes where the first snapshot began (or where the sink was).
  SinkCursor final{.applied = progress->resume_at, .token = cursor.token};
  PGF_TRY(auto lineage, LoadLineage(log, config.source.confirm == SourceConfig::Confirm::kSinks));
  PGF_TRY(sink.Rewind(final, lineage.value_or(Lineage{})));
  PGF_TRY(log.RewindCursor(id, final));
  PGF_TRY(meta::Store(log, meta::SinkTablesKey(id),
                      meta::SinkTables{MappedTables(config, sink_config)}));
  // The final status before the progress is erased: a kill in between finishes the copy
  // again at the next start (no chunk is left to read, and the cursor and replace steps
  // repeat as they were), while the other order left a finished copy that `pgfanout
  // status` never showed as done.
  PGF_TRY(report(true));
  PGF_TRY(FailpointHit("backfill.before_done"));
  // A resnapshot's request goes first: left alone, it would start the copy over. So does
  // one this copy covered (`pgfanout backfill` with the daemon stopped).
  PGF_TRY(auto asked, meta::Load(log, meta::ResnapshotKey(id)));
  const bool covered =
      asked && std::all_of(asked->tables.begin(), asked->tables.end(), [&](const std::string& t) {
        return std::find(tables.begin(), tables.end(), t) != tables.end();
      });
  if (live || covered) PGF_TRY(meta::Erase(log, meta::ResnapshotKey(id)));
  PGF_TRY(meta::Erase(log, meta::BackfillProgressKey(id)));
  return std::optional<Lsn>(progress->first);
}

}  // namespace pgfanout
