#include "src/daemon/partition_watch.h"

#include <fmt/format.h>

#include "src/source/partitions.h"
#include "src/source/table_catalog.h"

namespace pgfanout {

PartitionWatch::PartitionWatch(const Config& config) : roots_(config.tables) {}

Result<std::vector<PartitionWatch::Change>> PartitionWatch::Check(const PgConnection& sql) {
  std::vector<Change> changes;
  const auto now = std::chrono::system_clock::now();
  for (const auto& t : roots_) {
    const std::string quoted = sql.QuoteIdent(t.schema) + "." + sql.QuoteIdent(t.name);
    PGF_TRY(auto r, sql.Exec("listing the partitions of " + t.QualifiedName(),
                             "SELECT c.oid::text, n.nspname || '.' || c.relname, "
                             "  c.relfilenode::text, format('%I.%I', n.nspname, c.relname) "
                             "FROM pg_class root, pg_partition_tree(root.oid) p "
                             "JOIN pg_class c ON c.oid = p.relid "
                             "JOIN pg_namespace n ON n.oid = c.relnamespace "
                             "WHERE root.oid = to_regclass($1) AND root.relkind = 'p' "
                             "  AND p.isleaf",
                             {quoted}));
    std::map<std::string, Leaf> now_leaves;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      now_leaves[GetValue(r, i, 0).value_or("")] =
          Leaf{GetValue(r, i, 1).value_or(""), GetValue(r, i, 2).value_or(""),
               GetValue(r, i, 3).value_or("")};
    }
    auto last = last_.find(t.QualifiedName());
    if (last == last_.end()) {
      last_[t.QualifiedName()] = std::move(now_leaves);
      continue;
    }
    bool added = false;
    for (const auto& [oid, leaf] : now_leaves) {
      auto before = last->second.find(oid);
      if (before == last->second.end()) {
        PGF_TRY(auto rows, sql.Exec("looking for rows in " + leaf.name,
                                    "SELECT EXISTS (SELECT 1 FROM " + leaf.quoted + ")"));
        changes.push_back({.table = t.QualifiedName(),
                           .partition = leaf.name,
                           .what = "added",
                           .had_rows = GetValue(rows, 0, 0) == "t",
                           .seen_at = now});
        added = true;
      } else if (before->second.filenode != leaf.filenode) {
        changes.push_back({.table = t.QualifiedName(),
                           .partition = leaf.name,
                           .what = "truncated or rewritten",
                           .seen_at = now});
      }
    }
    for (const auto& [oid, leaf] : last->second) {
      if (!now_leaves.count(oid))
        changes.push_back({.table = t.QualifiedName(),
                           .partition = leaf.name,
                           .what = "removed",
                           .seen_at = now});
    }
    if (added) {
      // The new partitions must keep the root's replica identity (see partitions.h).
      PGF_TRY(auto root, ReadTableCatalog(sql, t));
      if (root) {
        PGF_TRY(auto leaves, ReadLeaves(sql, t, root->oid));
        std::vector<PartitionLeaf> fresh;
        for (auto& leaf : leaves) {
          for (const auto& [oid, l] : now_leaves) {
            if (l.name == leaf.qualified && !last->second.count(oid)) fresh.push_back(leaf);
          }
        }
        for (const auto& leaf : fresh) {
          auto checked = CheckLeafIdentities(sql, t, *root, {leaf});
          if (!checked) {
            changes.push_back({.table = t.QualifiedName(),
                               .partition = leaf.qualified,
                               .what = "identity",
                               .detail = checked.error().message,
                               .seen_at = now});
          }
        }
      }
    }
    last->second = std::move(now_leaves);
  }
  return changes;
}

}  // namespace pgfanout
