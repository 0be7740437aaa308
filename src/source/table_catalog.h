#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/config/config.h"
#include "src/core/error.h"
#include "src/pgclient/pg_connection.h"

namespace pgfanout {

// What the source's catalog says about one tracked table.
struct TableCatalog {
  struct Column {
    std::string name;
    uint32_t type_oid = 0;
    int32_t type_modifier = -1;
    bool in_primary_key = false;
    bool in_identity_index = false;  // in the REPLICA IDENTITY USING INDEX index
  };
  uint32_t oid = 0;
  char replica_identity = 'd';  // pg_class.relreplident
  char kind = 'r';              // pg_class.relkind
  bool has_primary_key = false;
  std::vector<Column> columns;  // in attnum order, dropped columns left out

  // The row's key for upserting sinks: `table.key` when the config gives one, else the
  // replica identity index's columns, else the primary key's.
  std::vector<std::string> KeyFor(const TableConfig& table) const;
  const Column* Find(const std::string& name) const;
};

// Reads the catalog entry of `table`; nullopt when the table does not exist (or is not a
// plain or partitioned table). Only the columns the table's publication entry lists
// (`table.published_columns`), unless `all_columns`: what the stream and a copy carry.
Result<std::optional<TableCatalog>> ReadTableCatalog(const PgConnection& conn,
                                                     const TableConfig& table,
                                                     bool all_columns = false);

}  // namespace pgfanout
