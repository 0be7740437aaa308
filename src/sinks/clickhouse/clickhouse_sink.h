#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "src/sinks/clickhouse/change_plan.h"
#include "src/sinks/clickhouse/clickhouse_http.h"
#include "src/sinks/clickhouse/row_encoder.h"
#include "src/sinks/clickhouse/sink_state.h"
#include "src/sinks/clickhouse/table_target.h"
#include "src/sinks/clickhouse/type_mapping.h"
#include "src/sinks/sink.h"

namespace pgfanout {

// Batches into ClickHouse tables over its HTTP interface (see README.md).
//
// Every change becomes an inserted row: ReplacingMergeTree(pgfanout_version) keeps, per
// key, the row with the highest commit LSN, and a delete inserts the key with
// pgfanout_is_deleted = 1; readers use `FINAL WHERE pgfanout_is_deleted = 0`. Applying a
// batch again inserts rows with the same versions, which FINAL collapses, so at-least-once
// delivery has an exactly-once effect there. Write() returns only after ClickHouse answered
// 200 to every statement of the batch, and then records the batch's last event in
// <database>.pgfanout_sink_state (with the lineage of the log it runs from), which Open()
// returns for the runner to judge.
//
// Threads: one owner (its SinkRunner).
class ClickHouseSink final : public Sink {
  using ServerFeatures = clickhouse::ServerFeatures;
  using TableTarget = clickhouse::TableTarget;
  using RowEncoder = clickhouse::RowEncoder;

 public:
  ClickHouseSink(SinkBasics basics, ClickHouseSinkOptions options);
  ~ClickHouseSink() override;

  Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                             const Lineage& lineage) override;
  Result<std::string> Write(std::span<const ChangeEvent> events) override;
  Result<void> Rewind(const SinkCursor& to, const Lineage& lineage) override;
  // The tenants' rows of `tables` are deleted (a mutation) before the copy writes them.
  Result<void> BeginReplace(Tables tables) override;
  // While streaming, rows stay until the end, then the tenants' rows of `tables` older
  // than `version` (neither copied nor changed since the copy began) are deleted.
  Result<void> BeginLiveReplace(Tables) override { return boost::outcome_v2::success(); }
  Result<void> FinishLiveReplace(Tables tables, Lsn version) override;
  bool ReplacesRows() const override { return true; }
  void SetBackfillRequest(BackfillRequest request) override {
    backfill_request_ = std::move(request);
  }
  void Stop() override;

  // What Open() found the server able to do (tests and status).
  const ServerFeatures& features() const { return features_; }

 private:
  using ShapeKey = std::pair<std::string, uint64_t>;  // qualified name, fingerprint

  Error Fail(ErrorKind kind, const std::string& what) const;
  Result<void> Connect();
  Result<void> DetectFeatures();
  Result<void> EnsureDatabase(const std::string& database);
  Result<const TableTarget*> TargetOf(const TableSchema& schema);  // nullptr: not mapped
  Result<const RowEncoder*> Prepare(const std::shared_ptr<const TableSchema>& schema);
  Result<void> ApplyBatch(std::span<const ChangeEvent> events);
  Result<void> InsertRows(const RowEncoder& encoder, const clickhouse::PlannedTable& table,
                          size_t step);
  Result<void> Truncate(const RowEncoder& encoder, const clickhouse::PlannedTruncate& truncate);
  Result<void> WaitForMutations(const TableTarget& target);
  // Deletes the sink's tenants' rows of `tables` (those with a version `version_below`,
  // e.g. "< 1234", when given) in one mutation per table that has any; `what` names them.
  Result<void> DeleteTenantRows(Tables tables, const std::string& version_below,
                                const std::string& what);

  SinkBasics basics_;
  ClickHouseSinkOptions options_;
  BackfillRequest backfill_request_;
  // Per source table shape; nullopt: not mapped. Depends on the config only.
  std::map<ShapeKey, std::optional<TableTarget>> targets_;
  // Per Open(): the server's state of each target; dropped when a batch fails.
  std::map<ShapeKey, RowEncoder> prepared_;
  std::set<std::string> databases_;  // known to exist
  std::unique_ptr<clickhouse::ClickHouseHttp> ch_;
  std::optional<clickhouse::SinkStateStore> state_;
  ServerFeatures features_;
  std::string body_;
  Lineage lineage_;  // stored with every position
};

}  // namespace pgfanout
