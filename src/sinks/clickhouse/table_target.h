#pragma once

#include <optional>
#include <string>
#include <vector>

#include "src/config/config.h"
#include "src/core/change_event.h"
#include "src/core/error.h"
#include "src/sinks/clickhouse/type_mapping.h"
#include "src/sinks/sink.h"

namespace pgfanout::clickhouse {

// The version column: the commit LSN of the row's change, ReplacingMergeTree's version.
inline constexpr const char* kVersionColumn = "pgfanout_version";
// The marker column: 1 on the row a delete leaves. Readers select
// `… FROM t FINAL WHERE pgfanout_is_deleted = 0`.
inline constexpr const char* kDeletedColumn = "pgfanout_is_deleted";
// The comment on every column the sink made from a source column (ADD COLUMN follows the
// source only on tables whose columns say so, or that it creates).
inline constexpr const char* kOwnColumnComment = "pgfanout: source column";

// Where one source table, in one shape, lands in ClickHouse. Every source column maps to
// a column of the same name (ClickHouse sinks take no columns/rename options).
struct TableTarget {
  std::string sink_id;
  std::string source_name;  // "public.accounts"
  std::string database;
  std::string table;
  std::string version_column;    // UInt64, the commit LSN; ReplacingMergeTree's version
  std::vector<size_t> key;       // source column indexes of the row identity, key order
  std::optional<size_t> tenant;  // source index of the tenant column, if the table has one

  // "sink s: table public.accounts -> analytics.accounts", the prefix of its errors.
  std::string Describe() const;
  // `analytics`.`accounts`
  std::string Qualified() const;
  bool InKey(size_t source) const;
};

// The target of `schema` in the sink (`sink`, `options`), or nullopt when the sink does
// not map the table. `table` is the tracked table's config (key, tenant column; nullptr if
// absent). Errors: kInvalidArgument when the table has no key, or a source column is named
// like the version or marker column.
Result<std::optional<TableTarget>> ResolveTarget(const SinkBasics& sink,
                                                 const ClickHouseSinkOptions& options,
                                                 const TableConfig* table,
                                                 const TableSchema& schema);

// CREATE TABLE IF NOT EXISTS for `t` in `schema`'s shape: ReplacingMergeTree(version)
// ordered by the key, no partitions (a key's versions must share one part set for FINAL).
std::string CreateTableSql(const TableTarget& t, const TableSchema& schema,
                           const ServerFeatures& features);

// ALTER TABLE … ADD COLUMN for source column `column` (18.16 has no IF NOT EXISTS there).
std::string AddColumnSql(const TableTarget& t, const ColumnSchema& column,
                         const ServerFeatures& features);

}  // namespace pgfanout::clickhouse
