#include "src/daemon/verify_plan.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>

#include "src/core/predicate.h"
#include "src/source/table_catalog.h"

namespace pgfanout {
namespace {

constexpr uint32_t kBoolOid = 16;  // pg_type.oid of boolean

}  // namespace

std::string DisplayIdent(std::string_view name) {
  bool plain = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
  for (char c : name) {
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  }
  if (plain) return std::string(name);
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

Result<TableVerifyPlan> PlanTableVerify(const SinkConfig& sink, const TableConfig& table,
                                        const SinkTableConfig& mapping, const PgConnection& source,
                                        const PgConnection& target) {
  const std::string target_schema = mapping.target_schema.empty()
                                        ? std::string(sink.DefaultTargetSchema())
                                        : mapping.target_schema;
  const std::string target_table = mapping.target.empty() ? table.name : mapping.target;
  TableVerifyPlan p{.source_name = DisplayIdent(table.schema) + "." + DisplayIdent(table.name),
                    .target_name = DisplayIdent(target_schema) + "." + DisplayIdent(target_table)};
  auto fail = [&](const std::string& what) {
    return MakeError(
        ErrorKind::kInvalidArgument,
        fmt::format("sink {}: table {} -> {}: {}", sink.id, p.source_name, p.target_name, what));
  };

  // The same catalog reading and key rule PrepareSource checks tables with.
  PGF_TRY(auto source_catalog, ReadTableCatalog(source, table));
  if (!source_catalog) return fail("the source table does not exist");
  if (mapping.columns.empty()) {
    for (const auto& c : source_catalog->columns) p.source_columns.push_back(c.name);
  } else {
    for (const auto& name : mapping.columns) {
      if (!source_catalog->Find(name)) {
        return fail(fmt::format("column {} of the mapping's columns: is not in the source table",
                                DisplayIdent(name)));
      }
      p.source_columns.push_back(name);
    }
  }
  for (const auto& c : p.source_columns) p.target_columns.push_back(mapping.TargetColumn(c));
  for (const auto& c : mapping.computed) p.computed.push_back(c.target);

  for (const auto& k : source_catalog->KeyFor(table)) {
    auto at = std::find(p.source_columns.begin(), p.source_columns.end(), k);
    if (at == p.source_columns.end()) {
      return fail(fmt::format("key column {} is not among the copied columns", DisplayIdent(k)));
    }
    p.key.push_back(static_cast<size_t>(at - p.source_columns.begin()));
  }
  if (p.key.empty()) {
    // No primary key (REPLICA IDENTITY FULL): the sink keys rows by every column.
    p.whole_row_key = true;
    for (size_t i = 0; i < p.source_columns.size(); ++i) p.key.push_back(i);
  }

  p.source.from = source.QuoteIdent(table.schema) + "." + source.QuoteIdent(table.name);
  for (const auto& c : p.source_columns) p.source.columns.push_back(source.QuoteIdent(c));
  if (!sink.AllTenants()) {
    // As text, as the router compares tenants.
    p.source.where =
        TenantTextMatch(source.QuoteIdent(table.tenant_column), sink.tenants, /*indexable=*/true);
  }
  if (!mapping.where.empty()) {
    // The sink's own where: rows outside it never reach the sink either.
    std::vector<ColumnSchema> columns;
    for (const auto& c : source_catalog->columns) {
      columns.push_back({.name = c.name, .type_oid = c.type_oid, .type_modifier = c.type_modifier});
    }
    auto sql = WhereSql(mapping.where, columns);
    if (!sql) return fail("where: " + sql.error().message);
    p.source.where = (p.source.where.empty() ? "" : "(" + p.source.where + ") AND ") + sql.value();
  }
  if (!table.row_filter.empty()) {
    // Rows the publication's filter keeps out never reach the sink.
    p.source.where = (p.source.where.empty() ? "" : "(" + p.source.where + ") AND ") + "(" +
                     table.row_filter + ")";
  }

  const TableConfig target_table_config{.schema = target_schema, .name = target_table};
  PGF_TRY(auto target_catalog, ReadTableCatalog(target, target_table_config));
  p.target.exists = target_catalog.has_value();
  p.target.from = target.QuoteIdent(target_schema) + "." + target.QuoteIdent(target_table);
  for (const auto& c : p.target_columns) p.target.columns.push_back(target.QuoteIdent(c));
  if (!p.target.exists) return p;
  for (const auto& c : p.target_columns) {
    if (!target_catalog->Find(c)) {
      p.problem = fmt::format("the target table has no column {}", DisplayIdent(c));
      return p;
    }
  }
  if (!mapping.soft_delete_column.empty()) {
    const TableCatalog::Column* c = target_catalog->Find(mapping.soft_delete_column);
    if (!c) {
      p.problem = fmt::format("the target table has no soft-delete column {}",
                              DisplayIdent(mapping.soft_delete_column));
      return p;
    }
    // The sink marks a deleted row true (boolean) or with the commit time (other types).
    p.target.where =
        target.QuoteIdent(c->name) + (c->type_oid == kBoolOid ? " IS NOT TRUE" : " IS NULL");
  }
  return p;
}

}  // namespace pgfanout
