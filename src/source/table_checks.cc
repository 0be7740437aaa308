#include "src/source/table_checks.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "src/source/partitions.h"
#include "src/source/table_catalog.h"

namespace pgfanout {
namespace {

// Does any sink that serves only some tenants read `table`? Those sinks need to see rows
// move between tenants, which needs the old tenant value.
bool ReadByTenantSink(const Config& config, const TableConfig& table) {
  for (const auto& sink : config.sinks) {
    if (!sink.AllTenants() && sink.Receives(table)) return true;
  }
  return false;
}

std::string QuotedName(const PgConnection& sql, const TableConfig& t) {
  return sql.QuoteIdent(t.schema) + "." + sql.QuoteIdent(t.name);
}

// Every column a sink mapping names must exist on the source, and an explicit column list
// must keep the key (sinks upsert by it).
Result<void> CheckMappings(const Config& config, const TableConfig& table,
                           const TableCatalog& catalog, const std::vector<std::string>& key) {
  auto exists = [&](const std::string& name) { return catalog.Find(name) != nullptr; };
  const auto& columns = catalog.columns;
  for (const auto& sink : config.sinks) {
    for (const auto& m : sink.tables) {
      if (m.source != table.QualifiedName()) continue;
      auto fail = [&](const std::string& column, const std::string& what) {
        return MakeError(ErrorKind::kInvalidArgument,
                         fmt::format("{}: sink {}, table {}, column {}: {}", config.path, sink.id,
                                     m.source, column, what));
      };
      for (const auto& c : m.columns) {
        if (!exists(c)) return fail(c, "no such column on the source");
      }
      for (const auto& [from, to] : m.rename) {
        if (!exists(from)) return fail(from, "rename: no such column on the source");
      }
      // Computed and soft-delete columns must not land on a copied column.
      std::vector<std::string> extra;
      for (const auto& c : m.computed) extra.push_back(c.target);
      if (!m.soft_delete_column.empty()) extra.push_back(m.soft_delete_column);
      for (const auto& c : columns) {
        bool copied = m.columns.empty() ||
                      std::find(m.columns.begin(), m.columns.end(), c.name) != m.columns.end();
        auto target = m.TargetColumn(c.name);
        if (copied && std::find(extra.begin(), extra.end(), target) != extra.end()) {
          return fail(c.name,
                      "its target column " + target + " is also a computed or soft-delete column");
        }
      }
      if (!m.columns.empty()) {
        for (const auto& k : key) {
          if (std::find(m.columns.begin(), m.columns.end(), k) == m.columns.end()) {
            return fail(k, "is part of the row's key; columns: must include it");
          }
        }
      }
    }
  }
  return boost::outcome_v2::success();
}

// A column list (tables[].columns) must name columns that exist and keep the replica
// identity's (PostgreSQL 15 would fail the application's UPDATEs and DELETEs otherwise,
// at its next one, not when the publication is changed) and the key's.
Result<void> CheckPublishedColumns(const Config& config, const PgConnection& sql,
                                   const TableConfig& t, const TableCatalog& catalog,
                                   const std::vector<std::string>& key) {
  auto fail = [&](const std::string& what) {
    return MakeError(
        ErrorKind::kInvalidArgument,
        fmt::format("{}: table {}: columns: {}", config.path, t.QualifiedName(), what));
  };
  for (const auto& c : t.published_columns) {
    if (!catalog.Find(c)) return fail(c + ": no such column on the source");
  }
  if (catalog.replica_identity == 'f') {
    std::vector<std::string> left_out;
    for (const auto& c : catalog.columns) {
      if (!t.Publishes(c.name)) left_out.push_back(c.name);
    }
    if (!left_out.empty()) {
      return fail(fmt::format(
          "leaves out {}, but the table is REPLICA IDENTITY FULL, whose old rows hold every "
          "column: PostgreSQL would fail its UPDATEs and DELETEs. Give it an identity over "
          "the key (and the tenant column), e.g. ALTER TABLE {} REPLICA IDENTITY DEFAULT; "
          "with a primary key, or REPLICA IDENTITY USING INDEX on a unique index",
          fmt::join(left_out, ", "), QuotedName(sql, t)));
    }
  }
  std::vector<std::string> needed = IdentityColumns(catalog);
  needed.insert(needed.end(), key.begin(), key.end());
  for (const auto& c : needed) {
    if (!t.Publishes(c)) {
      return fail(
          fmt::format("must include {}: it is in the table's replica identity or key, "
                      "which every change carries",
                      c));
    }
  }
  return boost::outcome_v2::success();
}

// Tenant values are compared as text everywhere (the router, backfill, verify, TRUNCATE
// and every sink), in the form the source writes the tenant column's values: its type's
// output text, which is what pgoutput sends. A configured value written otherwise ("07"
// for an integer column, an upper-case UUID, a char(n) value without its padding) would
// match rows one way in SQL and not at all in the stream, so it is refused here, with the
// form to write instead.
Result<void> CheckTenantValues(const Config& config, const PgConnection& sql, const TableConfig& t,
                               const TableCatalog& catalog) {
  std::vector<const SinkConfig*> sinks;
  for (const auto& sink : config.sinks) {
    if (!sink.AllTenants() && sink.Receives(t)) sinks.push_back(&sink);
  }
  if (sinks.empty()) return boost::outcome_v2::success();
  PGF_TRY(auto described,
          sql.Exec("reading the type of " + t.QualifiedName() + "." + t.tenant_column,
                   "SELECT format_type(a.atttypid, a.atttypmod), "
                   "  coalesce(co.collisdeterministic, true) AND t.typname <> 'citext' "
                   "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                   "LEFT JOIN pg_collation co ON co.oid = a.attcollation "
                   "WHERE a.attrelid = $1::oid AND a.attname = $2",
                   {std::to_string(catalog.oid), t.tenant_column}));
  const std::string type = GetValue(described, 0, 0).value_or("text");
  if (GetValue(described, 0, 1) == "f") {
    spdlog::warn(
        "table {}: tenant column {} ({}) compares case-insensitively on the source; pgfanout "
        "compares tenant values byte for byte as the source writes them, so 'Acme' and 'ACME' "
        "are two tenants to it",
        t.QualifiedName(), t.tenant_column, type);
  }
  std::map<std::string, std::string> canonical;
  for (const SinkConfig* sink : sinks) {
    for (const auto& tenant : sink->tenants) {
      auto it = canonical.find(tenant);
      if (it == canonical.end()) {
        auto cast = sql.Exec("reading the tenant value " + tenant + " as the source writes it",
                             fmt::format("SELECT CAST($1::text AS {})", type), {tenant});
        if (!cast) {
          return MakeError(ErrorKind::kInvalidArgument,
                           fmt::format("{}: sink {}: tenants: \"{}\" is not a value of {}.{} "
                                       "({}): {}",
                                       config.path, sink->id, tenant, t.QualifiedName(),
                                       t.tenant_column, type, cast.error().message));
        }
        it = canonical.emplace(tenant, GetValue(cast.value(), 0, 0).value_or("")).first;
      }
      if (it->second != tenant) {
        return MakeError(
            ErrorKind::kInvalidArgument,
            fmt::format("{}: sink {}: tenants: \"{}\" is written \"{}\" by {}.{} ({}), which is "
                        "the form its rows arrive in; tenants are compared in that form, so "
                        "write \"{}\"",
                        config.path, sink->id, tenant, it->second, t.QualifiedName(),
                        t.tenant_column, type, it->second));
      }
    }
  }
  return boost::outcome_v2::success();
}

}  // namespace

Result<std::map<std::string, std::vector<std::string>>> CheckTables(const Config& config,
                                                                    const PgConnection& sql) {
  std::map<std::string, std::vector<std::string>> keys;
  for (const auto& t : config.tables) {
    PGF_TRY(auto found, ReadTableCatalog(sql, t, /*all_columns=*/true));
    if (!found) {
      return MakeError(ErrorKind::kInvalidArgument,
                       fmt::format("{}: table {} (in tables:) does not exist on the source",
                                   config.path, t.QualifiedName()));
    }
    const TableCatalog& catalog = *found;
    PGF_TRY(CheckNoTrackedAncestor(config, sql, t, catalog.oid));
    if (catalog.kind == 'p') {
      if (config.source.decoder == "wal2json") {
        // wal2json names each change by its partition and has no option to publish
        // through the root.
        return MakeError(ErrorKind::kInvalidArgument,
                         fmt::format("{}: table {} is partitioned, which source.decoder "
                                     "wal2json cannot follow (it names each change by its "
                                     "partition); use the default decoder, pgoutput",
                                     config.path, t.QualifiedName()));
      }
      PGF_TRY(auto leaves, ReadLeaves(sql, t, catalog.oid));
      PGF_TRY(CheckLeafIdentities(sql, t, catalog, leaves));
    }
    const char ident = catalog.replica_identity;
    if (ident == 'n' || (ident == 'd' && !catalog.has_primary_key)) {
      return MakeError(
          ErrorKind::kInvalidArgument,
          fmt::format("table {} has no replica identity, so once published its UPDATEs and "
                      "DELETEs would fail on the primary. Give it a primary key, or run: "
                      "ALTER TABLE {} REPLICA IDENTITY FULL;",
                      t.QualifiedName(), QuotedName(sql, t)));
    }
    // The row's key for upserting sinks: the config's, else the replica identity's
    // columns, else (FULL) the primary key.
    std::vector<std::string> key = catalog.KeyFor(t);
    for (const auto& k : key) {
      if (!catalog.Find(k)) {
        return MakeError(ErrorKind::kInvalidArgument,
                         fmt::format("{}: table {}: key column {} does not exist", config.path,
                                     t.QualifiedName(), k));
      }
    }
    if (!t.tenant_column.empty()) {
      const TableCatalog::Column* tc = catalog.Find(t.tenant_column);
      if (tc == nullptr) {
        return MakeError(ErrorKind::kInvalidArgument,
                         fmt::format("{}: table {} has no column {} (its tenant_column)",
                                     config.path, t.QualifiedName(), t.tenant_column));
      }
      bool in_identity = ident == 'f' || (ident == 'd' && tc->in_primary_key) ||
                         (ident == 'i' && tc->in_identity_index);
      if (!in_identity && ReadByTenantSink(config, t)) {
        // pgoutput sends the old tenant only when it is in the replica identity; without
        // it a row moving to another tenant would stay in the old tenant's database.
        return MakeError(
            ErrorKind::kInvalidArgument,
            fmt::format("table {}: its tenant column {} is not in the replica identity, so "
                        "when a row moves to another tenant the old tenant's sink could not "
                        "be told to delete it. Run: ALTER TABLE {} REPLICA IDENTITY FULL; "
                        "(or create a unique index on the key plus {} and use ALTER TABLE {} "
                        "REPLICA IDENTITY USING INDEX that_index;)",
                        t.QualifiedName(), t.tenant_column, QuotedName(sql, t),
                        sql.QuoteIdent(t.tenant_column), QuotedName(sql, t)));
      }
    }
    if (!t.published_columns.empty()) PGF_TRY(CheckPublishedColumns(config, sql, t, catalog, key));
    if (!t.tenant_column.empty()) PGF_TRY(CheckTenantValues(config, sql, t, catalog));
    // Sinks map only what the publication sends.
    TableCatalog published = catalog;
    std::erase_if(published.columns,
                  [&](const TableCatalog::Column& c) { return !t.Publishes(c.name); });
    PGF_TRY(CheckMappings(config, t, published, key));
    keys[t.QualifiedName()] = std::move(key);
  }
  return keys;
}

}  // namespace pgfanout
