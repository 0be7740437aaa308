#pragma once

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
  // `tables`: the tracked tables (keys, tenant columns).
  PostgresSink(SinkConfig config, std::vector<TableConfig> tables);
  ~PostgresSink() override;

  Result<std::optional<SinkCursor>> Open(const std::optional<SinkCursor>& stored) override;
  Result<std::string> Write(std::span<const ChangeEvent> events) override;
  Result<void> Rewind(const SinkCursor& to) override;
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
  Result<void> EnsureStateTable(const PgConnection& conn) const;
  Result<void> SaveState(const PgConnection& conn, EventId id) const;
  Result<const TableMapping*> MappingOf(const TableSchema& schema);  // nullptr: not mapped
  Result<const std::vector<size_t>*> KeyOf(const TableSchema& schema);
  Result<Prepared*> Prepare(const TableSchema& schema);
  Result<void> Apply(const BatchPlan& plan, EventId last);
  Result<void> ApplyRows(Prepared& p, const TableChanges& changes);
  Result<void> ApplyTruncate(Prepared& p, const TruncateChange& truncate);
  Result<void> Exec(const Prepared& p, std::string_view what, const std::string& sql);

  SinkConfig config_;
  std::vector<TableConfig> tables_;
  std::optional<PgConnection> conn_;
  // Per source table shape; nullopt: not mapped. Depends on the config only.
  std::map<ShapeKey, std::optional<TableMapping>> mappings_;
  // Per connection (temp tables, catalog); dropped when a transaction fails.
  std::map<ShapeKey, Prepared> prepared_;
  TargetCatalog catalog_;
  int next_stage_ = 0;
  std::string buffer_;
  BackfillRequest backfill_request_;
};

}  // namespace pgfanout
