#include "src/sinks/postgres/postgres_sink.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>

#include "sink_postgres_sql.inc"
#include "src/core/failpoint.h"
#include "src/sinks/postgres/copy_text.h"
#include "src/sinks/postgres/schema_sync.h"
#include "src/sinks/postgres/target_errors.h"

namespace pgfanout {
namespace {

// COPY data goes out in pieces of about this size, so a batch never needs twice its
// size in memory.
constexpr size_t kCopyChunk = 1 << 20;

std::string FillSchema(std::string sql, const std::string& quoted_schema) {
  constexpr std::string_view kPlaceholder = ":\"schema\"";
  for (size_t at = sql.find(kPlaceholder); at != std::string::npos;
       at = sql.find(kPlaceholder, at + quoted_schema.size())) {
    sql.replace(at, kPlaceholder.size(), quoted_schema);
  }
  return sql;
}

}  // namespace

PostgresSink::PostgresSink(SinkBasics basics, PostgresSinkOptions options)
    : basics_(std::move(basics)), options_(std::move(options)) {}

PostgresSink::~PostgresSink() { Stop(); }

Error PostgresSink::Fail(ErrorKind kind, const std::string& what) const {
  return MakeError(kind, fmt::format("sink {}: {}", basics_.id, what));
}

Result<PgConnection> PostgresSink::Connect() const {
  return PgConnection::Connect(options_.dsn, PgConnection::Mode::kNormal,
                               "target of sink " + basics_.id, options_.password);
}

Result<PostgresSink::StateTableShape> PostgresSink::ReadStateTableShape(
    const PgConnection& conn) const {
  auto found = conn.Exec("looking up the sink state table",
                         "SELECT to_regclass($1) IS NOT NULL, EXISTS (SELECT 1 FROM pg_attribute "
                         "WHERE attrelid = to_regclass($1) AND attname = 'log_id' "
                         "AND NOT attisdropped), to_regnamespace($2) IS NOT NULL",
                         {SinkStateTable(options_.schema), QuoteIdent(options_.schema)});
  if (!found) return TargetError(found.error(), "sink " + basics_.id);
  return StateTableShape{.table = GetValue(found.value(), 0, 0) == "t",
                         .lineage = GetValue(found.value(), 0, 1) == "t",
                         .schema = GetValue(found.value(), 0, 2) == "t"};
}

Result<void> PostgresSink::EnsureStateTable(const PgConnection& conn) const {
  const std::string context = fmt::format("sink {}: preparing {} in the target", basics_.id,
                                          SinkStateTable(options_.schema));
  // Run only what is missing: CREATE … IF NOT EXISTS needs the CREATE right even then, and
  // a DBA may have run the migrations for a role without it.
  PGF_TRY(auto shape, ReadStateTableShape(conn));
  if (shape.table && shape.lineage) return boost::outcome_v2::success();
  // Sinks sharing a target database take turns (two CREATE TABLE IF NOT EXISTS at once can
  // fail on pg_type's unique index): one transaction holding an advisory lock, in which
  // the shape is read again, since another sink may have just done the work.
  auto migrate = [&]() -> Result<void> {
    PGF_TRY(conn.ExecSimple("starting the migration", "BEGIN"));
    PGF_TRY(conn.ExecSimple("waiting for other sinks' migrations",
                            fmt::format("SELECT pg_advisory_xact_lock({}, {})",
                                        kMigrationLockClass, kMigrationLockObject)));
    PGF_TRY(shape, ReadStateTableShape(conn));
    std::string sql;
    if (!shape.schema) sql += "CREATE SCHEMA IF NOT EXISTS " + QuoteIdent(options_.schema) + "; ";
    if (!shape.table) sql += FillSchema(kSql001SinkState, QuoteIdent(options_.schema));
    if (!shape.lineage) sql += FillSchema(kSql002SinkStateLineage, QuoteIdent(options_.schema));
    if (!sql.empty()) PGF_TRY(conn.ExecSimple("running migrations/sink_postgres/", sql));
    PGF_TRY(conn.ExecSimple("committing the migration", "COMMIT"));
    return boost::outcome_v2::success();
  };
  auto done = migrate();
  if (done) return boost::outcome_v2::success();
  if (PQstatus(conn.get()) == CONNECTION_OK) (void)conn.ExecSimple("rolling back", "ROLLBACK");
  // Lost a race with something that does not take the lock (a DBA, an older pgfanout):
  // what it made is what was wanted.
  const std::string state = SqlStateOf(done.error());
  if (state == "23505" || state == "42P07" || state == "42P06" || state == "42701" ||
      state == "42710") {
    PGF_TRY(auto now, ReadStateTableShape(conn));
    if (now.table && now.lineage) return boost::outcome_v2::success();
  }
  Error e = TargetError(done.error(), context);
  if (e.kind != ErrorKind::kConnection) {
    e.kind = ErrorKind::kMismatch;
    e.message +=
        " (a DBA can run migrations/sink_postgres/*.sql in the target instead; the sink's role "
        "then needs no CREATE right)";
  }
  return e;
}

Result<void> PostgresSink::SaveState(const PgConnection& conn, EventId id) {
  auto r = conn.Exec(
      "storing the sink's position", SaveSinkStateSql(options_.schema),
      {basics_.id, id.commit_lsn.ToString(), std::to_string(id.ordinal), lineage_.system_id,
       lineage_.slot, std::to_string(lineage_.timeline), lineage_.log_id});
  if (!r) return TargetError(r.error(), "sink " + basics_.id);
  held_ = std::make_pair(id, lineage_.log_id);
  return boost::outcome_v2::success();
}

Result<void> PostgresSink::CheckNotSuperseded() {
  auto row = conn_->Exec("locking the sink's position",
                         fmt::format("SELECT commit_lsn::text, ordinal, coalesce(log_id, '') "
                                     "FROM {} WHERE sink_id = $1 FOR UPDATE",
                                     SinkStateTable(options_.schema)),
                         {basics_.id});
  if (!row) return TargetError(row.error(), "sink " + basics_.id);
  std::optional<std::pair<EventId, std::string>> now;
  if (PQntuples(row.value().get()) == 1) {
    auto lsn = Lsn::Parse(GetValue(row.value(), 0, 0).value_or(""));
    uint32_t ordinal = 0;
    const std::string text = GetValue(row.value(), 0, 1).value_or("");
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ordinal);
    if (!lsn || ec != std::errc() || end != text.data() + text.size()) {
      return Fail(ErrorKind::kMismatch, fmt::format("{} holds an unreadable position for this sink",
                                                    SinkStateTable(options_.schema)));
    }
    now = std::make_pair(EventId{*lsn, ordinal}, GetValue(row.value(), 0, 2).value_or(""));
  }
  if (now == held_) return boost::outcome_v2::success();
  // Fencing: the batch would be applied over what another writer put there. Nothing is
  // applied; reopened, the sink resumes after the destination's position when it trusts it.
  return Fail(ErrorKind::kSink,
              fmt::format("another writer moved this sink's position in {} from {} to {} since "
                          "this process last wrote it (another pgfanout took over: this one is "
                          "superseded); the batch is not applied and the sink reopens",
                          SinkStateTable(options_.schema),
                          held_ ? held_->first.ToString() : std::string("none"),
                          now ? now->first.ToString() : std::string("none")));
}

Result<std::optional<TargetPosition>> PostgresSink::Open(const std::optional<SinkCursor>& stored,
                                                         const Lineage& lineage) {
  (void)stored;
  Stop();
  lineage_ = lineage;
  PGF_TRY(auto conn, Connect());
  PGF_TRY(EnsureStateTable(conn));
  auto row = conn.Exec("reading the sink's position",
                       fmt::format("SELECT commit_lsn::text, ordinal, source_system_id, "
                                   "slot_name, timeline, log_id FROM {} WHERE sink_id = $1",
                                   SinkStateTable(options_.schema)),
                       {basics_.id});
  if (!row) return TargetError(row.error(), "sink " + basics_.id);
  std::optional<TargetPosition> theirs;
  held_.reset();
  if (PQntuples(row.value().get()) == 1) {
    auto lsn = Lsn::Parse(GetValue(row.value(), 0, 0).value_or(""));
    uint32_t ordinal = 0, timeline = 0;
    auto number = [&](int col, uint32_t& out) {
      std::string text = GetValue(row.value(), 0, col).value_or("0");
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
      return ec == std::errc() && end == text.data() + text.size();
    };
    if (!lsn || !number(1, ordinal) || !number(4, timeline)) {
      return Fail(ErrorKind::kMismatch, fmt::format("{} holds an unreadable position for this sink",
                                                    SinkStateTable(options_.schema)));
    }
    theirs = TargetPosition{.applied = EventId{*lsn, ordinal}};
    held_ = std::make_pair(theirs->applied, GetValue(row.value(), 0, 5).value_or(""));
    if (auto log_id = GetValue(row.value(), 0, 5)) {
      theirs->lineage = Lineage{.system_id = GetValue(row.value(), 0, 2).value_or(""),
                                .slot = GetValue(row.value(), 0, 3).value_or(""),
                                .timeline = timeline,
                                .log_id = *log_id};
    }
  }
  conn_ = std::move(conn);
  // The target commits its position with the rows: the runner resumes after it when its
  // log wrote it (a crash between COMMIT and the cursor store applies nothing twice).
  return theirs;
}

Result<void> PostgresSink::Rewind(const SinkCursor& to, const Lineage& lineage) {
  lineage_ = lineage;
  // Open (the end of a copy): on the sink's own connection, so a sink never holds two
  // (delivery.max_connections counts one). Before Open (`pgfanout replay`): a new one.
  if (conn_) {
    PGF_TRY(EnsureStateTable(*conn_));
    return SaveState(*conn_, to.applied);
  }
  PGF_TRY(auto conn, Connect());
  PGF_TRY(EnsureStateTable(conn));
  return SaveState(conn, to.applied);
}

Result<void> PostgresSink::BeginReplace(Tables tables) {
  return InTransaction("resetting the versions of the rows a copy replaces",
                       [&](Prepared& p) -> Result<void> {
                         const auto* tenants = MatchedTenants(*p.mapping, Tenants());
                         return Exec(p, "resetting row versions",
                                     ResetVersionsSql(*p.mapping, tenants));
                       },
                       tables);
}

Result<void> PostgresSink::FinishReplace(Tables tables, Lsn version) {
  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  return InTransaction("removing rows the copy did not find on the source",
                       [&](Prepared& p) -> Result<void> {
                         const auto* tenants = MatchedTenants(*p.mapping, Tenants());
                         return Exec(p, "removing rows the source no longer has",
                                     SweepSql(*p.mapping, p.types, tenants, version, now_us));
                       },
                       tables);
}

Result<void> PostgresSink::InTransaction(std::string_view what,
                                         const std::function<Result<void>(Prepared&)>& each,
                                         Tables tables) {
  if (!conn_) return Fail(ErrorKind::kSink, std::string(what) + " before Open");
  auto run = [&]() -> Result<void> {
    if (auto r = conn_->ExecSimple(what, "BEGIN"); !r) return TargetError(r.error(), basics_.id);
    for (const auto& schema : tables) {
      PGF_TRY(const TableMapping* m, MappingOf(*schema));
      if (m == nullptr) continue;
      PGF_TRY(Prepared * p, Prepare(*schema));
      PGF_TRY(each(*p));
    }
    if (auto r = conn_->ExecSimple(what, "COMMIT"); !r) return TargetError(r.error(), basics_.id);
    return boost::outcome_v2::success();
  };
  auto done = run();
  if (!done) {
    if (PQstatus(conn_->get()) == CONNECTION_OK) (void)conn_->ExecSimple("rolling back", "ROLLBACK");
    prepared_.clear();
    synced_.clear();
    catalog_.Clear();
    return done.error();
  }
  for (auto& [key, p] : prepared_) p.stage_used = false;
  return boost::outcome_v2::success();
}

void PostgresSink::Stop() {
  conn_.reset();
  prepared_.clear();
  synced_.clear();
  catalog_.Clear();
  next_stage_ = 0;
}

Result<const TableMapping*> PostgresSink::MappingOf(const TableSchema& schema) {
  ShapeKey key{schema.QualifiedName(), schema.Fingerprint()};
  auto it = mappings_.find(key);
  if (it == mappings_.end()) {
    const TableConfig* table = basics_.Tracked(schema.schema_name, schema.table_name);
    PGF_TRY(auto mapping, ResolveMapping(basics_, options_, table, schema));
    it = mappings_.emplace(key, std::move(mapping)).first;
  }
  return it->second ? &*it->second : nullptr;
}

Result<const std::vector<size_t>*> PostgresSink::KeyOf(const TableSchema& schema) {
  PGF_TRY(const TableMapping* m, MappingOf(schema));
  return m ? &m->key : nullptr;
}

Result<PostgresSink::Prepared*> PostgresSink::Prepare(const TableSchema& schema) {
  ShapeKey key{schema.QualifiedName(), schema.Fingerprint()};
  if (auto it = prepared_.find(key); it != prepared_.end()) {
    // A shape seen before is ready only while the target was last synced to it: after an
    // ADD COLUMN and a DROP COLUMN the table's old shape comes back, and the target must
    // drop the column again.
    auto synced = synced_.find(key.first);
    if (synced != synced_.end() && synced->second == key.second) return &it->second;
    prepared_.erase(it);
  }
  PGF_TRY(const TableMapping* m, MappingOf(schema));
  if (m == nullptr) return Fail(ErrorKind::kProtocol, schema.QualifiedName() + " is not mapped");
  Prepared p{.mapping = m, .stage = StageName(next_stage_++)};
  if (auto r = catalog_.Resolve(*conn_, schema); !r) return TargetError(r.error(), m->Describe());
  std::vector<std::string> staged_types;
  for (size_t i : m->staged) staged_types.push_back(catalog_.TypeOf(schema.columns[i]));
  PGF_TRY(Exec(p, "creating the staging table", CreateStageSql(*m, schema, p.stage, staged_types)));
  bool refill = false;
  PGF_TRY(p.types, SyncTargetTable(*conn_, catalog_, *m, schema, p.stage, refill));
  // Before this transaction commits the new column: see Sink::SetBackfillRequest. Without
  // a requester (a backfill writing the table's rows itself) there is nothing to ask.
  if (refill && backfill_request_) PGF_TRY(backfill_request_(m->config.source));
  synced_[key.first] = key.second;
  return &prepared_.emplace(key, std::move(p)).first->second;
}

Result<void> PostgresSink::Exec(const Prepared& p, std::string_view what, const std::string& sql) {
  // The extended protocol runs one statement only: SQL built from a mapping (a computed
  // column's expression) cannot carry a second one along.
  auto r = conn_->Exec(what, sql);
  if (!r) return TargetError(r.error(), p.mapping->Describe());
  return boost::outcome_v2::success();
}

Result<std::string> PostgresSink::Write(std::span<const ChangeEvent> events) {
  if (!conn_) return Fail(ErrorKind::kSink, "written before Open");
  const KeyLookup keys = [this](const auto& schema) { return KeyOf(*schema); };
  PGF_TRY(auto plan, PlanBatch(events, keys));
  auto applied = Apply(plan, events.back().id);
  if (!applied) {
    // Whatever the failed transaction created (staging tables, DDL) is gone with it.
    if (PQstatus(conn_->get()) == CONNECTION_OK) {
      (void)conn_->ExecSimple("rolling back", "ROLLBACK");
    }
    prepared_.clear();
    synced_.clear();
    catalog_.Clear();
    return applied.error();
  }
  for (auto& [key, p] : prepared_) p.stage_used = false;
  PGF_TRY(FailpointHit("sink.after_write"));
  return events.back().id.ToString();
}

Result<void> PostgresSink::Apply(const BatchPlan& plan, EventId last) {
  auto simple = [&](std::string_view what, const char* sql) -> Result<void> {
    auto r = conn_->ExecSimple(what, sql);
    if (!r) return TargetError(r.error(), "sink " + basics_.id);
    return boost::outcome_v2::success();
  };
  // A pgfanout frozen mid-batch (SIGSTOP, a VM paused) would hold this transaction, and the
  // position row's lock, until its connection dies: the server ends it after 15 s idle, so
  // a standby that took over writes on.
  PGF_TRY(simple("starting the batch's transaction",
                 "BEGIN; SET LOCAL idle_in_transaction_session_timeout = '15s'"));
  PGF_TRY(CheckNotSuperseded());
  for (const PlanSegment& segment : plan.segments) {
    if (segment.truncate) {
      PGF_TRY(Prepared * p, Prepare(*segment.truncate->schema));
      PGF_TRY(ApplyTruncate(*p, *segment.truncate));
      continue;
    }
    for (const TableChanges& table : segment.tables) {
      PGF_TRY(Prepared * p, Prepare(*table.schema));
      PGF_TRY(ApplyRows(*p, table));
    }
  }
  PGF_TRY(SaveState(*conn_, last));
  PGF_TRY(FailpointHit("sink.mid_write"));
  return simple("committing the batch", "COMMIT");
}

Result<void> PostgresSink::ApplyRows(Prepared& p, const TableChanges& table) {
  const TableMapping& m = *p.mapping;
  // Upserts are grouped by the columns they must leave alone (unchanged TOAST values).
  std::map<std::vector<bool>, int> groups;
  std::vector<int> group_of(table.changes.size(), 0);
  // A soft-deleting sink writes a deleted row it knows whole like an upsert, marked
  // deleted; other deletes only mark (or remove) the row the target has.
  const bool soft = m.config.delete_mode == DeleteMode::kSoft;
  bool any_delete = false, any_move = false;
  for (size_t i = 0; i < table.changes.size(); ++i) {
    const RowChange& c = table.changes[i];
    if (c.kind == RowChange::Kind::kDelete && !(soft && c.whole_row)) {
      any_delete = true;
      continue;
    }
    std::vector<bool> left_out(m.columns.size());
    for (size_t j = 0; j < m.columns.size(); ++j) {
      left_out[j] = c.row[m.columns[j].source].kind == ValueKind::kUnchangedToast;
    }
    const int next = static_cast<int>(groups.size()) + 1;
    group_of[i] = groups.try_emplace(std::move(left_out), next).first->second;
    any_move = any_move || !c.moved_from.empty();
  }

  if (p.stage_used) PGF_TRY(Exec(p, "clearing the staging table", ClearStageSql(p.stage)));
  const std::string what = "staging rows";
  if (auto r = conn_->BeginCopyIn(what, CopyStageSql(p.stage)); !r) {
    return TargetError(r.error(), m.Describe());
  }
  p.stage_used = true;
  auto put = [&]() -> Result<void> {
    if (auto r = conn_->PutCopyData(what, buffer_); !r) {
      (void)conn_->EndCopyIn(what, "pgfanout could not send the rows");
      return TargetError(r.error(), m.Describe());
    }
    buffer_.clear();
    return boost::outcome_v2::success();
  };
  buffer_.clear();
  for (size_t i = 0; i < table.changes.size(); ++i) {
    const RowChange& c = table.changes[i];
    CopyTextWriter w(buffer_);
    for (size_t s : m.staged) {
      const Datum& d = c.row[s];
      if (d.kind == ValueKind::kText) {
        w.Value(d.text);
      } else {
        w.Null();
      }
    }
    for (size_t k = 0; k < m.key.size(); ++k) {
      if (k < c.moved_from.size() && c.moved_from[k].kind == ValueKind::kText) {
        w.Value(c.moved_from[k].text);
      } else {
        w.Null();
      }
    }
    w.Int(static_cast<int64_t>(c.version.value()));
    w.Timestamp(c.commit_time_us);
    w.Int(group_of[i]);
    w.Bool(!c.moved_from.empty());
    w.Bool(c.kind == RowChange::Kind::kDelete);
    w.EndRow();
    if (buffer_.size() >= kCopyChunk) PGF_TRY(put());
  }
  if (!buffer_.empty()) PGF_TRY(put());
  if (auto r = conn_->EndCopyIn(what); !r) return TargetError(r.error(), m.Describe());

  const auto* tenants = MatchedTenants(m, Tenants());
  if (any_move) {
    PGF_TRY(Exec(p, "moving rows to their new keys", MoveSql(m, p.types, p.stage, tenants)));
  }
  if (any_delete) PGF_TRY(Exec(p, "deleting rows", DeleteSql(m, p.types, p.stage, tenants)));
  for (const auto& [left_out, group] : groups) {
    PGF_TRY(
        Exec(p, "upserting rows", UpsertSql(m, p.types, p.stage, group, left_out, tenants)));
  }
  return boost::outcome_v2::success();
}

Result<void> PostgresSink::ApplyTruncate(Prepared& p, const TruncateChange& truncate) {
  const TableMapping& m = *p.mapping;
  const std::vector<std::string>* tenants = Tenants();
  if (tenants != nullptr && m.tenant_target.empty()) {
    // The router sends such a table to "*" sinks only; refuse rather than wipe others' rows.
    return MakeError(ErrorKind::kInvalidArgument,
                     m.Describe() +
                         ": TRUNCATE on a per-tenant sink needs the table's tenant column in the "
                         "mapping");
  }
  return Exec(p, "truncating",
              TruncateSql(m, p.types, tenants, truncate.version, truncate.commit_time_us));
}

}  // namespace pgfanout
