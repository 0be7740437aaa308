#include "src/sinks/clickhouse/table_sync.h"

#include <fmt/format.h>

#include <algorithm>

#include "src/sinks/clickhouse/tsv_reader.h"
#include "src/sinks/clickhouse/value_encoder.h"

namespace pgfanout::clickhouse {
namespace {

constexpr int kDuplicateColumn = 15;

struct Column {
  std::string name;
  std::string type;
  std::string comment;
  bool in_sorting_key = false;
};

struct Table {
  bool exists = false;
  std::string engine;
  std::string engine_full;
  std::vector<Column> columns;

  const Column* Find(const std::string& name) const {
    for (const auto& c : columns) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }
  bool Own() const {
    return std::any_of(columns.begin(), columns.end(),
                       [](const Column& c) { return c.comment == kOwnColumnComment; });
  }
};

class Sync {
 public:
  Sync(ClickHouseHttp& ch, const TableTarget& t, const TableSchema& schema,
       const ServerFeatures& features, bool create_tables,
       const std::function<Result<void>()>& before_adding)
      : ch_(ch),
        t_(t),
        schema_(schema),
        features_(features),
        create_tables_(create_tables),
        before_adding_(before_adding) {}

  Result<std::vector<ChType>> Run() {
    PGF_TRY(Table table, Load());
    if (!table.exists) {
      if (!create_tables_) {
        return Fail("the target table does not exist (create it, or set create_tables: true)");
      }
      PGF_TRY(Run("creating the target table", CreateTableSql(t_, schema_, features_)));
      PGF_TRY(table, Load());
      if (!table.exists) return Fail("the target table is not there after CREATE TABLE");
    }
    PGF_TRY(CheckEngine(table));
    PGF_TRY(bool added, AddMissing(table));
    if (added) {
      PGF_TRY(table, Load());
    }
    return Types(table);
  }

 private:
  Error Fail(const std::string& what, ErrorKind kind = ErrorKind::kMismatch) const {
    return MakeError(kind, fmt::format("{}: {}", t_.Describe(), what));
  }

  Result<std::string> Run(std::string_view what, const std::string& sql) {
    auto r = ch_.Query(what, sql);
    if (!r) return r.error().Wrap(t_.Describe());
    return r;
  }

  Result<Table> Load() {
    PGF_TRY(auto engine_text,
            Run("reading the target table's engine",
                fmt::format("SELECT engine, engine_full FROM system.tables WHERE database = {} AND "
                            "name = {} FORMAT TabSeparated",
                            QuoteString(t_.database), QuoteString(t_.table))));
    PGF_TRY(auto engine_rows, ParseTsv(engine_text));
    Table table;
    if (engine_rows.empty()) return table;
    table.exists = true;
    table.engine = engine_rows[0].size() > 0 ? engine_rows[0][0].value_or("") : "";
    table.engine_full = engine_rows[0].size() > 1 ? engine_rows[0][1].value_or("") : "";
    PGF_TRY(auto columns_text,
            Run("reading the target table's columns",
                fmt::format("SELECT name, type, comment, is_in_sorting_key FROM system.columns "
                            "WHERE database = {} AND table = {} FORMAT TabSeparated",
                            QuoteString(t_.database), QuoteString(t_.table))));
    PGF_TRY(auto rows, ParseTsv(columns_text));
    for (auto& r : rows) {
      if (r.size() != 4) return Fail("unreadable system.columns answer", ErrorKind::kSink);
      table.columns.push_back(
          {r[0].value_or(""), r[1].value_or(""), r[2].value_or(""), r[3].value_or("0") != "0"});
    }
    return table;
  }

  Result<void> CheckEngine(const Table& table) {
    const std::string how = fmt::format(
        "the target table must be ReplacingMergeTree({}) ordered by the key, with a UInt8 "
        "column {} (drop it to let the sink create it, or fix it)",
        t_.version_column, kDeletedColumn);
    if (table.engine != "ReplacingMergeTree" && table.engine != "ReplicatedReplacingMergeTree") {
      return Fail(fmt::format("its engine is {}; {}", table.engine, how));
    }
    // The engine's arguments end at the first ')': the version column is the last one.
    const std::string& full = table.engine_full;
    const size_t open = full.find('('), close = full.find(')');
    const std::string args = open < close && close != std::string::npos
                                 ? full.substr(open + 1, close - open - 1)
                                 : std::string();
    const size_t comma = args.rfind(',');
    std::string version = comma == std::string::npos ? args : args.substr(comma + 1);
    version.erase(
        std::remove_if(version.begin(), version.end(), [](char c) { return c == ' ' || c == '`'; }),
        version.end());
    if (version != t_.version_column) {
      return Fail(fmt::format("its engine is {}; {}", full.substr(0, close + 1), how));
    }
    const Column* deleted = table.Find(kDeletedColumn);
    if (deleted == nullptr || deleted->type != "UInt8") return Fail(how);
    // Sorted by exactly the key: else versions of a row would not collapse (more columns),
    // or different rows would (fewer).
    for (const auto& c : table.columns) {
      bool in_key = false;
      for (size_t k : t_.key) in_key = in_key || schema_.columns[k].name == c.name;
      if (in_key != c.in_sorting_key) {
        return Fail(fmt::format("column \"{}\" {} the sorting key; {}", c.name,
                                in_key ? "is not in" : "must not be in", how));
      }
    }
    for (size_t k : t_.key) {
      if (table.Find(schema_.columns[k].name) == nullptr) {
        return Fail(fmt::format("key column \"{}\" is missing; {}", schema_.columns[k].name, how));
      }
    }
    return boost::outcome_v2::success();
  }

  Result<bool> AddMissing(const Table& table) {
    std::vector<const ColumnSchema*> missing;
    for (const auto& c : schema_.columns) {
      if (table.Find(c.name) == nullptr) missing.push_back(&c);
    }
    if (missing.empty()) return false;
    if (!create_tables_ || !table.Own()) {
      return Fail(fmt::format("the target table has no column \"{}\" ({})", missing[0]->name,
                              create_tables_ ? "the sink did not create the table: add the column"
                                             : "add it, or set create_tables: true"));
    }
    PGF_TRY(auto any, Run("checking the target table for rows",
                          fmt::format("SELECT count() FROM (SELECT 1 FROM {} LIMIT 1) "
                                      "FORMAT TabSeparated",
                                      t_.Qualified())));
    if (any != "0\n" && before_adding_) PGF_TRY(before_adding_());
    for (const ColumnSchema* c : missing) {
      auto r = ch_.Query("adding a column the source added", AddColumnSql(t_, *c, features_));
      // Another sink writing to the same table added it first.
      if (!r && ch_.last_error_code() != kDuplicateColumn) return r.error().Wrap(t_.Describe());
    }
    return true;
  }

  Result<std::vector<ChType>> Types(const Table& table) const {
    std::vector<ChType> types;
    for (const auto& c : schema_.columns) {
      const Column* tc = table.Find(c.name);
      if (tc == nullptr) return Fail(fmt::format("the target table has no column \"{}\"", c.name));
      ChType type = ParseChType(tc->type);
      const bool time = c.type_oid == pg_oid::kTimestamptz || c.type_oid == pg_oid::kTimestamp;
      if (type.family == ChType::Family::kUnsupported) {
        return Fail(
            fmt::format("column \"{}\" is {}: no Postgres value fits it", c.name, tc->type));
      }
      if (time && type.family == ChType::Family::kDateTime64 && type.timezone != "UTC") {
        return Fail(
            fmt::format("column \"{}\" is {}: the sink writes times as UTC, so a "
                        "DateTime64 column must be in time zone 'UTC'",
                        c.name, tc->type));
      }
      types.push_back(std::move(type));
    }
    return types;
  }

  ClickHouseHttp& ch_;
  const TableTarget& t_;
  const TableSchema& schema_;
  const ServerFeatures& features_;
  const bool create_tables_;
  const std::function<Result<void>()>& before_adding_;
};

}  // namespace

Result<std::vector<ChType>> SyncTargetTable(ClickHouseHttp& ch, const TableTarget& t,
                                            const TableSchema& schema,
                                            const ServerFeatures& features, bool create_tables,
                                            const std::function<Result<void>()>& before_adding) {
  return Sync(ch, t, schema, features, create_tables, before_adding).Run();
}

}  // namespace pgfanout::clickhouse
