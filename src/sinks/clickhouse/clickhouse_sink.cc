#include "src/sinks/clickhouse/clickhouse_sink.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <thread>

#include "src/core/failpoint.h"
#include "src/sinks/clickhouse/change_plan.h"
#include "src/sinks/clickhouse/table_sync.h"
#include "src/sinks/clickhouse/toast_fill.h"
#include "src/sinks/clickhouse/tsv_reader.h"
#include "src/sinks/clickhouse/value_encoder.h"

namespace pgfanout {

using clickhouse::ClickHouseHttp;
using clickhouse::FillUnchangedValues;
using clickhouse::ParseTsv;
using clickhouse::PlannedRow;
using clickhouse::PlannedTable;
using clickhouse::PlannedTruncate;
using clickhouse::PlanStep;
using clickhouse::QuoteName;
using clickhouse::QuoteString;
using clickhouse::ResolveTarget;
using clickhouse::RowEncoder;
using clickhouse::SyncTargetTable;
using clickhouse::TableTarget;

namespace {

// Rows go out in inserts of about this size, so a batch of TOASTed values never needs
// one huge request (nor twice its size in memory).
constexpr size_t kInsertBytes = 8 << 20;

// How long a TRUNCATE waits to see its mutation done (it is durable before: this is for
// what readers see once the batch is acknowledged).
constexpr auto kMutationWait = std::chrono::seconds(60);

}  // namespace

ClickHouseSink::ClickHouseSink(SinkBasics basics, ClickHouseSinkOptions options)
    : basics_(std::move(basics)), options_(std::move(options)) {}

ClickHouseSink::~ClickHouseSink() { Stop(); }

Error ClickHouseSink::Fail(ErrorKind kind, const std::string& what) const {
  return MakeError(kind, fmt::format("sink {}: {}", basics_.id, what));
}

void ClickHouseSink::Stop() {
  state_.reset();
  ch_.reset();
  prepared_.clear();
  databases_.clear();
}

Result<void> ClickHouseSink::Connect() {
  Stop();
  auto ch = ClickHouseHttp::Create({.url = options_.url,
                                    .user = options_.user,
                                    .password = options_.password,
                                    .timeout = options_.timeout});
  if (!ch) return ch.error().Wrap("sink " + basics_.id);
  ch_ = std::move(ch.value());
  PGF_TRY(DetectFeatures());
  PGF_TRY(EnsureDatabase(options_.database));
  state_.emplace(*ch_, options_.database, basics_.id, lineage_);
  return state_->Ensure();
}

Result<void> ClickHouseSink::DetectFeatures() {
  auto text =
      ch_->Query("asking the server what it supports",
                 "SELECT version(), "
                 "(SELECT count() FROM system.data_type_families WHERE name = 'DateTime64'), "
                 "(SELECT count() FROM system.settings WHERE name = 'insert_deduplication_token'), "
                 "(SELECT count() FROM system.merge_tree_settings "
                 "WHERE name = 'non_replicated_deduplication_window') FORMAT TabSeparated");
  if (!text) return text.error().Wrap("sink " + basics_.id);
  PGF_TRY(auto rows, ParseTsv(text.value()));
  if (rows.size() != 1 || rows[0].size() != 4) {
    return Fail(ErrorKind::kSink, "unreadable answer to the feature query");
  }
  features_ = ServerFeatures{.version = rows[0][0].value_or(""),
                             .datetime64 = rows[0][1] != "0",
                             .dedup_token = rows[0][2] != "0",
                             .nonreplicated_dedup = rows[0][3] != "0"};
  return boost::outcome_v2::success();
}

Result<void> ClickHouseSink::EnsureDatabase(const std::string& database) {
  if (databases_.count(database)) return boost::outcome_v2::success();
  auto found = ch_->Query("looking up the database",
                          fmt::format("SELECT count() FROM system.databases WHERE name = {} "
                                      "FORMAT TabSeparated",
                                      QuoteString(database)));
  if (!found) return found.error().Wrap("sink " + basics_.id);
  if (found.value() != "1\n") {
    if (!options_.create_tables) {
      return Fail(ErrorKind::kMismatch,
                  fmt::format("database {} does not exist (create it, or set create_tables: true)",
                              database));
    }
    auto made =
        ch_->Query("creating the database", "CREATE DATABASE IF NOT EXISTS " + QuoteName(database));
    if (!made) return made.error().Wrap("sink " + basics_.id);
  }
  databases_.insert(database);
  return boost::outcome_v2::success();
}

Result<std::optional<TargetPosition>> ClickHouseSink::Open(const std::optional<SinkCursor>&,
                                                           const Lineage& lineage) {
  lineage_ = lineage;
  PGF_TRY(Connect());
  PGF_TRY(auto theirs, state_->Load());
  // The position is stored after the batch's rows: when the runner trusts it and it is
  // ahead, the stored cursor merely missed the last acknowledgement.
  if (!theirs) return std::optional<TargetPosition>();
  return std::optional<TargetPosition>(
      TargetPosition{.applied = theirs->applied, .lineage = theirs->lineage});
}

Result<void> ClickHouseSink::Rewind(const SinkCursor& to, const Lineage& lineage) {
  const bool was_open = ch_ != nullptr;
  lineage_ = lineage;
  if (!was_open) {
    PGF_TRY(Connect());
  } else {
    state_.emplace(*ch_, options_.database, basics_.id, lineage_);
  }
  PGF_TRY(state_->Load());
  PGF_TRY(state_->Rewind(to.applied));
  if (!was_open) Stop();
  return boost::outcome_v2::success();
}

Result<void> ClickHouseSink::BeginReplace(Tables tables) {
  if (!ch_) return Fail(ErrorKind::kSink, "copy begun before Open");
  // Versions cannot be reset here (the version is the engine's), so the rows go first.
  return DeleteTenantRows(tables, "", "the rows a copy replaces");
}

Result<void> ClickHouseSink::FinishLiveReplace(Tables tables, Lsn version) {
  if (!ch_) return Fail(ErrorKind::kSink, "copy finished before Open");
  // Every version of a row older than the copy goes: a row the copy wrote or the stream
  // changed since has a newer one, which stays (and wins under FINAL anyway).
  return DeleteTenantRows(tables, fmt::format("< {}", version.value()),
                          "the rows a copy did not find");
}

Result<void> ClickHouseSink::DeleteTenantRows(Tables tables, const std::string& version_below,
                                              const std::string& what) {
  for (const auto& schema : tables) {
    PGF_TRY(const TableTarget* t, TargetOf(*schema));
    if (t == nullptr) continue;
    PGF_TRY(const RowEncoder* encoder, Prepare(schema));
    std::vector<std::string> parts;
    if (!version_below.empty()) parts.push_back(QuoteName(t->version_column) + " " + version_below);
    if (!basics_.AllTenants() && t->tenant) parts.push_back(encoder->TenantCondition(basics_.tenants));
    const std::string condition = parts.empty() ? "1" : fmt::format("{}", fmt::join(parts, " AND "));
    // A mutation rewrites every part: made only when there is something to delete.
    auto count = ch_->Query("counting " + what,
                            fmt::format("SELECT count() FROM {} WHERE {} FORMAT TabSeparated",
                                        t->Qualified(), condition));
    if (!count) return count.error().Wrap(t->Describe());
    if (count.value() == "0\n") continue;
    auto r = ch_->Query("deleting " + what + " (a mutation)",
                        fmt::format("ALTER TABLE {} DELETE WHERE {}", t->Qualified(), condition));
    if (!r) return r.error().Wrap(t->Describe());
    PGF_TRY(WaitForMutations(*t));
  }
  return boost::outcome_v2::success();
}

Result<const TableTarget*> ClickHouseSink::TargetOf(const TableSchema& schema) {
  ShapeKey key{schema.QualifiedName(), schema.Fingerprint()};
  auto it = targets_.find(key);
  if (it == targets_.end()) {
    const TableConfig* table = basics_.Tracked(schema.schema_name, schema.table_name);
    PGF_TRY(auto target, ResolveTarget(basics_, options_, table, schema));
    it = targets_.emplace(key, std::move(target)).first;
  }
  return it->second ? &*it->second : nullptr;
}

Result<const RowEncoder*> ClickHouseSink::Prepare(
    const std::shared_ptr<const TableSchema>& schema) {
  ShapeKey key{schema->QualifiedName(), schema->Fingerprint()};
  if (auto it = prepared_.find(key); it != prepared_.end()) return &it->second;
  PGF_TRY(const TableTarget* t, TargetOf(*schema));
  if (t == nullptr) return Fail(ErrorKind::kProtocol, schema->QualifiedName() + " is not mapped");
  PGF_TRY(EnsureDatabase(t->database));
  // Before the ALTER that adds the column: see Sink::SetBackfillRequest. Without a
  // requester (a backfill writing the table's rows itself) there is nothing to ask.
  const std::string source = t->source_name;
  std::function<Result<void>()> before_adding = [this, source]() -> Result<void> {
    if (backfill_request_) return backfill_request_(source);
    return boost::outcome_v2::success();
  };
  PGF_TRY(auto types,
          SyncTargetTable(*ch_, *t, *schema, features_, options_.create_tables, before_adding));
  return &prepared_.try_emplace(key, *t, *schema, std::move(types)).first->second;
}

Result<std::string> ClickHouseSink::Write(std::span<const ChangeEvent> events) {
  if (!ch_) return Fail(ErrorKind::kSink, "written before Open");
  auto applied = ApplyBatch(events);
  if (!applied) {
    // A target may have changed under a failed statement: look at it again.
    prepared_.clear();
    return applied.error();
  }
  PGF_TRY(FailpointHit("sink.mid_write"));
  PGF_TRY(state_->Save(events.back().id));
  PGF_TRY(FailpointHit("sink.after_write"));
  return events.back().id.ToString();
}

Result<void> ClickHouseSink::ApplyBatch(std::span<const ChangeEvent> events) {
  const auto key_of =
      [this](
          const std::shared_ptr<const TableSchema>& schema) -> Result<const std::vector<size_t>*> {
    PGF_TRY(const TableTarget* t, TargetOf(*schema));
    return t ? &t->key : nullptr;
  };
  PGF_TRY(auto steps, clickhouse::PlanChanges(events, key_of));
  for (size_t s = 0; s < steps.size(); ++s) {
    PlanStep& step = steps[s];
    if (step.truncate) {
      PGF_TRY(const RowEncoder* encoder, Prepare(step.truncate->schema));
      PGF_TRY(Truncate(*encoder, *step.truncate));
      continue;
    }
    for (PlannedTable& table : step.tables) {
      PGF_TRY(const RowEncoder* encoder, Prepare(table.schema));
      PGF_TRY(FillUnchangedValues(*ch_, *encoder, table));
      PGF_TRY(InsertRows(*encoder, table, s));
    }
  }
  return boost::outcome_v2::success();
}

Result<void> ClickHouseSink::InsertRows(const RowEncoder& encoder, const PlannedTable& table,
                                        size_t step) {
  const TableTarget& t = encoder.target();
  size_t chunk = 0;
  auto send = [&]() -> Result<void> {
    ClickHouseHttp::Settings settings;
    if (features_.dedup_token) {
      // The same rows re-sent after a crash or timeout carry the same token, and a server
      // that keeps a dedup window drops them; a rewind (generation) starts new tokens.
      settings.emplace_back(
          "insert_deduplication_token",
          fmt::format("pgfanout/{}/{}/{}.{}/{}-{}/{}/{}", basics_.id, state_->generation(),
                      t.database, t.table, table.first.ToString(), table.last.ToString(), step,
                      chunk));
    }
    ++chunk;
    auto r = ch_->Insert("inserting rows", encoder.InsertStatement(), body_, settings);
    body_.clear();
    if (!r) return r.error().Wrap(t.Describe());
    return boost::outcome_v2::success();
  };
  body_.clear();
  for (const PlannedRow& row : table.rows) {
    PGF_TRY(encoder.Append(row, body_));
    if (body_.size() >= kInsertBytes) PGF_TRY(send());
  }
  if (!body_.empty()) PGF_TRY(send());
  return boost::outcome_v2::success();
}

Result<void> ClickHouseSink::Truncate(const RowEncoder& encoder, const PlannedTruncate& truncate) {
  const TableTarget& t = encoder.target();
  // Only rows at or below the TRUNCATE's version go: what a retry of an older batch, or a
  // later change of the same transaction, inserted stays. The mutation rewrites the parts
  // that exist now; rows inserted after it are not touched.
  std::string condition =
      fmt::format("{} <= {}", QuoteName(t.version_column), truncate.version.value());
  if (!basics_.AllTenants()) {
    if (!t.tenant) {
      // The router sends such a table to "*" sinks only; refuse rather than wipe others' rows.
      return MakeError(ErrorKind::kInvalidArgument,
                       t.Describe() +
                           ": TRUNCATE on a per-tenant sink needs the table's tenant "
                           "column");
    }
    condition = encoder.TenantCondition(basics_.tenants) + " AND " + condition;
  }
  auto r = ch_->Query("deleting the truncated rows (a mutation)",
                      fmt::format("ALTER TABLE {} DELETE WHERE {}", t.Qualified(), condition));
  if (!r) return r.error().Wrap(t.Describe());
  return WaitForMutations(t);
}

Result<void> ClickHouseSink::WaitForMutations(const TableTarget& t) {
  const auto deadline = std::chrono::steady_clock::now() + kMutationWait;
  auto pause = std::chrono::milliseconds(20);
  while (true) {
    auto text = ch_->Query("waiting for the mutation",
                           fmt::format("SELECT count() FROM system.mutations WHERE database = {} "
                                       "AND table = {} AND is_done = 0 FORMAT TabSeparated",
                                       QuoteString(t.database), QuoteString(t.table)));
    if (!text) return text.error().Wrap(t.Describe());
    // Past the deadline the mutation still runs, durably: the batch stands.
    if (text.value() == "0\n" || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  return boost::outcome_v2::success();
}

}  // namespace pgfanout
