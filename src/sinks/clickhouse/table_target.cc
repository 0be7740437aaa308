#include "src/sinks/clickhouse/table_target.h"

#include <fmt/format.h>

#include <algorithm>

#include "src/sinks/clickhouse/value_encoder.h"

namespace pgfanout::clickhouse {
namespace {

std::optional<size_t> FindColumn(const TableSchema& schema, const std::string& name) {
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    if (schema.columns[i].name == name) return i;
  }
  return std::nullopt;
}

}  // namespace

std::string TableTarget::Describe() const {
  return fmt::format("sink {}: table {} -> {}.{}", sink_id, source_name, database, table);
}

std::string TableTarget::Qualified() const { return QuoteName(database) + "." + QuoteName(table); }

bool TableTarget::InKey(size_t source) const {
  return std::find(key.begin(), key.end(), source) != key.end();
}

Result<std::optional<TableTarget>> ResolveTarget(const SinkBasics& sink,
                                                 const ClickHouseSinkOptions& options,
                                                 const TableConfig* table,
                                                 const TableSchema& schema) {
  // A target without a schema is read into kDefaultTargetSchema (a ClickHouse sink has no
  // `schema:`): here, the sink's own database.
  constexpr std::string_view kOwnDatabase = kDefaultTargetSchema;
  SinkTableConfig fallback;
  const SinkTableConfig* config =
      FindSinkTable(sink.tables, kOwnDatabase, schema.QualifiedName(), fallback);
  if (config == nullptr) return std::optional<TableTarget>();
  // `target: other_db.t` names a database; a bare `target: t` (or none) is in the sink's.
  const bool own_database = config->target_schema.empty() || config->target_schema == kOwnDatabase;
  TableTarget t{.sink_id = sink.id,
                .source_name = schema.QualifiedName(),
                .database = own_database ? options.database : config->target_schema,
                .table = config->target.empty() ? schema.table_name : config->target,
                .version_column = kVersionColumn};
  auto fail = [&](const std::string& what) {
    return MakeError(ErrorKind::kInvalidArgument, fmt::format("{}: {}", t.Describe(), what));
  };
  for (const auto& c : schema.columns) {
    if (c.name == t.version_column || c.name == kDeletedColumn) {
      return fail(
          fmt::format("source column \"{}\" has the name of the sink's own column", c.name));
    }
  }
  std::vector<std::string> key_names;
  if (table != nullptr && !table->key.empty()) {
    key_names = table->key;
  } else {
    for (const auto& c : schema.columns) {
      if (c.part_of_key) key_names.push_back(c.name);
    }
  }
  if (key_names.empty()) {
    return fail(
        "the source table has no key to collapse versions by (give it a primary key, or set "
        "tables[].key)");
  }
  for (const auto& name : key_names) {
    auto at = FindColumn(schema, name);
    if (!at)
      return fail(fmt::format("key column \"{}\" is not a column of the source table", name));
    t.key.push_back(*at);
  }
  if (table != nullptr && !table->tenant_column.empty()) {
    t.tenant = FindColumn(schema, table->tenant_column);
  }
  return std::optional<TableTarget>(std::move(t));
}

std::string CreateTableSql(const TableTarget& t, const TableSchema& schema,
                           const ServerFeatures& features) {
  std::string columns;
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    const ColumnSchema& c = schema.columns[i];
    columns += fmt::format("{} {} COMMENT {}, ", QuoteName(c.name),
                           ColumnDdlType(c, t.InKey(i), features), QuoteString(kOwnColumnComment));
  }
  std::string order;
  for (size_t k : t.key) order += (order.empty() ? "" : ", ") + QuoteName(schema.columns[k].name);
  // Without the window the dedup token does nothing on a table that is not replicated.
  const std::string settings = features.dedup_token && features.nonreplicated_dedup
                                   ? " SETTINGS non_replicated_deduplication_window = 1000"
                                   : "";
  return fmt::format(
      "CREATE TABLE IF NOT EXISTS {} ({}{} UInt64, {} UInt8) ENGINE = ReplacingMergeTree({}) "
      "ORDER BY ({}){}",
      t.Qualified(), columns, QuoteName(t.version_column), QuoteName(kDeletedColumn),
      QuoteName(t.version_column), order, settings);
}

std::string AddColumnSql(const TableTarget& t, const ColumnSchema& column,
                         const ServerFeatures& features) {
  return fmt::format("ALTER TABLE {} ADD COLUMN {} {} COMMENT {}", t.Qualified(),
                     QuoteName(column.name), ColumnDdlType(column, false, features),
                     QuoteString(kOwnColumnComment));
}

}  // namespace pgfanout::clickhouse
