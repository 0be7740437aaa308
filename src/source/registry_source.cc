#include "src/source/registry_source.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "source_sql.inc"  // generated from migrations/source/ by src/meson.build

namespace pgfanout {
namespace {

std::string QualifiedIdent(const PgConnection& sql, const SinkRegistryConfig& registry) {
  return sql.QuoteIdent(registry.schema) + "." + sql.QuoteIdent(registry.table);
}

}  // namespace

Result<void> EnsureRegistryTable(const SinkRegistryConfig& registry, const PgConnection& sql) {
  const std::string name = registry.QualifiedName();
  PGF_TRY(auto exists, sql.Exec("looking for the sink registry " + name,
                                "SELECT 1 FROM pg_class c JOIN pg_namespace n "
                                "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                                {registry.schema, registry.table}));
  if (PQntuples(exists.get()) == 0) {
    std::string text = kSql004SinkRegistry;
    const std::string ident = QualifiedIdent(sql, registry);
    for (size_t at = text.find(":\"table\""); at != std::string::npos;
         at = text.find(":\"table\"", at + ident.size())) {
      text.replace(at, 8, ident);
    }
    auto made = sql.ExecSimple("creating the sink registry", text);
    if (!made) {
      return made.error().Wrap(
          fmt::format("pgfanout could not create the sink registry {}; a DBA can run "
                      "migrations/source/004_sink_registry.sql instead",
                      name));
    }
    spdlog::info("created the sink registry {}", name);
  }
  PGF_TRY(auto columns,
          sql.Exec("reading the columns of the sink registry " + name,
                   "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
                   "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
                   "          AND i.indisprimary AND i.indnatts = 1 AND i.indkey[0] = a.attnum) "
                   "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                   "  AND NOT a.attisdropped "
                   "WHERE n.nspname = $1 AND c.relname = $2",
                   {registry.schema, registry.table}));
  std::map<std::string, std::pair<std::string, bool>> have;
  for (int i = 0; i < PQntuples(columns.get()); ++i) {
    have[GetValue(columns, i, 0).value_or("")] = {GetValue(columns, i, 1).value_or(""),
                                                  GetValue(columns, i, 2) == "t"};
  }
  const std::pair<const char*, const char*> wanted[] = {{"sink_id", "text"},
                                                        {"template", "text"},
                                                        {"tenants", "text[]"},
                                                        {"params", "jsonb"},
                                                        {"enabled", "boolean"}};
  for (const auto& [column, type] : wanted) {
    auto it = have.find(column);
    if (it == have.end() || it->second.first != type) {
      return MakeError(
          ErrorKind::kInvalidArgument,
          fmt::format("sink registry {}: column {} must be of type {} ({}); "
                      "migrations/source/004_sink_registry.sql has the table",
                      name, column, type,
                      it == have.end() ? "it is missing" : "it is " + it->second.first));
    }
  }
  if (!have["sink_id"].second) {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("sink registry {}: sink_id must be its primary key", name));
  }
  return boost::outcome_v2::success();
}

Result<std::vector<RegistryTableRow>> ReadRegistryTable(const SinkRegistryConfig& registry,
                                                        const PgConnection& sql) {
  PGF_TRY(auto r, sql.ExecSimple("reading the sink registry " + registry.QualifiedName(),
                                 "SELECT sink_id, template, tenants::text, params::text, enabled "
                                 "FROM " +
                                     QualifiedIdent(sql, registry) + " ORDER BY sink_id"));
  std::vector<RegistryTableRow> rows;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    rows.push_back(RegistryTableRow{.sink_id = GetValue(r, i, 0).value_or(""),
                                    .template_name = GetValue(r, i, 1).value_or(""),
                                    .tenants = GetValue(r, i, 2).value_or(""),
                                    .params = GetValue(r, i, 3).value_or("{}"),
                                    .enabled = GetValue(r, i, 4) != "f"});
  }
  return rows;
}

Result<std::string> TenantForms::Check(const Config& config, const SinkConfig& sink,
                                       const PgConnection& sql) {
  for (const auto& t : config.tables) {
    if (t.tenant_column.empty() || !sink.Receives(t)) continue;
    auto type = type_of_.find(t.QualifiedName());
    if (type == type_of_.end()) {
      PGF_TRY(auto described,
              sql.Exec("reading the type of " + t.QualifiedName() + "." + t.tenant_column,
                       "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                       "JOIN pg_class c ON c.oid = a.attrelid "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3",
                       {t.schema, t.name, t.tenant_column}));
      type = type_of_.emplace(t.QualifiedName(), GetValue(described, 0, 0).value_or("text")).first;
    }
    for (const auto& tenant : sink.tenants) {
      auto key = std::make_pair(type->second, tenant);
      auto form = form_.find(key);
      if (form == form_.end()) {
        auto cast =
            sql.Exec("reading a registry tenant value as the source writes it",
                     fmt::format("SELECT CAST($1::text AS {})::text", type->second), {tenant});
        std::optional<std::string> written;
        if (cast) {
          written = GetValue(cast.value(), 0, 0).value_or("");
        } else if (cast.error().kind == ErrorKind::kConnection) {
          return cast.error();  // not the row's fault: asked again
        }
        form = form_.emplace(key, written).first;
      }
      if (!form->second) {
        return fmt::format("tenants: a tenant is not a value of {}.{} ({})", t.QualifiedName(),
                           t.tenant_column, type->second);
      }
      if (*form->second != tenant) {
        return fmt::format(
            "tenants: \"{}\" is written \"{}\" by {}.{} ({}), the form its rows arrive in; "
            "write \"{}\"",
            tenant, *form->second, t.QualifiedName(), t.tenant_column, type->second, *form->second);
      }
    }
  }
  return std::string();
}

}  // namespace pgfanout
