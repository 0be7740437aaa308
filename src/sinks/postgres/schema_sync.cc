#include "src/sinks/postgres/schema_sync.h"

#include <fmt/format.h>

#include <set>

#include "src/sinks/postgres/target_errors.h"

namespace pgfanout {
namespace {

class Sync {
 public:
  Sync(const PgConnection& conn, TargetCatalog& catalog, const TableMapping& m,
       const TableSchema& schema, const std::string& stage, bool& refill)
      : conn_(conn), catalog_(catalog), m_(m), schema_(schema), stage_(stage), refill_(refill) {}

  Result<TargetTypes> Run() {
    PGF_TRY(const TargetTable* t, Load());
    if (!t->exists) {
      PGF_TRY(Create());
    } else {
      PGF_TRY(Follow(*t));
    }
    if (changed_) {
      catalog_.Forget(m_.target_schema, m_.target_table);
      PGF_TRY(t, Load());
    }
    return Types(*t);
  }

 private:
  Error Fail(ErrorKind kind, const std::string& what) const {
    return MakeError(kind, fmt::format("{}: {}", m_.Describe(), what));
  }

  Result<const TargetTable*> Load() {
    auto t = catalog_.Table(conn_, m_.target_schema, m_.target_table);
    if (!t) return TargetError(t.error(), m_.Describe());
    return t.value();
  }

  Result<void> Ddl(std::string_view what, const std::string& sql) {
    auto r = conn_.ExecSimple(what, sql);
    if (!r) {
      Error e = TargetError(r.error(), m_.Describe());
      // Another session made the same object first (two sinks sharing a target race on
      // CREATE … IF NOT EXISTS): the retry finds it there.
      const std::string state = SqlStateOf(r.error());
      if (state == "23505" || state == "42P06" || state == "42P07" || state == "42701") {
        e.kind = ErrorKind::kSink;
      }
      return e;
    }
    changed_ = true;
    return boost::outcome_v2::success();
  }

  const std::string& SourceType(const MappedColumn& c) const {
    return catalog_.TypeOf(schema_.columns[c.source]);
  }

  // What the target makes of the expression's type, evaluated over the staging table.
  Result<std::string> ComputedType(const ComputedColumn& c) {
    const std::string context = fmt::format("{}: computed column \"{}\"", m_.Describe(), c.target);
    auto r = conn_.Exec("typing a computed column",
                        fmt::format("SELECT ({}) FROM pg_temp.{} AS _pgf_s LIMIT 0", c.expression,
                                    QuoteIdent(stage_)));
    if (!r) return TargetError(r.error(), context);
    auto named = conn_.Exec(
        "typing a computed column", "SELECT format_type($1::oid, $2::int4)",
        {std::to_string(PQftype(r.value().get(), 0)), std::to_string(PQfmod(r.value().get(), 0))});
    if (!named) return TargetError(named.error(), context);
    return GetValue(named.value(), 0, 0).value_or("text");
  }

  Result<void> Create() {
    if (!m_.create_tables) {
      return Fail(ErrorKind::kMismatch,
                  "the target table does not exist (create it, or set create_tables: true)");
    }
    auto ns = conn_.Exec("looking up the target schema", "SELECT to_regnamespace($1) IS NOT NULL",
                         {QuoteIdent(m_.target_schema)});
    if (!ns) return TargetError(ns.error(), m_.Describe());
    // Only when missing: CREATE SCHEMA IF NOT EXISTS needs the CREATE right even then.
    if (GetValue(ns.value(), 0, 0) != "t") {
      PGF_TRY(Ddl("creating the target schema",
                  "CREATE SCHEMA IF NOT EXISTS " + QuoteIdent(m_.target_schema)));
    }
    std::vector<std::string> types, computed;
    for (const auto& c : m_.columns) types.push_back(SourceType(c));
    for (const auto& c : m_.config.computed) {
      PGF_TRY(auto type, ComputedType(c));
      computed.push_back(std::move(type));
    }
    return Ddl("creating the target table", CreateTableSql(m_, types, computed));
  }

  // Whether the target table holds any row (of the open transaction's view).
  Result<bool> HasRows() {
    auto r = conn_.Exec("checking the target table for rows",
                        fmt::format("SELECT EXISTS (SELECT 1 FROM {}.{})",
                                    QuoteIdent(m_.target_schema), QuoteIdent(m_.target_table)));
    if (!r) return TargetError(r.error(), m_.Describe());
    return GetValue(r.value(), 0, 0) == "t";
  }

  Result<void> Follow(const TargetTable& t) {
    std::vector<std::string> ddl;
    bool added_copied = false;
    std::set<std::string> keep = {m_.version_column, m_.config.soft_delete_column};
    auto missing = [&](const std::string& column) {
      return Fail(ErrorKind::kMismatch,
                  fmt::format("the target table has no column \"{}\" (add it, or set "
                              "create_tables: true)",
                              column));
    };
    for (const auto& c : m_.columns) {
      keep.insert(c.target_name);
      const TargetColumn* tc = t.Find(c.target_name);
      const std::string& want = SourceType(c);
      if (tc == nullptr) {
        if (!m_.create_tables) return missing(c.target_name);
        ddl.push_back(AddColumnSql(m_, c.target_name, want, /*own=*/true));
        added_copied = true;
      } else if (m_.follow_ddl && tc->own && tc->type != want) {
        auto r = conn_.ExecSimple("changing a column's type",
                                  AlterColumnTypeSql(m_, c.target_name, want));
        if (!r) {
          Error e = TargetError(r.error(), m_.Describe());
          if (e.kind != ErrorKind::kMismatch) return e;
          return MakeError(ErrorKind::kMismatch,
                           fmt::format("sink {}: table {}.{} column {} changed type from {} to {} "
                                       "and the target cannot follow: {}",
                                       m_.sink_id, m_.target_schema, m_.target_table, c.target_name,
                                       tc->type, want, r.error().message));
        }
        changed_ = true;
      }
    }
    for (const auto& c : m_.config.computed) {
      keep.insert(c.target);
      if (t.Find(c.target) != nullptr) continue;
      if (!m_.create_tables) return missing(c.target);
      PGF_TRY(auto type, ComputedType(c));
      ddl.push_back(AddColumnSql(m_, c.target, type, /*own=*/false));
    }
    const std::string& soft = m_.config.soft_delete_column;
    if (!soft.empty() && t.Find(soft) == nullptr) {
      if (!m_.create_tables) return missing(soft);
      ddl.push_back(AddColumnSql(m_, soft, "timestamptz", /*own=*/false));
    }
    if (t.Find(m_.version_column) == nullptr) {
      if (!m_.create_tables) return missing(m_.version_column);
      ddl.push_back(AddColumnSql(m_, m_.version_column, "bigint NOT NULL DEFAULT 0", false));
    }
    if (m_.follow_ddl) {
      for (const auto& tc : t.columns) {
        if (tc.own && !keep.count(tc.name)) ddl.push_back(DropColumnSql(m_, tc.name));
      }
    }
    if (added_copied) {
      PGF_TRY(refill_, HasRows());
    }
    for (const auto& sql : ddl) PGF_TRY(Ddl("following the source's columns", sql));
    return boost::outcome_v2::success();
  }

  Result<TargetTypes> Types(const TargetTable& t) const {
    TargetTypes types;
    auto base = [&](const std::string& column) -> Result<std::string> {
      const TargetColumn* tc = t.Find(column);
      if (tc == nullptr) {
        return Fail(ErrorKind::kMismatch,
                    fmt::format("the target table has no column \"{}\"", column));
      }
      return tc->base_type;
    };
    for (const auto& c : m_.columns) {
      PGF_TRY(auto type, base(c.target_name));
      types.columns.push_back(std::move(type));
    }
    for (const auto& c : m_.config.computed) {
      PGF_TRY(auto type, base(c.target));
      types.computed.push_back(std::move(type));
    }
    if (!m_.config.soft_delete_column.empty()) {
      PGF_TRY(types.soft_delete, base(m_.config.soft_delete_column));
    }
    PGF_TRY(base(m_.version_column));
    return types;
  }

  const PgConnection& conn_;
  TargetCatalog& catalog_;
  const TableMapping& m_;
  const TableSchema& schema_;
  const std::string& stage_;
  bool& refill_;
  bool changed_ = false;
};

}  // namespace

Result<TargetTypes> SyncTargetTable(const PgConnection& conn, TargetCatalog& catalog,
                                    const TableMapping& m, const TableSchema& schema,
                                    const std::string& stage, bool& refill) {
  refill = false;
  return Sync(conn, catalog, m, schema, stage, refill).Run();
}

}  // namespace pgfanout
