#include "src/source/source_setup.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "checkpoints/log_identity.h"
#include "checkpoints/meta_records.h"
#include "src/source/publication.h"
#include "src/source/table_checks.h"

namespace pgfanout {
namespace {

// wal2json prints a quoted type name without its outer quotes (the quoted identifier
// becomes the JSON string); everything else as format_type wrote it.
std::string AsWal2JsonPrintsIt(std::string type_text) {
  if (type_text.size() >= 2 && type_text.front() == '"' && type_text.back() == '"') {
    return type_text.substr(1, type_text.size() - 2);
  }
  return type_text;
}

// The catalog of one tracked table as the wal2json reader needs it (options.h).
Result<wal2json::TableHint> ReadWal2JsonHint(const PgConnection& sql, const TableConfig& t) {
  PGF_TRY(auto r,
          sql.Exec("reading the columns of " + t.QualifiedName() + " for wal2json",
                   "SELECT c.oid::bigint, c.relreplident, a.attnum, a.attname, "
                   "  a.atttypid::bigint, a.atttypmod, format_type(a.atttypid, a.atttypmod), "
                   "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
                   "          AND i.indisprimary AND a.attnum = ANY (i.indkey)), "
                   "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
                   "          AND i.indisreplident AND a.attnum = ANY (i.indkey)), "
                   "  a.attgenerated <> '' "
                   "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                   "  AND NOT a.attisdropped "
                   "WHERE n.nspname = $1 AND c.relname = $2 ORDER BY a.attnum",
                   {t.schema, t.name}));
  wal2json::TableHint hint{.schema = t.schema, .table = t.name};
  auto number = [&](int row, int col) { return std::stoll(GetValue(r, row, col).value_or("0")); };
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    hint.relation_id = static_cast<uint32_t>(number(i, 0));
    hint.replica_identity = GetValue(r, i, 1).value_or("d")[0];
    hint.columns.push_back(
        wal2json::TableHint::Column{.attnum = static_cast<int32_t>(number(i, 2)),
                                    .name = GetValue(r, i, 3).value_or(""),
                                    .type_oid = static_cast<uint32_t>(number(i, 4)),
                                    .type_modifier = static_cast<int32_t>(number(i, 5)),
                                    .type_text = AsWal2JsonPrintsIt(GetValue(r, i, 6).value_or("")),
                                    .in_primary_key = GetValue(r, i, 7) == "t",
                                    .in_identity_index = GetValue(r, i, 8) == "t",
                                    .generated = GetValue(r, i, 9) == "t"});
  }
  return hint;
}

// What the wal2json reader needs from the server, and the checks only wal2json needs.
Result<wal2json::ReaderOptions> PrepareWal2Json(const Config& config, const PgConnection& sql) {
  // wal2json prints bytea as its text output minus the first two characters, the "\x" of
  // the hex form; under bytea_output = escape those would be two bytes of the value.
  PGF_TRY(auto bytea, sql.ExecSimple("reading bytea_output", "SHOW bytea_output"));
  if (GetValue(bytea, 0, 0).value_or("") != "hex") {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("source.decoder wal2json needs bytea_output = hex for the role "
                                 "and database of source.dsn (it is '{}'): wal2json would cut "
                                 "two characters off every bytea value. Run: ALTER ROLE ... SET "
                                 "bytea_output = hex;",
                                 GetValue(bytea, 0, 0).value_or("")));
  }
  wal2json::ReaderOptions options;
  PGF_TRY(auto mem, sql.ExecSimple("reading logical_decoding_work_mem",
                                   "SELECT setting::bigint * 1024 FROM pg_settings "
                                   "WHERE name = 'logical_decoding_work_mem'"));
  if (auto bytes = GetValue(mem, 0, 0)) options.stream_threshold_bytes = std::stoull(*bytes);
  for (const auto& t : config.tables) {
    PGF_TRY(auto hint, ReadWal2JsonHint(sql, t));
    std::string lossy;
    for (const auto& c : hint.columns) {
      // float4, float8, numeric: wal2json 2.x prints NaN and +-Infinity as JSON null.
      if (c.type_oid == 700 || c.type_oid == 701 || c.type_oid == 1700) {
        lossy += (lossy.empty() ? "" : ", ") + c.name;
      }
    }
    if (!lossy.empty()) {
      spdlog::warn(
          "decoder wal2json: table {} has float or numeric columns ({}); wal2json "
          "prints NaN and Infinity in them as JSON null, so those values arrive as "
          "NULL (pgoutput keeps them)",
          t.QualifiedName(), lossy);
    }
    options.tables.push_back(std::move(hint));
  }
  return options;
}

// The source the log recorded so far (empty fields: not yet).
Result<meta::Source> RecordedSource(const EventLog& log) {
  PGF_TRY(auto source, meta::Load(log, meta::SourceKey()));
  return source.value_or(meta::Source{});
}

Result<void> RecordOrCheckSystem(EventLog& log, const std::string& actual) {
  PGF_TRY(auto source, RecordedSource(log));
  if (source.system_id.empty()) {
    source.system_id = actual;
    return meta::Store(log, meta::SourceKey(), source);
  }
  if (source.system_id != actual) {
    return MakeError(ErrorKind::kMismatch,
                     fmt::format("the state dir belongs to {} {} but the source is {} {}: "
                                 "refusing to mix their positions. Point source.dsn at the "
                                 "original server, or use a new state_dir to start over (sinks "
                                 "then need a fresh snapshot)",
                                 "cluster (system identifier)", source.system_id,
                                 "cluster (system identifier)", actual));
  }
  return boost::outcome_v2::success();
}

Result<void> RecordSlot(EventLog& log, const std::string& slot) {
  PGF_TRY(auto source, RecordedSource(log));
  source.slot = slot;
  return meta::Store(log, meta::SourceKey(), source);
}

// The point where timeline `tli` ended, from the history file of a later timeline (lines
// "<parent tli>\t<switch point>\t<reason>"); nullopt when the file does not name it.
std::optional<Lsn> SwitchPointOf(std::string_view history, uint32_t tli) {
  while (!history.empty()) {
    const size_t eol = history.find('\n');
    std::string_view line = history.substr(0, eol);
    history.remove_prefix(eol == std::string_view::npos ? history.size() : eol + 1);
    const size_t tab1 = line.find('\t');
    if (tab1 == std::string_view::npos) continue;
    const size_t tab2 = line.find('\t', tab1 + 1);
    uint32_t parent = 0;
    auto digits = line.substr(0, tab1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), parent);
    if (ec != std::errc() || end != digits.data() + digits.size() || parent != tli) continue;
    return Lsn::Parse(line.substr(
        tab1 + 1, tab2 == std::string_view::npos ? std::string_view::npos : tab2 - tab1 - 1));
  }
  return std::nullopt;
}

// The event log's position was written on the timeline it recorded. A server on a later
// timeline (a promoted standby, a point-in-time restore) shares the WAL up to the point
// where that timeline ended: the log may go on when its durable position is at or before
// that point, and must not when it is past it (it holds transactions this server never
// had, and the slot's positions no longer name the same changes).
Result<bool> CheckTimeline(EventLog& log, const PgConnection& replication, uint32_t now) {
  PGF_TRY(auto source, RecordedSource(log));
  const uint32_t recorded = source.timeline;
  source.timeline = now;
  if (recorded == 0) {
    PGF_TRY(meta::Store(log, meta::SourceKey(), source));
    return false;
  }
  if (recorded == now) return false;
  const Lsn durable = log.DurableLsn();
  if (now < recorded) {
    return MakeError(
        ErrorKind::kMismatch,
        fmt::format("the source is on timeline {}, older than timeline {} that the state dir "
                    "followed (durable up to {}): it is a server restored from before a "
                    "failover, and lacks what the new primary wrote. Point source.dsn at the "
                    "current primary; to follow this server instead, start over with a new "
                    "state_dir and slot (sinks copy their rows again)",
                    now, recorded, durable.ToString()));
  }
  PGF_TRY(auto history, replication.ExecSimple("reading the timeline history",
                                               fmt::format("TIMELINE_HISTORY {}", now)));
  const std::string content = GetValue(history, 0, 1).value_or("");
  const std::optional<Lsn> switched = SwitchPointOf(content, recorded);
  if (!switched) {
    return MakeError(
        ErrorKind::kMismatch,
        fmt::format("the source is on timeline {}, whose history does not descend from "
                    "timeline {} that the state dir followed: it is another lineage of the "
                    "cluster. Point source.dsn at the server pgfanout followed, or start over "
                    "with a new state_dir and slot (sinks copy their rows again)",
                    now, recorded));
  }
  if (durable > *switched) {
    return MakeError(
        ErrorKind::kMismatch,
        fmt::format("the source switched from timeline {} to {} at {}, but the event log holds "
                    "transactions up to {} from timeline {}: they never reached this server "
                    "(an asynchronous standby was promoted before it caught up), and pgfanout "
                    "has already delivered some of them. It stops rather than mix the two "
                    "histories. Compare the sinks with the new primary (pgfanout verify); to "
                    "follow it, start over with a new state_dir and slot (sinks copy their "
                    "rows again, replacing what they hold)",
                    recorded, now, switched->ToString(), durable.ToString(), recorded));
  }
  spdlog::info(
      "the source moved from timeline {} to {} at {}, at or after the event log's durable "
      "position {}: nothing the log holds is missing there",
      recorded, now, switched->ToString(), durable.ToString());
  return true;
}

Result<void> StoreTimeline(EventLog& log, uint32_t now) {
  PGF_TRY(auto source, RecordedSource(log));
  source.timeline = now;
  return meta::Store(log, meta::SourceKey(), source);
}

// After a failover the slot on the new primary is a copy: Patroni copies the slot's state
// file to each replica and advances the copy there; a standby made from a base backup
// holds one too. Logical decoding restarts at the slot's restart_lsn from the snapshot the
// server saved there (pg_logical/snapshots/<lsn>.snap). A copy made from the state file
// alone has none until the replica's own decoding has been consistent and moved the copy
// (Patroni reports such a copy "safe to be used after a failover" all the same). Without
// it the server rebuilds a snapshot from the WAL, and the transactions that commit before
// that is done are skipped, with no error: a Patroni switchover 5 s after the copy was
// made lost 102 changes that way. PostgreSQL 17's slot synchronization asks the same
// question before it trusts a copy. Refused (kMismatch) rather than streamed; when the
// role cannot list pg_logical/snapshots (superuser or pg_monitor), a warning says that the
// check did not run.
Result<void> CheckSlotCopyRestarts(const PgConnection& sql, const std::string& slot,
                                   uint32_t timeline, const Lsn& durable) {
  auto r = sql.Exec("checking the slot's saved snapshot on the new primary",
                    "SELECT s.restart_lsn::text, EXISTS (SELECT 1 FROM "
                    "pg_catalog.pg_ls_logicalsnapdir() f WHERE f.name = "
                    "replace(s.restart_lsn::text, '/', '-') || '.snap') "
                    "FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1",
                    {slot});
  if (!r) {
    if (SqlStateOf(r.error()) != "42501") return r.error();
    spdlog::warn(
        "cannot check that slot {} on the new primary (timeline {}) restarts from a saved "
        "snapshot: the source role may not list pg_logical/snapshots (grant it pg_monitor). "
        "A slot copy that has none skips the transactions that commit while the server "
        "rebuilds one (README, High availability)",
        slot, timeline);
    return boost::outcome_v2::success();
  }
  if (PQntuples(r.value().get()) == 1 && GetValue(r.value(), 0, 1).value_or("f") == "t") {
    return boost::outcome_v2::success();
  }
  const std::string restart = GetValue(r.value(), 0, 0).value_or("(none)");
  return MakeError(
      ErrorKind::kMismatch,
      fmt::format("slot {} on the new primary (timeline {}) has no saved snapshot at its "
                  "restart point {}: it is a copy of the slot's state file (Patroni's) that "
                  "this server's own decoding had not yet moved, or a slot not moved since it "
                  "was made. Decoding it would rebuild a "
                  "snapshot from the WAL and skip, without an error, the transactions that "
                  "commit meanwhile, after the event log's position {}. pgfanout stops "
                  "rather than lose them. Compare the sinks with the source (pgfanout "
                  "verify); to go on, start over with a new state_dir (the slot can stay; "
                  "sinks copy their rows again). Before a planned switchover, wait until the "
                  "replica's copy has a file in pg_logical/snapshots named after its "
                  "restart_lsn (README, High availability)",
                  slot, timeline, restart, durable.ToString()));
}

// PrepareSource's steps; `timeline_moved` says the server is on a later timeline than
// the one the log recorded, which the caller records once the slot has been checked.
Result<SourceIdentity> PrepareSourceSteps(const Config& config, const PgConnection& sql,
                                          const PgConnection& replication, EventLog& log,
                                          bool& timeline_moved) {
  SourceIdentity id;
  PGF_TRY(auto ident, replication.ExecSimple("IDENTIFY_SYSTEM", "IDENTIFY_SYSTEM"));
  if (PQntuples(ident.get()) != 1 || PQnfields(ident.get()) < 4) {
    return MakeError(ErrorKind::kProtocol, "IDENTIFY_SYSTEM returned an unexpected shape");
  }
  id.system_id = GetValue(ident, 0, 0).value_or("");
  id.timeline = static_cast<uint32_t>(std::stoul(GetValue(ident, 0, 1).value_or("0")));
  id.server_lsn = Lsn::Parse(GetValue(ident, 0, 2).value_or("")).value_or(Lsn());
  PGF_TRY(RecordOrCheckSystem(log, id.system_id));
  PGF_TRY(timeline_moved, CheckTimeline(log, replication, id.timeline));

  PGF_TRY(id.keys, CheckTables(config, sql));
  const std::string& plugin_wanted = config.source.decoder;
  bool publication_created = false;
  if (plugin_wanted == "wal2json") {
    PGF_TRY(id.wal2json, PrepareWal2Json(config, sql));
  } else {
    PGF_TRY(publication_created, EnsurePublication(config, sql));
  }
  const bool confirm_sinks = config.source.confirm == SourceConfig::Confirm::kSinks;

  const std::string& slot = config.source.slot;
  PGF_TRY(auto r, sql.Exec("looking up slot " + slot,
                           "SELECT s.plugin, s.slot_type, s.database = current_database(), "
                           "       s.confirmed_flush_lsn, s.wal_status, s.active_pid "
                           "FROM pg_replication_slots s WHERE s.slot_name = $1",
                           {slot}));
  PGF_TRY(auto recorded, RecordedSource(log));
  const std::optional<std::string> recorded_slot =
      recorded.slot.empty() ? std::nullopt : std::optional<std::string>(recorded.slot);
  const Lsn durable = log.DurableLsn();
  if (PQntuples(r.get()) == 0) {
    if (recorded_slot || !durable.IsZero()) {
      return MakeError(
          ErrorKind::kMismatch,
          fmt::format("replication slot {} is gone from the source (dropped, or invalidated "
                      "and removed), but the state dir holds events up to {}. pgfanout will "
                      "not create a new slot silently: the changes in between would be lost. "
                      "To start over, use a new state_dir and re-snapshot the sinks",
                      slot, durable.ToString()));
    }
    PGF_TRY(auto created,
            replication.ExecSimple("creating replication slot " + slot,
                                   fmt::format("CREATE_REPLICATION_SLOT {} LOGICAL {} "
                                               "(SNAPSHOT 'nothing')",
                                               replication.QuoteIdent(slot), plugin_wanted)));
    id.slot_confirmed_lsn = Lsn::Parse(GetValue(created, 0, 1).value_or("")).value_or(Lsn());
    id.slot_created = true;
    spdlog::info("created replication slot {} at {}", slot, id.slot_confirmed_lsn.ToString());
    PGF_TRY(RecordSlot(log, slot));
    // The slot starts confirmed at its consistent point; the log starts there too, so the
    // slot is never ahead of the log, not even before the first transaction.
    const TransactionRecord start{.commit_lsn = id.slot_confirmed_lsn,
                                  .end_lsn = id.slot_confirmed_lsn};
    PGF_TRY(log.Append(std::span<const TransactionRecord>(&start, 1)));
    return id;
  }
  auto plugin = GetValue(r, 0, 0).value_or("");
  if (GetValue(r, 0, 1).value_or("") != "logical" || plugin != plugin_wanted) {
    return MakeError(ErrorKind::kMismatch,
                     fmt::format("slot {} exists but is not a logical {} slot (plugin "
                                 "'{}'); choose another source.slot",
                                 slot, plugin_wanted, plugin));
  }
  if (GetValue(r, 0, 2).value_or("f") != "t") {
    return MakeError(
        ErrorKind::kMismatch,
        fmt::format("slot {} belongs to another database than source.dsn names", slot));
  }
  auto wal_status = GetValue(r, 0, 4).value_or("");
  if (wal_status == "lost") {
    return MakeError(ErrorKind::kMismatch,
                     fmt::format("slot {} was invalidated by the server (wal_status 'lost', "
                                 "max_slot_wal_keep_size exceeded): WAL it needed is gone. Use "
                                 "a new slot and state_dir and re-snapshot the sinks",
                                 slot));
  }
  if (auto pid = GetValue(r, 0, 5)) {
    // kBusy: the daemon waits as a standby, not as a failure.
    return MakeError(ErrorKind::kBusy,
                     fmt::format("slot {} is active for PID {} (another pgfanout, or the "
                                 "previous connection not yet timed out)",
                                 slot, *pid));
  }
  id.slot_confirmed_lsn = Lsn::Parse(GetValue(r, 0, 3).value_or("")).value_or(Lsn());
  if (!recorded_slot) {
    if (!durable.IsZero()) {
      return MakeError(ErrorKind::kMismatch,
                       fmt::format("the state dir holds events up to {} from another slot; "
                                   "refusing to adopt slot {}",
                                   durable.ToString(), slot));
    }
    if (confirm_sinks && !publication_created) {
      // Under confirm: sinks the slot is confirmed no further than any sink's destination
      // holds: a standby (or a pgfanout whose state dir was lost) streams from it, and
      // each sink resumes from the position its destination stored. Moving the slot would
      // skip what they lack. (Made just now, the publication is newer than anything the
      // slot could have delivered: that case is the adoption below.)
      spdlog::warn(
          "adopted existing slot {} for a new state dir without moving it (source.confirm: "
          "sinks): streaming from its confirmed position {}; each sink resumes from the "
          "position its destination stored, or is copied when it has none",
          slot, id.slot_confirmed_lsn.ToString());
      PGF_TRY(RecordSlot(log, slot));
      const TransactionRecord start{.commit_lsn = id.slot_confirmed_lsn,
                                    .end_lsn = id.slot_confirmed_lsn};
      PGF_TRY(log.Append(std::span<const TransactionRecord>(&start, 1)));
      return id;
    }
    // A slot made by others (Patroni makes its permanent slots when the cluster
    // bootstraps; a DBA makes a PG17 failover slot) is often confirmed at a position from
    // before the publication existed. pgoutput reads the publication as of each change,
    // so streaming from there fails on the first change, at every reconnect. The state
    // dir is new: each sink that backfills copies its rows from a snapshot taken after
    // this point, and the others start from now, so nothing before now is owed to a sink.
    // The slot is moved to now, after the publication (made above) exists.
    PGF_TRY(auto advanced,
            sql.Exec("advancing adopted slot " + slot,
                     "SELECT end_lsn FROM pg_replication_slot_advance($1, pg_current_wal_lsn())",
                     {slot}));
    const Lsn was = id.slot_confirmed_lsn;
    id.slot_confirmed_lsn = Lsn::Parse(GetValue(advanced, 0, 0).value_or("")).value_or(was);
    spdlog::warn(
        "adopted existing slot {} (confirmed up to {}) for a new state dir: advanced it to {} "
        "(pg_replication_slot_advance){}; changes committed before that are not streamed, "
        "the sinks' backfill copies the rows",
        slot, was.ToString(), id.slot_confirmed_lsn.ToString(),
        plugin_wanted == "pgoutput"
            ? ", past the creation of publication " + config.source.publication
            : "");
    PGF_TRY(RecordSlot(log, slot));
    // As for a slot made here: the log starts where the slot is confirmed.
    const TransactionRecord start{.commit_lsn = id.slot_confirmed_lsn,
                                  .end_lsn = id.slot_confirmed_lsn};
    PGF_TRY(log.Append(std::span<const TransactionRecord>(&start, 1)));
  } else if (*recorded_slot != slot) {
    return MakeError(ErrorKind::kMismatch,
                     fmt::format("the state dir was made for slot {}, the config names {}",
                                 *recorded_slot, slot));
  } else if (id.slot_confirmed_lsn > durable && !durable.IsZero() && confirm_sinks) {
    // Another pgfanout under confirm: sinks led meanwhile and confirmed the slot at what
    // every sink's destination holds: the changes this log lacks are in the destinations.
    // The log goes on from the slot; each sink resumes from its destination's position.
    spdlog::warn(
        "slot {} is confirmed up to {}, past what this state dir holds ({}): another "
        "pgfanout (source.confirm: sinks) led meanwhile. The event log goes on from the "
        "slot's position; each sink resumes from the position its destination stored",
        slot, id.slot_confirmed_lsn.ToString(), durable.ToString());
    const TransactionRecord start{.commit_lsn = id.slot_confirmed_lsn,
                                  .end_lsn = id.slot_confirmed_lsn};
    PGF_TRY(log.Append(std::span<const TransactionRecord>(&start, 1)));
  } else if (id.slot_confirmed_lsn > durable && !durable.IsZero()) {
#ifdef PGFANOUT_NEGATIVE_CONTROL
    // The fault suite's negative control trusts the server's position, as a naive tailer
    // would; the loss this hides is what the suite must detect.
    return id;
#endif
    return MakeError(
        ErrorKind::kMismatch,
        fmt::format("slot {} is confirmed up to {}, past what the state dir holds ({}): "
                    "something else advanced it, or the state dir was restored from an "
                    "older copy. Changes in between are lost to pgfanout; use a new state_dir "
                    "and re-snapshot the sinks",
                    slot, id.slot_confirmed_lsn.ToString(), durable.ToString()));
  }
  return id;
}

}  // namespace

Result<SourceIdentity> PrepareSource(const Config& config, const PgConnection& sql,
                                     const PgConnection& replication, EventLog& log) {
  bool timeline_moved = false;
  PGF_TRY(auto id, PrepareSourceSteps(config, sql, replication, log, timeline_moved));
  if (timeline_moved) {
    // Not recorded before the slot passes: a refused copy stays refused at the next start.
    if (!id.slot_created) {
      PGF_TRY(CheckSlotCopyRestarts(sql, config.source.slot, id.timeline, log.DurableLsn()));
    }
    PGF_TRY(StoreTimeline(log, id.timeline));
  }
  return id;
}

}  // namespace pgfanout
