#include "src/source/table_catalog.h"

#include <algorithm>
#include <charconv>

namespace pgfanout {

std::vector<std::string> TableCatalog::KeyFor(const TableConfig& table) const {
  if (!table.key.empty()) return table.key;
  std::vector<std::string> key;
  for (const auto& c : columns) {
    if (replica_identity == 'i' ? c.in_identity_index : c.in_primary_key) key.push_back(c.name);
  }
  return key;
}

const TableCatalog::Column* TableCatalog::Find(const std::string& name) const {
  auto it =
      std::find_if(columns.begin(), columns.end(), [&](const Column& c) { return c.name == name; });
  return it == columns.end() ? nullptr : &*it;
}

namespace {

template <class T>
T Number(const std::optional<std::string>& text) {
  T value{};
  if (text) std::from_chars(text->data(), text->data() + text->size(), value);
  return value;
}

}  // namespace

Result<std::optional<TableCatalog>> ReadTableCatalog(const PgConnection& conn,
                                                     const TableConfig& table, bool all_columns) {
  PGF_TRY(auto rel, conn.Exec("looking up table " + table.QualifiedName(),
                              "SELECT c.oid, c.relreplident, c.relkind, "
                              "       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
                              "               AND i.indisprimary) "
                              "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r','p')",
                              {table.schema, table.name}));
  if (PQntuples(rel.get()) == 0) return std::optional<TableCatalog>();
  TableCatalog out;
  out.oid = Number<uint32_t>(GetValue(rel, 0, 0));
  out.replica_identity = GetValue(rel, 0, 1).value_or("d")[0];
  out.kind = GetValue(rel, 0, 2).value_or("r")[0];
  out.has_primary_key = GetValue(rel, 0, 3) == "t";
  PGF_TRY(auto cols, conn.Exec("reading the columns of " + table.QualifiedName(),
                               "SELECT a.attname, a.atttypid, a.atttypmod, "
                               "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid "
                               "          AND i.indisprimary AND a.attnum = ANY (i.indkey)), "
                               "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid "
                               "          AND i.indisreplident AND a.attnum = ANY (i.indkey)) "
                               "FROM pg_attribute a WHERE a.attrelid = $1::oid AND a.attnum > 0 "
                               "  AND NOT a.attisdropped ORDER BY a.attnum",
                               {std::to_string(out.oid)}));
  for (int i = 0; i < PQntuples(cols.get()); ++i) {
    if (!all_columns && !table.Publishes(GetValue(cols, i, 0).value_or(""))) continue;
    out.columns.push_back(
        TableCatalog::Column{.name = GetValue(cols, i, 0).value_or(""),
                             .type_oid = Number<uint32_t>(GetValue(cols, i, 1)),
                             .type_modifier = Number<int32_t>(GetValue(cols, i, 2)),
                             .in_primary_key = GetValue(cols, i, 3) == "t",
                             .in_identity_index = GetValue(cols, i, 4) == "t"});
  }
  return std::optional<TableCatalog>(std::move(out));
}

}  // namespace pgfanout
