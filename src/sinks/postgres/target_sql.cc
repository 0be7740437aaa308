#include "src/sinks/postgres/target_sql.h"

#include <fmt/format.h>

#include "src/sinks/postgres/copy_text.h"

namespace pgfanout {
namespace {

constexpr std::string_view kT = "_pgf_t";  // the target table's alias
constexpr std::string_view kS = "_pgf_s";  // the staging table's alias

std::string Stage(const std::string& stage) { return "pg_temp." + QuoteIdent(stage); }

bool IsBoolean(const std::string& type) { return type == "boolean"; }

// _pgf_t."k1" = CAST(_pgf_s."k1" AS integer) AND … for the key, reading the stage's
// `old` key columns instead when asked.
std::string KeyMatch(const TableMapping& m, const TargetTypes& types, std::string_view target,
                     bool old) {
  std::string out;
  for (size_t i = 0; i < m.key.size(); ++i) {
    const MappedColumn& c = m.columns[m.key_columns[i]];
    std::string staged =
        old ? QuoteIdent(fmt::format("_pgf_old_{}", i)) : QuoteIdent(c.source_name);
    fmt::format_to(std::back_inserter(out), "{}{}.{} = CAST({}.{} AS {})", i ? " AND " : "", target,
                   QuoteIdent(c.target_name), kS, staged, types.columns[m.key_columns[i]]);
  }
  return out;
}

std::string VersionGuard(const TableMapping& m) {
  return fmt::format("{}.{} <= {}._pgf_version", kT, QuoteIdent(m.version_column), kS);
}

// " AND <the row is one of the tenants'>", or "" for every row.
std::string TenantGuard(const TableMapping& m, const std::vector<std::string>* tenants,
                        std::string_view alias) {
  if (tenants == nullptr) return "";
  const std::string column = alias.empty() ? QuoteIdent(m.tenant_target)
                                           : fmt::format("{}.{}", alias, QuoteIdent(m.tenant_target));
  return " AND " + TenantTextMatch(column, *tenants);
}

}  // namespace

const std::vector<std::string>* MatchedTenants(const TableMapping& m,
                                               const std::vector<std::string>* tenants) {
  return m.tenant_target.empty() ? nullptr : tenants;
}

std::string TargetName(const TableMapping& m) {
  return QuoteIdent(m.target_schema) + "." + QuoteIdent(m.target_table);
}

std::string StageName(int serial) { return fmt::format("_pgf_stage_{}", serial); }

std::string CreateStageSql(const TableMapping& m, const TableSchema& schema,
                           const std::string& stage, const std::vector<std::string>& staged_types) {
  std::string out = fmt::format("CREATE TEMP TABLE {} (", QuoteIdent(stage));
  for (size_t i = 0; i < m.staged.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "{} {}, ", QuoteIdent(schema.columns[m.staged[i]].name),
                   staged_types[i]);
  }
  for (size_t i = 0; i < m.key.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "{} {}, ", QuoteIdent(fmt::format("_pgf_old_{}", i)),
                   staged_types[m.StagedIndex(m.key[i])]);
  }
  out +=
      "_pgf_version bigint NOT NULL, _pgf_commit_time timestamptz NOT NULL, "
      "_pgf_group integer NOT NULL, _pgf_moved boolean NOT NULL, _pgf_deleted boolean NOT NULL) "
      "ON COMMIT DELETE ROWS";
  return out;
}

std::string CopyStageSql(const std::string& stage) {
  return fmt::format("COPY {} FROM STDIN", Stage(stage));
}

std::string ClearStageSql(const std::string& stage) {
  return fmt::format("TRUNCATE {}", Stage(stage));
}

std::string UpsertSql(const TableMapping& m, const TargetTypes& types, const std::string& stage,
                      int group, const std::vector<bool>& left_out,
                      const std::vector<std::string>* tenants) {
  bool partial = false;
  for (bool b : left_out) partial = partial || b;
  std::string cols, values, set;
  auto it_cols = std::back_inserter(cols);
  auto it_values = std::back_inserter(values);
  auto it_set = std::back_inserter(set);
  auto add = [&](const std::string& target, const std::string& value, bool key) {
    fmt::format_to(it_cols, "{}, ", QuoteIdent(target));
    fmt::format_to(it_values, "{}, ", value);
    if (!key) fmt::format_to(it_set, "{0} = EXCLUDED.{0}, ", QuoteIdent(target));
  };
  for (size_t i = 0; i < m.columns.size(); ++i) {
    if (left_out[i]) continue;
    const MappedColumn& c = m.columns[i];
    bool key = false;
    for (size_t k : m.key_columns) key = key || k == i;
    add(c.target_name,
        fmt::format("CAST({}.{} AS {})", kS, QuoteIdent(c.source_name), types.columns[i]), key);
  }
  if (!partial) {
    for (size_t i = 0; i < m.config.computed.size(); ++i) {
      add(m.config.computed[i].target,
          fmt::format("CAST(({}) AS {})", m.config.computed[i].expression, types.computed[i]),
          false);
    }
  }
  if (!m.config.soft_delete_column.empty()) {
    // Deleted rows of a soft-deleting sink come through here too (RowChange::whole_row).
    add(m.config.soft_delete_column,
        IsBoolean(types.soft_delete)
            ? fmt::format("{}._pgf_deleted", kS)
            : fmt::format("CASE WHEN {0}._pgf_deleted THEN CAST({0}._pgf_commit_time AS {1}) END",
                          kS, types.soft_delete),
        false);
  }
  std::string conflict;
  for (size_t i = 0; i < m.key_targets.size(); ++i) {
    conflict += (i ? ", " : "") + QuoteIdent(m.key_targets[i]);
  }
  const std::string version = QuoteIdent(m.version_column);
  std::string guard = fmt::format("{}.{} <= EXCLUDED.{}", kT, version, version);
  if (tenants != nullptr) {
    guard = fmt::format("({0}.{1} < EXCLUDED.{1} OR ({0}.{1} = EXCLUDED.{1}{2}))", kT, version,
                        TenantGuard(m, tenants, kT));
  }
  return fmt::format(
      "INSERT INTO {} AS {} ({}{}) SELECT {}{}._pgf_version FROM {} AS {} WHERE {}._pgf_group = "
      "{} ON CONFLICT ({}) DO UPDATE SET {}{} = EXCLUDED.{} WHERE {}",
      TargetName(m), kT, cols, version, values, kS, Stage(stage), kS, kS, group, conflict, set,
      version, version, guard);
}

std::string DeleteSql(const TableMapping& m, const TargetTypes& types, const std::string& stage,
                      const std::vector<std::string>* tenants) {
  const std::string where =
      fmt::format("{}._pgf_group = 0 AND {} AND {}{}", kS, KeyMatch(m, types, kT, false),
                  VersionGuard(m), TenantGuard(m, tenants, kT));
  if (m.config.delete_mode == DeleteMode::kHard) {
    return fmt::format("DELETE FROM {} AS {} USING {} AS {} WHERE {}", TargetName(m), kT,
                       Stage(stage), kS, where);
  }
  std::string mark = IsBoolean(types.soft_delete)
                         ? "true"
                         : fmt::format("CAST({}._pgf_commit_time AS {})", kS, types.soft_delete);
  return fmt::format("UPDATE {} AS {} SET {} = {}, {} = {}._pgf_version FROM {} AS {} WHERE {}",
                     TargetName(m), kT, QuoteIdent(m.config.soft_delete_column), mark,
                     QuoteIdent(m.version_column), kS, Stage(stage), kS, where);
}

std::string MoveSql(const TableMapping& m, const TargetTypes& types, const std::string& stage,
                    const std::vector<std::string>* tenants) {
  std::string set;
  for (size_t i = 0; i < m.key.size(); ++i) {
    const MappedColumn& c = m.columns[m.key_columns[i]];
    fmt::format_to(std::back_inserter(set), "{} = CAST({}.{} AS {}), ", QuoteIdent(c.target_name),
                   kS, QuoteIdent(c.source_name), types.columns[m.key_columns[i]]);
  }
  // The NOT EXISTS keeps a row that already holds the new key (a replay) from colliding.
  return fmt::format(
      "UPDATE {} AS {} SET {}{} = {}._pgf_version FROM {} AS {} WHERE {}._pgf_moved AND {} AND {}{} "
      "AND NOT EXISTS (SELECT 1 FROM {} AS _pgf_x WHERE {})",
      TargetName(m), kT, set, QuoteIdent(m.version_column), kS, Stage(stage), kS, kS,
      KeyMatch(m, types, kT, true), VersionGuard(m), TenantGuard(m, tenants, kT), TargetName(m),
      KeyMatch(m, types, "_pgf_x", false));
}

std::string TruncateSql(const TableMapping& m, const TargetTypes& types,
                        const std::vector<std::string>* tenants, Lsn version,
                        int64_t commit_time_us) {
  const bool soft = m.config.delete_mode == DeleteMode::kSoft;
  if (tenants == nullptr && !soft) return "TRUNCATE " + TargetName(m);
  std::string where = fmt::format("{} <= {}{}", QuoteIdent(m.version_column), version.value(),
                                  TenantGuard(m, tenants, ""));
  if (!soft) return fmt::format("DELETE FROM {} WHERE {}", TargetName(m), where);
  const std::string column = QuoteIdent(m.config.soft_delete_column);
  const bool boolean = IsBoolean(types.soft_delete);
  std::string mark =
      boolean ? "true"
              : fmt::format("CAST({} AS {})", QuoteLiteral(FormatTimestampUtc(commit_time_us)),
                            types.soft_delete);
  // Rows already marked keep the time they were deleted at.
  return fmt::format("UPDATE {} SET {} = {}, {} = {} WHERE {} AND {} {}", TargetName(m), column,
                     mark, QuoteIdent(m.version_column), version.value(), where, column,
                     boolean ? "IS NOT TRUE" : "IS NULL");
}

std::string ResetVersionsSql(const TableMapping& m, const std::vector<std::string>* tenants) {
  return fmt::format("UPDATE {0} SET {1} = 0 WHERE {1} <> 0{2}", TargetName(m),
                     QuoteIdent(m.version_column), TenantGuard(m, tenants, ""));
}

std::string SweepSql(const TableMapping& m, const TargetTypes& types,
                     const std::vector<std::string>* tenants, Lsn version, int64_t now_us) {
  const std::string where =
      fmt::format("{} = 0{}", QuoteIdent(m.version_column), TenantGuard(m, tenants, ""));
  if (m.config.delete_mode == DeleteMode::kHard) {
    return fmt::format("DELETE FROM {} WHERE {}", TargetName(m), where);
  }
  // Rows already marked keep the time they were deleted at.
  const std::string column = QuoteIdent(m.config.soft_delete_column);
  const std::string mark =
      IsBoolean(types.soft_delete)
          ? "true"
          : fmt::format("coalesce({}, CAST({} AS {}))", column,
                        QuoteLiteral(FormatTimestampUtc(now_us)), types.soft_delete);
  return fmt::format("UPDATE {} SET {} = {}, {} = {} WHERE {}", TargetName(m), column, mark,
                     QuoteIdent(m.version_column), version.value(), where);
}

std::string CreateTableSql(const TableMapping& m, const std::vector<std::string>& column_types,
                           const std::vector<std::string>& computed_types) {
  std::string out = fmt::format("CREATE TABLE IF NOT EXISTS {} (", TargetName(m));
  auto it = std::back_inserter(out);
  for (size_t i = 0; i < m.columns.size(); ++i) {
    fmt::format_to(it, "{} {}, ", QuoteIdent(m.columns[i].target_name), column_types[i]);
  }
  for (size_t i = 0; i < m.config.computed.size(); ++i) {
    fmt::format_to(it, "{} {}, ", QuoteIdent(m.config.computed[i].target), computed_types[i]);
  }
  if (!m.config.soft_delete_column.empty()) {
    fmt::format_to(it, "{} timestamptz, ", QuoteIdent(m.config.soft_delete_column));
  }
  fmt::format_to(it, "{} bigint NOT NULL, PRIMARY KEY (", QuoteIdent(m.version_column));
  for (size_t i = 0; i < m.key_targets.size(); ++i) {
    fmt::format_to(it, "{}{}", i ? ", " : "", QuoteIdent(m.key_targets[i]));
  }
  out += "))";
  for (const auto& c : m.columns) {
    fmt::format_to(it, "; COMMENT ON COLUMN {}.{} IS {}", TargetName(m), QuoteIdent(c.target_name),
                   QuoteLiteral(kOwnColumnComment));
  }
  return out;
}

std::string AddColumnSql(const TableMapping& m, const std::string& column, const std::string& type,
                         bool own) {
  std::string out = fmt::format("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}", TargetName(m),
                                QuoteIdent(column), type);
  if (own) {
    fmt::format_to(std::back_inserter(out), "; COMMENT ON COLUMN {}.{} IS {}", TargetName(m),
                   QuoteIdent(column), QuoteLiteral(kOwnColumnComment));
  }
  return out;
}

std::string DropColumnSql(const TableMapping& m, const std::string& column) {
  return fmt::format("ALTER TABLE {} DROP COLUMN IF EXISTS {}", TargetName(m), QuoteIdent(column));
}

std::string AlterColumnTypeSql(const TableMapping& m, const std::string& column,
                               const std::string& type) {
  return fmt::format("ALTER TABLE {0} ALTER COLUMN {1} TYPE {2} USING {1}::text::{2}",
                     TargetName(m), QuoteIdent(column), type);
}

std::string SinkStateTable(const std::string& schema) {
  return QuoteIdent(schema) + ".pgfanout_sink_state";
}

std::string SaveSinkStateSql(const std::string& schema) {
  return fmt::format(
      "INSERT INTO {} (sink_id, commit_lsn, ordinal, source_system_id, slot_name, timeline, "
      "log_id) VALUES ($1, $2::pg_lsn, $3::bigint, $4, $5, $6::bigint, $7) "
      "ON CONFLICT (sink_id) DO UPDATE SET commit_lsn = EXCLUDED.commit_lsn, "
      "ordinal = EXCLUDED.ordinal, source_system_id = EXCLUDED.source_system_id, "
      "slot_name = EXCLUDED.slot_name, timeline = EXCLUDED.timeline, log_id = EXCLUDED.log_id, "
      "updated_at = now()",
      SinkStateTable(schema));
}

}  // namespace pgfanout
