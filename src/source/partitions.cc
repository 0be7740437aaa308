#include "src/source/partitions.h"

#include <fmt/format.h>

#include <algorithm>

namespace pgfanout {
namespace {

std::string Quoted(const PgConnection& sql, const std::string& qualified) {
  const auto dot = qualified.find('.');
  return sql.QuoteIdent(qualified.substr(0, dot)) + "." + sql.QuoteIdent(qualified.substr(dot + 1));
}

std::string Describe(const TableCatalog& c) {
  if (c.replica_identity == 'f') return "FULL";
  if (c.replica_identity == 'n') return "NOTHING";
  const auto columns = IdentityColumns(c);
  if (columns.empty()) return "DEFAULT without a primary key";
  return fmt::format("{} ({})", c.replica_identity == 'i' ? "USING INDEX" : "DEFAULT",
                     fmt::join(columns, ", "));
}

}  // namespace

std::vector<std::string> IdentityColumns(const TableCatalog& catalog) {
  std::vector<std::string> out;
  for (const auto& c : catalog.columns) {
    const bool in = catalog.replica_identity == 'f' ||
                    (catalog.replica_identity == 'd' && c.in_primary_key) ||
                    (catalog.replica_identity == 'i' && c.in_identity_index);
    if (in) out.push_back(c.name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<PartitionLeaf>> ReadLeaves(const PgConnection& sql, const TableConfig& root,
                                              uint32_t root_oid) {
  PGF_TRY(auto r,
          sql.Exec("listing the partitions of " + root.QualifiedName(),
                   "SELECT n.nspname, c.relname, c.relkind FROM pg_partition_tree($1::oid) t "
                   "JOIN pg_class c ON c.oid = t.relid "
                   "JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE t.isleaf ORDER BY t.level, c.relname",
                   {std::to_string(root_oid)}));
  std::vector<PartitionLeaf> leaves;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    TableConfig leaf;
    leaf.schema = GetValue(r, i, 0).value_or("");
    leaf.name = GetValue(r, i, 1).value_or("");
    if (GetValue(r, i, 2) == "f") {
      return MakeError(ErrorKind::kInvalidArgument,
                       fmt::format("table {}: its partition {} is a foreign table, whose rows "
                                   "change on another server and never reach this one's WAL; "
                                   "pgfanout cannot follow it",
                                   root.QualifiedName(), leaf.QualifiedName()));
    }
    PGF_TRY(auto catalog, ReadTableCatalog(sql, leaf));
    if (!catalog) continue;  // detached or dropped since the listing
    leaves.push_back(PartitionLeaf{leaf.QualifiedName(), std::move(*catalog)});
  }
  return leaves;
}

Result<void> CheckLeafIdentities(const PgConnection& sql, const TableConfig& root,
                                 const TableCatalog& root_catalog,
                                 const std::vector<PartitionLeaf>& leaves) {
  const bool root_full = root_catalog.replica_identity == 'f';
  const auto root_columns = IdentityColumns(root_catalog);
  std::vector<std::string> differ, fixes;
  for (const auto& leaf : leaves) {
    const TableCatalog& c = leaf.catalog;
    const bool full = c.replica_identity == 'f';
    if (full == root_full && (full || IdentityColumns(c) == root_columns)) continue;
    differ.push_back(fmt::format("{} is {}", leaf.qualified, Describe(c)));
    if (root_full) {
      fixes.push_back(
          fmt::format("ALTER TABLE {} REPLICA IDENTITY FULL;", Quoted(sql, leaf.qualified)));
    }
  }
  if (differ.empty()) return boost::outcome_v2::success();
  const size_t shown = std::min<size_t>(differ.size(), 5);
  std::vector<std::string> listed(differ.begin(), differ.begin() + shown);
  if (differ.size() > shown) listed.push_back(fmt::format("and {} more", differ.size() - shown));
  std::string fix =
      root_full ? "Run: " +
                      fmt::format(
                          "{}", fmt::join(fixes.begin(),
                                          fixes.begin() + std::min<size_t>(fixes.size(), 5), " ")) +
                      (fixes.size() > 5 ? " (and the same for every partition)" : "") +
                      " (REPLICA IDENTITY is per partition: setting it on the root does not reach "
                      "them)"
                : "Give each partition the root's replica identity (a primary key on the root "
                  "reaches every partition)";
  return MakeError(
      ErrorKind::kInvalidArgument,
      fmt::format("table {} is partitioned with replica identity {}, but its partitions {}. "
                  "PostgreSQL sends a partition's old rows in the partition's replica identity "
                  "under the root's, so its UPDATEs and DELETEs would reach the sinks wrong. {}",
                  root.QualifiedName(), Describe(root_catalog), fmt::join(listed, ", "), fix));
}

Result<void> CheckNoTrackedAncestor(const Config& config, const PgConnection& sql,
                                    const TableConfig& table, uint32_t oid) {
  PGF_TRY(auto r, sql.Exec("listing the partition ancestors of " + table.QualifiedName(),
                           "SELECT n.nspname || '.' || c.relname "
                           "FROM pg_partition_ancestors($1::oid) a "
                           "JOIN pg_class c ON c.oid = a.relid "
                           "JOIN pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE a.relid <> $1::oid",
                           {std::to_string(oid)}));
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    const std::string ancestor = GetValue(r, i, 0).value_or("");
    for (const auto& t : config.tables) {
      if (t.QualifiedName() != ancestor) continue;
      return MakeError(ErrorKind::kInvalidArgument,
                       fmt::format("{}: tables: lists both {} and its partition {}; the "
                                   "partition's changes arrive as {}'s (the publication "
                                   "publishes through the partition root), so {} would receive "
                                   "nothing. Remove {} from tables:",
                                   config.path, ancestor, table.QualifiedName(), ancestor,
                                   table.QualifiedName(), table.QualifiedName()));
    }
  }
  return boost::outcome_v2::success();
}

}  // namespace pgfanout
