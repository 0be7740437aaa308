#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/config/config.h"
#include "src/core/change_event.h"
#include "src/core/error.h"
#include "src/sinks/sink.h"

namespace pgfanout {

struct MappedColumn {
  size_t source = 0;  // index into TableSchema::columns
  std::string source_name;
  std::string target_name;
};

// How one source table, in one shape (schema fingerprint), lands in its target table.
// Resolved once per shape from the sink's config; everything the SQL needs by index.
struct TableMapping {
  std::string sink_id;
  std::string source_name;  // "public.users"
  uint64_t fingerprint = 0;
  SinkTableConfig config;  // a copy: the default mapping is built on the fly
  std::string target_schema;
  std::string target_table;
  std::string version_column;
  std::vector<MappedColumn> columns;  // the listed columns' order, else source order
  std::vector<size_t> key;            // source indexes of the row identity, in key order
  std::vector<std::string> key_targets;
  std::vector<size_t> key_columns;  // the key's positions in `columns`
  // Source indexes the staging table holds, ascending: the mapped columns, or every column
  // when the mapping has computed columns (their SQL may read any source column).
  std::vector<size_t> staged;
  std::string tenant_target;   // the tenant column's target name; empty: the table has none
  bool create_tables = false;  // the sink creates missing tables and columns
  bool follow_ddl = false;     // create_tables and no explicit column list: follow the source

  // "sink s: table public.users -> public.users_copy", the prefix of this table's errors.
  std::string Describe() const;
  // The staged position of source column `source` (it must be staged).
  size_t StagedIndex(size_t source) const;
};

// The mapping of `schema` in the sink (`sink`, `options`), or nullopt when the sink does
// not map the table. `table` is the tracked table's config (nullptr if absent). Errors:
// kInvalidArgument when the mapping leaves out a key column or the table has no key;
// kMismatch when a column the mapping lists is no longer in the source.
Result<std::optional<TableMapping>> ResolveMapping(const SinkBasics& sink,
                                                   const PostgresSinkOptions& options,
                                                   const TableConfig* table,
                                                   const TableSchema& schema);

}  // namespace pgfanout
