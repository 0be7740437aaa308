#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "src/config/config.h"
#include "src/core/error.h"
#include "src/pgclient/pg_connection.h"

namespace pgfanout {

// One side of a table comparison: which rows, and which of their columns.
struct VerifySide {
  std::string from;                  // quoted "schema"."table"
  std::string where;                 // SQL condition, "" for every row
  std::vector<std::string> columns;  // quoted column names, in comparison order
  bool exists = true;                // false: a target table the sink has not created (yet)
};

// How one source table is compared with its target table for one sink (`pgfanout verify`).
struct TableVerifyPlan {
  std::string source_name;  // public.users, public."Team Rooms": for output
  std::string target_name;
  std::vector<std::string> source_columns;  // the copied columns, unquoted, in mapping order
  std::vector<std::string> target_columns;  // their target names (after rename), same order
  std::vector<size_t> key;                  // positions of the row's key in the lists above
  bool whole_row_key = false;               // the table has no key: every column is the key
  std::vector<std::string> computed;        // target columns that are not compared
  VerifySide source;                        // the sink's tenants' rows (every row for a "*" sink)
  VerifySide target;                        // every row not soft-deleted
  std::string problem;  // non-empty: the rows cannot be compared (a target column is missing)
};

// Builds the plan from the config and both catalogs (ReadTableCatalog). The key is
// TableCatalog::KeyFor, the rule PrepareSource applies: `table.key`, else the replica
// identity index's columns, else the primary key's; with none, every column. Errors:
// kInvalidArgument when the source table or a column the mapping names is missing there, or the
// mapping leaves out a key column; Exec's errors otherwise. A missing target table is not an error
// (`target.exists` is false: its rows are all missing).
Result<TableVerifyPlan> PlanTableVerify(const SinkConfig& sink, const TableConfig& table,
                                        const SinkTableConfig& mapping, const PgConnection& source,
                                        const PgConnection& target);

// `users` -> users, `Team Rooms` -> "Team Rooms": quotes only names that need it, for
// output that can be pasted back into SQL.
std::string DisplayIdent(std::string_view name);

}  // namespace pgfanout
