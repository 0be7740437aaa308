#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "src/pgclient/pg_connection.h"
#include "src/sinks/postgres/batch_plan.h"
#include "src/sinks/postgres/table_mapping.h"
#include "src/sinks/postgres/target_catalog.h"
#include "src/sinks/postgres/target_sql.h"
#include "src/sinks/sink.h"

namespace pgfanout {

// Applies batches to a tenant's own Postgres database (see README.md).
//
// Exactly once: each batch is one target transaction that applies the rows and moves this
// sink's row in <schema>.pgfanout_sink_state to the batch's last event; Open() resumes
// from that row when it is ahead of the stored cursor. Rows carry their commit LSN in the
// version column and are only overwritten by a change at least as new, so a replay of
// whole transactions is idempotent too.
class PostgresSink final : public Sink {
 public:
  PostgresSink(SinkBasics basics, PostgresSinkOptions options);
  ~PostgresSink() override;

  Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                             const Lineage& lineage) override;
  Result<std::string> Write(std::span<const ChangeEvent> events) override;
  Result<void> Rewind(const SinkCursor& to, const Lineage& lineage) override;
  // Row versions set to 0, then what is still at 0 after the copy removed (or marked).
  Result<void> BeginReplace(Tables tables) override;
  bool ReplacesRows() const override { return true; }
  Result<void> FinishReplace(Tables tables, Lsn version) override;
  void SetBackfillRequest(BackfillRequest request) override {
    backfill_request_ = std::move(request);
  }
  void Stop() override;

 private:
  // One source table in one shape, ready on the current connection.
  struct Prepared {
    const TableMapping* mapping = nullptr;
    std::string stage;  // TEMP staging table
    TargetTypes types;
    bool stage_used = false;  // holds rows of the open transaction
  };
  using ShapeKey = std::pair<std::string, uint64_t>;  // qualified name, fingerprint

  Error Fail(ErrorKind kind, const std::string& what) const;
  Result<PgConnection> Connect() const;
  // The advisory lock sinks take while they migrate a target's state table: 'pgfa', 1.
  static constexpr int32_t kMigrationLockClass = 0x70676661;
  static constexpr int32_t kMigrationLockObject = 1;
  struct StateTableShape {
    bool table = false;    // <schema>.pgfanout_sink_state exists
    bool lineage = false;  // with the columns of 002_sink_state_lineage.sql
    bool schema = false;   // <schema> exists
  };
  Result<StateTableShape> ReadStateTableShape(const PgConnection& conn) const;
  Result<void> EnsureStateTable(const PgConnection& conn) const;
  // The sink's tenants, or nullptr for a "*" sink.
  const std::vector<std::string>* Tenants() const {
    return basics_.AllTenants() ? nullptr : &basics_.tenants;
  }
  Result<void> SaveState(const PgConnection& conn, EventId id);
  // Inside the batch's transaction: locks the sink's position row and fails (kSink) when
  // it is no longer what this sink last saw or wrote: another pgfanout wrote the
  // destination since (a standby took over while this one was paused). The batch then
  // applies nothing, and the runner reopens at the destination's position.
  Result<void> CheckNotSuperseded();
  Result<const TableMapping*> MappingOf(const TableSchema& schema);  // nullptr: not mapped
  Result<const std::vector<size_t>*> KeyOf(const TableSchema& schema);
  Result<Prepared*> Prepare(const TableSchema& schema);
  Result<void> Apply(const BatchPlan& plan, EventId last);
  Result<void> ApplyRows(Prepared& p, const TableChanges& changes);
  Result<void> ApplyTruncate(Prepared& p, const TruncateChange& truncate);
  Result<void> Exec(const Prepared& p, std::string_view what, const std::string& sql);
  // Runs `each` on every mapped table of `tables` in one target transaction.
  Result<void> InTransaction(std::string_view what,
                             const std::function<Result<void>(Prepared&)>& each, Tables tables);

  SinkBasics basics_;
  PostgresSinkOptions options_;
  std::optional<PgConnection> conn_;
  // Per source table shape; nullopt: not mapped. Depends on the config only.
  std::map<ShapeKey, std::optional<TableMapping>> mappings_;
  // Per connection (temp tables, catalog); dropped when a transaction fails.
  std::map<ShapeKey, Prepared> prepared_;
  // Per source table: the shape (fingerprint) its target was last synced to.
  std::map<std::string, uint64_t> synced_;
  TargetCatalog catalog_;
  int next_stage_ = 0;
  std::string buffer_;
  BackfillRequest backfill_request_;
  Lineage lineage_;  // stored with every position (Open, Rewind)
  // The position row as this sink last read or wrote it (position and log id); nullopt:
  // no row.
  std::optional<std::pair<EventId, std::string>> held_;
};

}  // namespace pgfanout
