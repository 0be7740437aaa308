#pragma once

#include <functional>
#include <string>
#include <vector>

#include "src/core/change_event.h"
#include "src/core/error.h"
#include "src/sinks/clickhouse/clickhouse_http.h"
#include "src/sinks/clickhouse/table_target.h"
#include "src/sinks/clickhouse/type_mapping.h"

namespace pgfanout::clickhouse {

// Makes the target table of `t` fit the source table in `schema`'s shape, and returns the
// target type of every source column (index = source column):
// - missing table: created when `create_tables` (CreateTableSql), else kMismatch;
// - the table must be a ReplacingMergeTree (or its Replicated form) versioned by
//   t.version_column, sorted by exactly the key columns (else versions of a row would not
//   collapse, or different rows would), with the marker column: else kMismatch;
// - a source column the table lacks: added (Nullable, with kOwnColumnComment) when
//   `create_tables` and the table is the sink's own (its columns carry the comment), else
//   kMismatch naming it. Before adding to a table that holds rows, `before_adding_to_rows`
//   runs (Sink::SetBackfillRequest: the rows' values for it are on the source only), so a
//   crash after the ALTER cannot lose that request. Columns are never dropped or retyped.
// - a column type no Postgres value fits (Array, Map...), or a DateTime64 column in a
//   time zone other than UTC for a timestamp source: kMismatch naming the column.
Result<std::vector<ChType>> SyncTargetTable(
    ClickHouseHttp& ch, const TableTarget& t, const TableSchema& schema,
    const ServerFeatures& features, bool create_tables,
    const std::function<Result<void>()>& before_adding_to_rows);

}  // namespace pgfanout::clickhouse
