#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/lsn.h"
#include "src/pgclient/pg_connection.h"  // QuoteIdent, QuoteLiteral
#include "src/sinks/postgres/table_mapping.h"

namespace pgfanout {

// The SQL the Postgres sink sends, built as text. Every identifier is quoted (a table may
// be called `Weird "Name"`); the only literals are values pgfanout made or the config's
// tenant ids, quoted as E'' strings.
//
// Staging table layout (one TEMP table per source table shape, ON COMMIT DELETE ROWS):
//   the staged source columns under their source names, typed as the source types;
//   _pgf_old_<i>  the old key of an upsert whose row moved (RowChange::moved_from);
//   _pgf_version  commit LSN; _pgf_commit_time; _pgf_group (0: delete, n: upsert group n);
//   _pgf_moved    true when _pgf_old_<i> are set.

// Target column types a mapping writes to, as format_type(oid, -1) names them on the
// target: what a staged value is CAST to (the column's own modifier applies on assignment,
// so a too-long varchar fails instead of being cut).
struct TargetTypes {
  std::vector<std::string> columns;   // per TableMapping::columns
  std::vector<std::string> computed;  // per config.computed
  std::string soft_delete;            // "" when the mapping has no soft-delete column
};

std::string TargetName(const TableMapping& m);  // "schema"."table"
std::string StageName(int serial);              // unquoted

// `staged_types`: per TableMapping::staged, the stage column types (source type names).
std::string CreateStageSql(const TableMapping& m, const TableSchema& schema,
                           const std::string& stage, const std::vector<std::string>& staged_types);
std::string CopyStageSql(const std::string& stage);
std::string ClearStageSql(const std::string& stage);

// Which rows of a target table a sink may change. `tenants` null: every row (a "*" sink,
// or a table the mapping gives no tenant column, which is then the sink's own). Else the
// sink serves only these tenants and may share the table with other tenants' sinks:
// deletes, key moves and TRUNCATE touch only rows whose tenant column reads as one of
// them (compared as text, byte for byte: pgclient's TenantTextMatch), and an upsert takes over a row
// of another tenant only with a strictly newer version. At an equal version (one source
// transaction) the row may be the other sink's newer state: a row that moved in the same
// transaction as this sink's last write of it.
//
// The SQL below takes `tenants` as MatchedTenants() gives it for the mapping.
const std::vector<std::string>* MatchedTenants(const TableMapping& m,
                                               const std::vector<std::string>* tenants);

// Upserts the rows of group `group`, leaving out the mapping columns flagged in `left_out`
// (unchanged TOAST values: the target keeps its own); computed columns are left out too
// when anything is.
std::string UpsertSql(const TableMapping& m, const TargetTypes& types, const std::string& stage,
                      int group, const std::vector<bool>& left_out,
                      const std::vector<std::string>* tenants);
std::string DeleteSql(const TableMapping& m, const TargetTypes& types, const std::string& stage,
                      const std::vector<std::string>* tenants);
// Renames the key of target rows whose source row changed key (see RowChange::moved_from),
// so the values the stream did not resend stay with the row.
std::string MoveSql(const TableMapping& m, const TargetTypes& types, const std::string& stage,
                    const std::vector<std::string>* tenants);
// All rows, or (with `tenants` non-null) the rows of those tenants only.
std::string TruncateSql(const TableMapping& m, const TargetTypes& types,
                        const std::vector<std::string>* tenants, Lsn version,
                        int64_t commit_time_us);

// A copy that replaces the sink's rows (Sink::BeginReplace): every row of the tenants is
// set to version 0, which any copied row overwrites; what is still at 0 when the copy
// ends was not in the source: SweepSql deletes it (soft: marks it deleted at `version`).
std::string ResetVersionsSql(const TableMapping& m, const std::vector<std::string>* tenants);
std::string SweepSql(const TableMapping& m, const TargetTypes& types,
                     const std::vector<std::string>* tenants, Lsn version, int64_t now_us);

// DDL. `column_types` are full type names (with modifier) per TableMapping::columns.
std::string CreateTableSql(const TableMapping& m, const std::vector<std::string>& column_types,
                           const std::vector<std::string>& computed_types);
// The comment that marks a column the sink made from a source column (and may follow).
inline constexpr std::string_view kOwnColumnComment = "pgfanout: source column";
std::string AddColumnSql(const TableMapping& m, const std::string& column, const std::string& type,
                         bool own);
std::string DropColumnSql(const TableMapping& m, const std::string& column);
std::string AlterColumnTypeSql(const TableMapping& m, const std::string& column,
                               const std::string& type);

// The sink's position in `schema`.pgfanout_sink_state. Parameters: $1 sink id, $2 commit
// LSN (text), $3 ordinal, and its lineage: $4 source system id, $5 slot, $6 timeline,
// $7 event log id.
std::string SinkStateTable(const std::string& schema);
std::string SaveSinkStateSql(const std::string& schema);

}  // namespace pgfanout
