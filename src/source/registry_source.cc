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

namespace {

// A table pgfanout reads as configuration (the sink registry, the signal table): created
// from its migration when missing, then its shape checked.
struct OwnTable {
  const char* what;  // "sink registry"
  std::string schema, table;
  const char* migration;  // the SQL, with :"table" for the name
  const char* file;       // "migrations/source/004_sink_registry.sql"
  std::vector<std::pair<const char*, const char*>> columns;  // name, format_type
  const char* primary_key;
};

Result<void> EnsureOwnTable(const OwnTable& t, const PgConnection& sql) {
  const std::string name = t.schema + "." + t.table;
  PGF_TRY(auto exists, sql.Exec(fmt::format("looking for the {} {}", t.what, name),
                                "SELECT 1 FROM pg_class c JOIN pg_namespace n "
                                "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                                {t.schema, t.table}));
  if (PQntuples(exists.get()) == 0) {
    std::string text = t.migration;
    const std::string ident = sql.QuoteIdent(t.schema) + "." + sql.QuoteIdent(t.table);
    for (size_t at = text.find(":\"table\""); at != std::string::npos;
         at = text.find(":\"table\"", at + ident.size())) {
      text.replace(at, 8, ident);
    }
    auto made = sql.ExecSimple(fmt::format("creating the {}", t.what), text);
    if (!made) {
      return made.error().Wrap(fmt::format(
          "pgfanout could not create the {} {}; a DBA can run {} instead", t.what, name, t.file));
    }
    spdlog::info("created the {} {}", t.what, name);
  }
  PGF_TRY(auto columns,
          sql.Exec(fmt::format("reading the columns of the {} {}", t.what, name),
                   "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
                   "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
                   "          AND i.indisprimary AND i.indnatts = 1 AND i.indkey[0] = a.attnum) "
                   "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                   "  AND NOT a.attisdropped "
                   "WHERE n.nspname = $1 AND c.relname = $2",
                   {t.schema, t.table}));
  std::map<std::string, std::pair<std::string, bool>> have;
  for (int i = 0; i < PQntuples(columns.get()); ++i) {
    have[GetValue(columns, i, 0).value_or("")] = {GetValue(columns, i, 1).value_or(""),
                                                  GetValue(columns, i, 2) == "t"};
  }
  for (const auto& [column, type] : t.columns) {
    auto it = have.find(column);
    if (it == have.end() || it->second.first != type) {
      return MakeError(
          ErrorKind::kInvalidArgument,
          fmt::format("{} {}: column {} must be of type {} ({}); {} has the table", t.what, name,
                      column, type,
                      it == have.end() ? "it is missing" : "it is " + it->second.first, t.file));
    }
  }
  if (!have[t.primary_key].second) {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("{} {}: {} must be its primary key", t.what, name, t.primary_key));
  }
  return boost::outcome_v2::success();
}

}  // namespace

Result<void> EnsureRegistryTable(const SinkRegistryConfig& registry, const PgConnection& sql) {
  return EnsureOwnTable(OwnTable{.what = "sink registry",
                                 .schema = registry.schema,
                                 .table = registry.table,
                                 .migration = kSql004SinkRegistry,
                                 .file = "migrations/source/004_sink_registry.sql",
                                 .columns = {{"sink_id", "text"},
                                             {"template", "text"},
                                             {"tenants", "text[]"},
                                             {"params", "jsonb"},
                                             {"enabled", "boolean"}},
                                 .primary_key = "sink_id"},
                        sql);
}

Result<void> EnsureSignalTable(const SourceConfig& source, const PgConnection& sql) {
  return EnsureOwnTable(OwnTable{.what = "signal table",
                                 .schema = source.signal_schema,
                                 .table = source.signal_table,
                                 .migration = kSql005SignalTable,
                                 .file = "migrations/source/005_signal_table.sql",
                                 .columns = {{"id", "bigint"},
                                             {"sink_id", "text"},
                                             {"table_name", "text"},
                                             {"replace", "boolean"}},
                                 .primary_key = "id"},
                        sql);
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
