#include "src/sinks/clickhouse/row_encoder.h"

#include <fmt/format.h>

#include "src/sinks/clickhouse/value_encoder.h"
#include "src/sinks/json_text.h"

namespace pgfanout::clickhouse {

RowEncoder::RowEncoder(const TableTarget& target, const TableSchema& schema,
                       std::vector<ChType> types)
    : target_(target), types_(std::move(types)) {
  std::string columns;
  for (const auto& c : schema.columns) {
    names_.push_back(c.name);
    oids_.push_back(c.type_oid);
    std::string key;
    json_text::AppendString(c.name, key);
    json_keys_.push_back(key + ":");
    columns += QuoteName(c.name) + ", ";
  }
  json_text::AppendString(target_.version_column, version_key_);
  version_key_ += ":";
  json_text::AppendString(kDeletedColumn, deleted_key_);
  deleted_key_ += ":";
  insert_ = fmt::format("INSERT INTO {} ({}{}, {}) FORMAT JSONEachRow", target_.Qualified(),
                        columns, QuoteName(target_.version_column), QuoteName(kDeletedColumn));
}

Error RowEncoder::ColumnError(size_t source, const Error& e) const {
  return Error{e.kind,
               fmt::format("{}: column \"{}\": {}", target_.Describe(), names_[source], e.message)};
}

Result<void> RowEncoder::Append(const PlannedRow& row, std::string& out) const {
  out.push_back('{');
  for (size_t i = 0; i < row.row.size() && i < types_.size(); ++i) {
    const Datum& d = row.row[i];
    // A deleted row carries what its delete sent; the other columns take their defaults
    // (a non-Nullable column cannot hold the NULL the delete did not send).
    if (row.deleted && d.kind != ValueKind::kText) continue;
    auto v = ConvertValue(d, oids_[i], types_[i]);
    if (!v) return ColumnError(i, v.error());
    out.append(json_keys_[i]);
    AppendJsonValue(v.value(), out);
    out.push_back(',');
  }
  out.append(version_key_);
  out.append(std::to_string(row.version.value()));
  out.push_back(',');
  out.append(deleted_key_);
  out.append(row.deleted ? "1}\n" : "0}\n");
  return boost::outcome_v2::success();
}

Result<std::string> RowEncoder::LookupSql(const std::vector<const std::vector<Datum>*>& keys,
                                          const std::vector<size_t>& columns) const {
  std::string key_expr, list;
  const bool tuple = target_.key.size() > 1;
  for (size_t k : target_.key) key_expr += (key_expr.empty() ? "" : ", ") + QuoteName(names_[k]);
  if (tuple) key_expr = "(" + key_expr + ")";
  for (const auto* values : keys) {
    std::string one;
    for (size_t j = 0; j < target_.key.size(); ++j) {
      const size_t k = target_.key[j];
      // A key is never NULL; its column is not Nullable.
      ChType type = types_[k];
      type.nullable = false;
      auto v = ConvertValue((*values)[j], oids_[k], type);
      if (!v) return ColumnError(k, v.error());
      one += (one.empty() ? "" : ", ") + SqlLiteral(v.value(), types_[k]);
    }
    list += (list.empty() ? "" : ", ") + (tuple ? "(" + one + ")" : one);
  }
  std::string select;
  for (size_t c : columns) select += ", " + QuoteName(names_[c]);
  return fmt::format(
      "SELECT indexOf([{}], {}){} FROM {} FINAL WHERE {} IN ({}) AND {} = 0 FORMAT TabSeparated",
      list, key_expr, select, target_.Qualified(), key_expr, list, QuoteName(kDeletedColumn));
}

std::string RowEncoder::TenantCondition(const std::vector<std::string>& tenants) const {
  if (!target_.tenant) return "";
  std::string list;
  for (const auto& t : tenants) list += (list.empty() ? "" : ", ") + QuoteString(t);
  // The tenant values are the source's text form; toString gives a number column's
  // value the same spelling.
  return fmt::format("toString({}) IN ({})", QuoteName(names_[*target_.tenant]), list);
}

}  // namespace pgfanout::clickhouse
