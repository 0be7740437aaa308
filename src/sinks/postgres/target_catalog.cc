#include "src/sinks/postgres/target_catalog.h"

#include <fmt/format.h>

#include "src/sinks/postgres/target_sql.h"

namespace pgfanout {

const TargetColumn* TargetTable::Find(const std::string& name) const {
  for (const auto& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Result<const TargetTable*> TargetCatalog::Table(const PgConnection& conn, const std::string& schema,
                                                const std::string& table) {
  auto key = std::make_pair(schema, table);
  if (auto it = tables_.find(key); it != tables_.end()) return &it->second;
  const std::string name = QuoteIdent(schema) + "." + QuoteIdent(table);
  PGF_TRY(auto found,
          conn.Exec("looking up the target table", "SELECT to_regclass($1) IS NOT NULL", {name}));
  TargetTable t;
  t.exists = GetValue(found, 0, 0) == "t";
  if (t.exists) {
    PGF_TRY(auto cols,
            conn.Exec("reading the target table's columns",
                      "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
                      "format_type(a.atttypid, -1), "
                      "coalesce(col_description(a.attrelid, a.attnum), '') = $2 "
                      "FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 "
                      "AND NOT a.attisdropped ORDER BY a.attnum",
                      {name, std::string(kOwnColumnComment)}));
    for (int i = 0; i < PQntuples(cols.get()); ++i) {
      t.columns.push_back(TargetColumn{.name = GetValue(cols, i, 0).value_or(""),
                                       .type = GetValue(cols, i, 1).value_or(""),
                                       .base_type = GetValue(cols, i, 2).value_or(""),
                                       .own = GetValue(cols, i, 3) == "t"});
    }
  }
  return &tables_.insert_or_assign(key, std::move(t)).first->second;
}

void TargetCatalog::Forget(const std::string& schema, const std::string& table) {
  tables_.erase(std::make_pair(schema, table));
}

void TargetCatalog::Clear() { tables_.clear(); }

Result<void> TargetCatalog::Resolve(const PgConnection& conn, const TableSchema& schema) {
  std::string oids, mods;
  std::vector<std::pair<uint32_t, int32_t>> missing;
  for (const auto& c : schema.columns) {
    if (c.type_oid >= kFirstNormalObjectId) continue;
    auto key = std::make_pair(c.type_oid, c.type_modifier);
    if (types_.count(key)) continue;
    missing.push_back(key);
    oids += fmt::format("{}{}", oids.empty() ? "" : ",", c.type_oid);
    mods += fmt::format("{}{}", mods.empty() ? "" : ",", c.type_modifier);
  }
  if (missing.empty()) return boost::outcome_v2::success();
  PGF_TRY(auto r, conn.Exec("naming the source's column types on the target",
                            "SELECT format_type(o, m) FROM unnest($1::oid[], $2::int4[]) "
                            "WITH ORDINALITY AS u(o, m, n) ORDER BY n",
                            {"{" + oids + "}", "{" + mods + "}"}));
  for (size_t i = 0; i < missing.size(); ++i) {
    auto name = GetValue(r, static_cast<int>(i), 0);
    // An OID this server does not know (a newer server's builtin) prints as "???".
    types_[missing[i]] = name && *name != "???" ? *name : "text";
  }
  return boost::outcome_v2::success();
}

const std::string& TargetCatalog::TypeOf(const ColumnSchema& column) const {
  static const std::string kText = "text";
  if (column.type_oid >= kFirstNormalObjectId) return kText;
  auto it = types_.find(std::make_pair(column.type_oid, column.type_modifier));
  return it == types_.end() ? kText : it->second;
}

}  // namespace pgfanout
