#pragma once

#include <string>

#include "src/core/change_event.h"
#include "src/core/error.h"
#include "src/pgclient/pg_connection.h"
#include "src/sinks/postgres/table_mapping.h"
#include "src/sinks/postgres/target_catalog.h"
#include "src/sinks/postgres/target_sql.h"

namespace pgfanout {

// Makes the target table of `m` fit the source table in `schema`'s shape, as far as the
// sink's config allows, inside the caller's transaction:
// - missing table: created when create_tables (schema too), else kMismatch;
// - missing mapped, computed, soft-delete or version column: added when create_tables,
//   else kMismatch naming it;
// - follow_ddl only, and only for columns the sink made itself (kOwnColumnComment): a
//   column the source dropped is dropped, a changed type is followed with ALTER COLUMN
//   TYPE … USING col::text::type (kMismatch naming column and types when the target
//   cannot). Version, soft-delete and computed columns are never dropped.
// Needs catalog.Resolve(schema) done and the staging table `stage` created (a computed
// column's type is what the target makes of its expression over the stage). Returns the
// types to cast staged values to, and in `refill` whether it added a copied column to a
// table that holds rows: their values for it are on the source only (see
// Sink::SetBackfillRequest).
Result<TargetTypes> SyncTargetTable(const PgConnection& conn, TargetCatalog& catalog,
                                    const TableMapping& m, const TableSchema& schema,
                                    const std::string& stage, bool& refill);

}  // namespace pgfanout
