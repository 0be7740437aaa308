#include "src/source/publication.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>
#include <set>
#include <vector>

#include "source_sql.inc"  // generated from migrations/source/ by src/meson.build
#include "src/source/partitions.h"
#include "src/source/table_catalog.h"

namespace pgfanout {
namespace {

std::string FillTemplate(std::string sql, const std::string& publication,
                         const std::string& tables) {
  auto replace = [&](std::string_view from, const std::string& to) {
    for (size_t at = sql.find(from); at != std::string::npos; at = sql.find(from, at + to.size())) {
      sql.replace(at, from.size(), to);
    }
  };
  replace(":\"publication\"", publication);
  replace(":tables", tables);
  return sql;
}

std::string QuotedName(const PgConnection& sql, const TableConfig& t) {
  return sql.QuoteIdent(t.schema) + "." + sql.QuoteIdent(t.name);
}

// How the publication lists `t`: its name, its column list, its row filter.
std::string Entry(const PgConnection& sql, const TableConfig& t) {
  std::string out = QuotedName(sql, t);
  if (!t.published_columns.empty()) {
    std::vector<std::string> columns;
    for (const auto& c : t.published_columns) columns.push_back(sql.QuoteIdent(c));
    out += fmt::format(" ({})", fmt::join(columns, ", "));
  }
  if (!t.row_filter.empty()) out += " WHERE (" + t.row_filter + ")";
  return out;
}

std::string Entries(const PgConnection& sql, const std::vector<const TableConfig*>& tables) {
  std::vector<std::string> out;
  for (const TableConfig* t : tables) out.push_back(Entry(sql, *t));
  return fmt::format("{}", fmt::join(out, ", "));
}

// A publication made without publish_via_partition_root (by a DBA, or by pgfanout before
// it followed partitioned tables) sends a partitioned table's changes under its
// partitions' names, which no sink maps: they would be dropped.
Result<void> CheckNoPartitionedTable(const Config& config, const PgConnection& sql) {
  const std::string& pub = config.source.publication;
  for (const auto& t : config.tables) {
    PGF_TRY(auto kind, sql.Exec("looking up table " + t.QualifiedName(),
                                "SELECT relkind FROM pg_class WHERE oid = to_regclass($1)",
                                {QuotedName(sql, t)}));
    if (GetValue(kind, 0, 0) != "p") continue;
    return MakeError(
        ErrorKind::kInvalidArgument,
        fmt::format("publication {} was created without publish_via_partition_root, so the "
                    "changes of the partitioned table {} would arrive under its partitions' "
                    "names and be dropped. Run: ALTER PUBLICATION {} SET "
                    "(publish_via_partition_root = true); (other subscribers of {} then also "
                    "receive partitions' changes under their root's name)",
                    pub, t.QualifiedName(), sql.QuoteIdent(pub), pub));
  }
  return boost::outcome_v2::success();
}

// What the publication says of one table now.
struct Published {
  bool has_list = false;          // a column list (else every column is sent)
  std::set<std::string> columns;  // the list's columns
  std::string row_filter;         // as the server deparses it; empty: none
};

Result<std::map<std::string, Published>> ReadPublished(const PgConnection& sql,
                                                       const std::string& pub) {
  std::map<std::string, Published> out;
  // pg_publication_tables also lists the tables of FOR ALL TABLES and FOR TABLES IN
  // SCHEMA publications; column lists are only in pg_publication_rel.
  PGF_TRY(auto tables, sql.Exec("listing tables of publication " + pub,
                                "SELECT schemaname || '.' || tablename, coalesce(rowfilter, '') "
                                "FROM pg_publication_tables WHERE pubname = $1",
                                {pub}));
  for (int i = 0; i < PQntuples(tables.get()); ++i) {
    out[*GetValue(tables, i, 0)].row_filter = GetValue(tables, i, 1).value_or("");
  }
  PGF_TRY(auto columns,
          sql.Exec("listing the column lists of publication " + pub,
                   "SELECT n.nspname || '.' || c.relname, a.attname "
                   "FROM pg_publication p JOIN pg_publication_rel pr ON pr.prpubid = p.oid "
                   "JOIN pg_class c ON c.oid = pr.prrelid "
                   "JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "JOIN pg_attribute a ON a.attrelid = pr.prrelid "
                   "  AND a.attnum = ANY (pr.prattrs::int2[]) "
                   "WHERE p.pubname = $1 AND pr.prattrs IS NOT NULL",
                   {pub}));
  for (int i = 0; i < PQntuples(columns.get()); ++i) {
    auto& p = out[*GetValue(columns, i, 0)];
    p.has_list = true;
    p.columns.insert(*GetValue(columns, i, 1));
  }
  return out;
}

// PostgreSQL 15 checks a row filter's columns against the replica identity only when
// the application next updates or deletes a row (and fails that statement): check them
// now, in the transaction that set the filter.
Result<void> CheckFilterColumns(const Config& config, const PgConnection& sql,
                                const TableConfig& t) {
  PGF_TRY(auto used,
          sql.Exec("reading the columns the row filter of " + t.QualifiedName() + " uses",
                   "SELECT a.attname FROM pg_publication_rel pr "
                   "JOIN pg_publication p ON p.oid = pr.prpubid "
                   "JOIN pg_attribute a ON a.attrelid = pr.prrelid AND a.attnum > 0 "
                   "WHERE p.pubname = $1 AND pr.prrelid = to_regclass($2) "
                   "  AND pr.prqual::text ~ (':varattno ' || a.attnum || ' ') "
                   "ORDER BY a.attnum",
                   {config.source.publication, QuotedName(sql, t)}));
  PGF_TRY(auto catalog, ReadTableCatalog(sql, t, /*all_columns=*/true));
  if (!catalog || catalog->replica_identity == 'f') return boost::outcome_v2::success();
  const auto identity = IdentityColumns(*catalog);
  std::vector<std::string> outside;
  for (int i = 0; i < PQntuples(used.get()); ++i) {
    const std::string c = *GetValue(used, i, 0);
    if (std::find(identity.begin(), identity.end(), c) == identity.end()) outside.push_back(c);
  }
  if (outside.empty()) return boost::outcome_v2::success();
  std::vector<std::string> index_columns = identity;
  for (const auto& c : outside) index_columns.push_back(c);
  std::vector<std::string> quoted;
  for (const auto& c : index_columns) quoted.push_back(sql.QuoteIdent(c));
  return MakeError(
      ErrorKind::kInvalidArgument,
      fmt::format("{}: table {}: where: reads {}, which the table's replica identity ({}) "
                  "does not hold; PostgreSQL would then fail every UPDATE and DELETE of the "
                  "table on the primary, so the publication was left as it was. Filter on "
                  "identity columns, or give the table an identity that holds them (its "
                  "columns NOT NULL): CREATE UNIQUE INDEX {}_pgfanout_identity ON {} ({}); "
                  "ALTER TABLE {} REPLICA IDENTITY USING INDEX {}_pgfanout_identity;",
                  config.path, t.QualifiedName(), fmt::join(outside, ", "),
                  fmt::join(identity, ", "), t.name, QuotedName(sql, t), fmt::join(quoted, ", "),
                  QuotedName(sql, t), t.name));
}

// Runs `steps` in one transaction; rolls back when any fails.
template <class Steps>
Result<void> InTransaction(const PgConnection& sql, Steps steps) {
  PGF_TRY(sql.ExecSimple("beginning the publication change", "BEGIN"));
  auto done = steps();
  if (!done) {
    (void)sql.ExecSimple("rolling back the publication change", "ROLLBACK");
    return done;
  }
  PGF_TRY(sql.ExecSimple("committing the publication change", "COMMIT"));
  return boost::outcome_v2::success();
}

// Whether setting `t`'s entry as the config says would change its deparsed row filter
// (tried in a transaction that is rolled back); nullopt when pgfanout may not change it
// (it does not own the table: 42501).
Result<std::optional<bool>> FilterDiffers(const Config& config, const PgConnection& sql,
                                          const TableConfig& t, const std::string& now) {
  const std::string pub = sql.QuoteIdent(config.source.publication);
  PGF_TRY(sql.ExecSimple("comparing a row filter", "BEGIN"));
  auto tried = [&]() -> Result<std::string> {
    PGF_TRY(sql.ExecSimple("comparing a row filter",
                           fmt::format("ALTER PUBLICATION {} DROP TABLE {}; ALTER PUBLICATION "
                                       "{} ADD TABLE {}",
                                       pub, QuotedName(sql, t), pub, Entry(sql, t))));
    PGF_TRY(auto r, sql.Exec("comparing a row filter",
                             "SELECT coalesce(rowfilter, '') FROM pg_publication_tables "
                             "WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
                             {config.source.publication, t.schema, t.name}));
    return GetValue(r, 0, 0).value_or("");
  }();
  (void)sql.ExecSimple("comparing a row filter", "ROLLBACK");
  if (!tried) {
    if (SqlStateOf(tried.error()) == "42501") return std::optional<bool>();
    return tried.error().Wrap(fmt::format("{}: table {}: where", config.path, t.QualifiedName()));
  }
  return std::optional<bool>(tried.value() != now);
}

}  // namespace

Result<bool> EnsurePublication(const Config& config, const PgConnection& sql) {
  const std::string& pub = config.source.publication;
  PGF_TRY(auto exists, sql.Exec("looking up publication " + pub,
                                "SELECT pubviaroot FROM pg_publication WHERE pubname = $1", {pub}));
  const bool create = PQntuples(exists.get()) == 0;
  std::vector<const TableConfig*> add, reset;
  if (create) {
    for (const auto& t : config.tables) add.push_back(&t);
  } else {
    if (GetValue(exists, 0, 0) != "t") PGF_TRY(CheckNoPartitionedTable(config, sql));
    PGF_TRY(auto published, ReadPublished(sql, pub));
    for (const auto& t : config.tables) {
      auto it = published.find(t.QualifiedName());
      if (it == published.end()) {
        add.push_back(&t);
        continue;
      }
      const Published& now = it->second;
      const bool configured = !t.row_filter.empty() || !t.published_columns.empty();
      if (!configured && (now.has_list || !now.row_filter.empty())) {
        return MakeError(
            ErrorKind::kInvalidArgument,
            fmt::format("{}: publication {} {} table {}, which its entry in tables: does "
                        "not say: a copy would then hold rows or columns the stream never "
                        "sends. Give the table the same where:/columns: in the config, or "
                        "remove them from the publication",
                        config.path, pub,
                        now.row_filter.empty() ? "narrows the columns of"
                                               : "filters (WHERE " + now.row_filter + ") the",
                        t.QualifiedName()));
      }
      if (!configured) continue;
      const std::set<std::string> want(t.published_columns.begin(), t.published_columns.end());
      if (now.has_list != !want.empty() || now.columns != want ||
          now.row_filter.empty() != t.row_filter.empty()) {
        reset.push_back(&t);
      } else if (!t.row_filter.empty()) {
        PGF_TRY(auto differs, FilterDiffers(config, sql, t, now.row_filter));
        if (!differs) {
          spdlog::info(
              "publication {}: could not compare the row filter of {} with where: "
              "(pgfanout does not own the table); the publication's is used: {}",
              pub, t.QualifiedName(), now.row_filter);
        } else if (*differs) {
          reset.push_back(&t);
        }
      }
    }
  }
  if (add.empty() && reset.empty()) return false;
  const std::string quoted_pub = sql.QuoteIdent(pub);
  std::vector<std::string> statements;
  if (create) {
    statements.push_back(FillTemplate(kSql002CreatePublication, quoted_pub, Entries(sql, add)));
  } else if (!add.empty()) {
    statements.push_back(FillTemplate(kSql003AddToPublication, quoted_pub, Entries(sql, add)));
  }
  for (const TableConfig* t : reset) {
    statements.push_back(
        fmt::format("ALTER PUBLICATION {} DROP TABLE {}", quoted_pub, QuotedName(sql, *t)));
    statements.push_back(FillTemplate(kSql003AddToPublication, quoted_pub, Entries(sql, {t})));
  }
  auto done = InTransaction(sql, [&]() -> Result<void> {
    for (const auto& s : statements) PGF_TRY(sql.ExecSimple("changing the publication", s));
    for (const auto& t : config.tables) {
      if (!t.row_filter.empty()) PGF_TRY(CheckFilterColumns(config, sql, t));
    }
    return boost::outcome_v2::success();
  });
  if (!done) {
    if (done.error().kind == ErrorKind::kInvalidArgument) return done.error();
    return done.error().Wrap(fmt::format(
        "pgfanout could not {} publication {} (it needs to own the tables); a DBA can run "
        "this instead: BEGIN; {}; COMMIT;",
        create ? "create" : "change", pub, fmt::join(statements, "; ")));
  }
  for (const TableConfig* t : add) {
    spdlog::info("publication {}: {} {}", pub, create ? "created for" : "added", Entry(sql, *t));
  }
  for (const TableConfig* t : reset) {
    spdlog::warn(
        "publication {}: the row filter or column list of {} changed; it is now {}. "
        "Sinks keep what they received under the old one: to make them equal the "
        "source again, run pgfanout backfill --sink ID --table {} for each sink of it",
        pub, t->QualifiedName(), Entry(sql, *t), t->QualifiedName());
  }
  return create;
}

}  // namespace pgfanout
