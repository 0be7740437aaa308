#pragma once

#include <map>
#include <string>
#include <vector>

#include "src/config/config.h"
#include "src/core/error.h"
#include "src/pgclient/pg_connection.h"

namespace pgfanout {

// The checks every tracked table must pass before anything is published (PrepareSource
// runs them at each connect): it exists; it has a replica identity, and a partitioned
// root's partitions have the root's (partitions.h); a per-tenant sink's tenant column is
// in the identity; a column list (tables[].columns) holds the identity and the key, and
// is not under FULL; configured tenant values read back as the source writes them; sink
// mappings name published columns and keep the key. Returns each table's key.
Result<std::map<std::string, std::vector<std::string>>> CheckTables(const Config& config,
                                                                    const PgConnection& sql);

}  // namespace pgfanout
