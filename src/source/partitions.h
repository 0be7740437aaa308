#pragma once

#include <string>
#include <vector>

#include "src/config/config.h"
#include "src/core/error.h"
#include "src/pgclient/pg_connection.h"
#include "src/source/table_catalog.h"

namespace pgfanout {

// A partitioned table is tracked by its root: the publication is made WITH
// (publish_via_partition_root = true), so every partition's changes arrive under the
// root's name and columns (a row moving between partitions as a DELETE and an INSERT of
// the root). What PostgreSQL 15 takes from each partition and not from the root has to
// agree with the root, which these checks make sure of before anything is published.

// One leaf partition of a tracked root.
struct PartitionLeaf {
  std::string qualified;  // "schema.name"
  TableCatalog catalog;
};

// The leaf partitions of the partitioned table `root_oid`, in the order of
// pg_partition_tree. A foreign-table leaf is refused: its rows change in another server
// and never reach this one's WAL.
Result<std::vector<PartitionLeaf>> ReadLeaves(const PgConnection& sql, const TableConfig& root,
                                              uint32_t root_oid);

// The replica identity of every leaf must be the root's: pgoutput flags an old row as a
// whole row or a key by the root's identity but fills it from the leaf's, so a leaf that
// differs would send a key under the whole-row flag (its other columns NULL) or columns
// the root's key does not name.
Result<void> CheckLeafIdentities(const PgConnection& sql, const TableConfig& root,
                                 const TableCatalog& root_catalog,
                                 const std::vector<PartitionLeaf>& leaves);

// A partition tracked beside one of its ancestors would receive nothing (its changes
// arrive as the ancestor's), so that is refused, naming both.
Result<void> CheckNoTrackedAncestor(const Config& config, const PgConnection& sql,
                                    const TableConfig& table, uint32_t oid);

// The replica identity's columns of `catalog` by name (every column for FULL), sorted.
std::vector<std::string> IdentityColumns(const TableCatalog& catalog);

}  // namespace pgfanout
