#include "src/sinks/postgres/table_mapping.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace pgfanout {
namespace {

std::optional<size_t> FindColumn(const TableSchema& schema, const std::string& name) {
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    if (schema.columns[i].name == name) return i;
  }
  return std::nullopt;
}

}  // namespace

std::string TableMapping::Describe() const {
  return fmt::format("sink {}: table {} -> {}.{}", sink_id, source_name, target_schema,
                     target_table);
}

size_t TableMapping::StagedIndex(size_t source) const {
  return static_cast<size_t>(std::lower_bound(staged.begin(), staged.end(), source) -
                             staged.begin());
}

Result<std::optional<TableMapping>> ResolveMapping(const SinkBasics& sink,
                                                   const PostgresSinkOptions& options,
                                                   const TableConfig* table,
                                                   const TableSchema& schema) {
  SinkTableConfig fallback;
  const SinkTableConfig* config =
      FindSinkTable(sink.tables, options.schema, schema.QualifiedName(), fallback);
  if (config == nullptr) return std::optional<TableMapping>();
  TableMapping m{
      .sink_id = sink.id,
      .source_name = schema.QualifiedName(),
      .fingerprint = schema.Fingerprint(),
      .config = *config,
      .target_schema = config->target_schema.empty() ? options.schema : config->target_schema,
      .target_table = config->target.empty() ? schema.table_name : config->target,
      .version_column = options.version_column,
      .create_tables = options.create_tables,
      .follow_ddl = options.create_tables && config->columns.empty()};
  auto fail = [&](ErrorKind kind, const std::string& what) {
    return MakeError(kind, fmt::format("{}: {}", m.Describe(), what));
  };

  if (config->columns.empty()) {
    for (size_t i = 0; i < schema.columns.size(); ++i) {
      const auto& name = schema.columns[i].name;
      m.columns.push_back({i, name, config->TargetColumn(name)});
    }
  } else {
    for (const auto& name : config->columns) {
      auto at = FindColumn(schema, name);
      if (!at) {
        return fail(ErrorKind::kMismatch,
                    fmt::format("column \"{}\" of the mapping's columns: is no longer in the "
                                "source table (drop it from the mapping, then restart)",
                                name));
      }
      m.columns.push_back({*at, name, config->TargetColumn(name)});
    }
  }

  std::set<std::string> targets;
  for (const auto& c : m.columns) targets.insert(c.target_name);
  for (const auto& c : config->computed) targets.insert(c.target);
  if (!config->soft_delete_column.empty()) targets.insert(config->soft_delete_column);
  if (targets.count(m.version_column)) {
    return fail(ErrorKind::kInvalidArgument,
                fmt::format("column \"{}\" is the sink's version_column and cannot be mapped",
                            m.version_column));
  }

  auto mapped = [&](size_t source) -> const MappedColumn* {
    for (const auto& c : m.columns) {
      if (c.source == source) return &c;
    }
    return nullptr;
  };
  std::vector<std::string> key_names;
  if (table != nullptr && !table->key.empty()) {
    key_names = table->key;
  } else {
    for (const auto& c : schema.columns) {
      if (c.part_of_key) key_names.push_back(c.name);
    }
  }
  if (key_names.empty()) {
    return fail(ErrorKind::kInvalidArgument,
                "the source table has no key to upsert by (give it a primary key, or set "
                "tables[].key)");
  }
  for (const auto& name : key_names) {
    auto at = FindColumn(schema, name);
    if (!at) {
      return fail(ErrorKind::kInvalidArgument,
                  fmt::format("key column \"{}\" is not a column of the source table", name));
    }
    const MappedColumn* c = mapped(*at);
    if (c == nullptr) {
      return fail(ErrorKind::kInvalidArgument,
                  fmt::format("the mapping's columns: leave out key column \"{}\"; a row sink "
                              "needs the whole key",
                              name));
    }
    m.key.push_back(*at);
    m.key_targets.push_back(c->target_name);
    m.key_columns.push_back(static_cast<size_t>(c - m.columns.data()));
  }

  if (table != nullptr && !table->tenant_column.empty()) {
    if (auto at = FindColumn(schema, table->tenant_column)) {
      if (const MappedColumn* c = mapped(*at)) m.tenant_target = c->target_name;
    }
  }

  if (config->computed.empty()) {
    for (const auto& c : m.columns) m.staged.push_back(c.source);
    std::sort(m.staged.begin(), m.staged.end());
  } else {
    for (size_t i = 0; i < schema.columns.size(); ++i) m.staged.push_back(i);
  }
  return std::optional<TableMapping>(std::move(m));
}

}  // namespace pgfanout
