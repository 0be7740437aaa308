#include "src/sinks/clickhouse/type_mapping.h"

#include <fmt/format.h>

namespace pgfanout::clickhouse {
namespace {

// Strips `Wrapper(` ... `)` when `type` is exactly that; sets `found`.
std::string_view Unwrap(std::string_view type, std::string_view wrapper, bool& found) {
  found = type.size() > wrapper.size() + 1 && type.starts_with(wrapper) &&
          type[wrapper.size()] == '(' && type.back() == ')';
  return found ? type.substr(wrapper.size() + 1, type.size() - wrapper.size() - 2) : type;
}

// The first quoted argument of `args` ("6, 'UTC'" -> "UTC"), "" when none.
std::string QuotedArgument(std::string_view args) {
  auto open = args.find('\'');
  if (open == std::string_view::npos) return "";
  auto close = args.find('\'', open + 1);
  if (close == std::string_view::npos) return "";
  return std::string(args.substr(open + 1, close - open - 1));
}

}  // namespace

ChType ParseChType(std::string_view type) {
  ChType out;
  out.text = std::string(type);
  bool found = false;
  type = Unwrap(type, "LowCardinality", found);
  type = Unwrap(type, "Nullable", out.nullable);
  using F = ChType::Family;
  auto name_end = type.find('(');
  std::string_view name = type.substr(0, name_end);
  std::string_view args =
      name_end == std::string_view::npos ? std::string_view() : type.substr(name_end + 1);
  if (name == "String" || name == "FixedString") {
    out.family = F::kString;
  } else if (name.starts_with("UInt")) {
    out.family = F::kUInt;
  } else if (name.starts_with("Int")) {
    out.family = F::kInt;
  } else if (name == "Float32" || name == "Float64") {
    out.family = F::kFloat;
  } else if (name.starts_with("Decimal")) {
    out.family = F::kDecimal;
  } else if (name == "Bool") {
    out.family = F::kBool;
  } else if (name == "Date") {
    out.family = F::kDate;
  } else if (name == "DateTime") {
    out.family = F::kDateTime;
    out.timezone = QuotedArgument(args);
  } else if (name == "DateTime64") {
    out.family = F::kDateTime64;
    out.timezone = QuotedArgument(args);
  } else if (name == "Array" || name == "Tuple" || name == "Map" || name == "Nested" ||
             name == "AggregateFunction" || name == "SimpleAggregateFunction" ||
             name == "Nothing" || name.empty()) {
    out.family = F::kUnsupported;
  } else {
    out.family = F::kOther;
  }
  return out;
}

std::string MapSourceType(const ColumnSchema& column, const ServerFeatures& features) {
  switch (column.type_oid) {
    case pg_oid::kBool:
      return "UInt8";
    case pg_oid::kInt2:
      return "Int16";
    case pg_oid::kInt4:
      return "Int32";
    case pg_oid::kInt8:
      return "Int64";
    case pg_oid::kOid:
      return "UInt32";
    case pg_oid::kFloat4:
      return "Float32";
    case pg_oid::kFloat8:
      return "Float64";
    case pg_oid::kNumeric: {
      // typmod = ((precision << 16) | (scale & 0x7ff)) + VARHDRSZ; the scale is an 11-bit
      // signed number since Postgres 15 (numeric(2, -3)). Unbounded: -1.
      if (column.type_modifier < 4) return "String";
      const int32_t mod = column.type_modifier - 4;
      const int precision = (mod >> 16) & 0xffff;
      const int scale = ((mod & 0x7ff) ^ 1024) - 1024;
      if (precision < 1 || precision > 38 || scale < 0 || scale > precision) return "String";
      return fmt::format("Decimal({}, {})", precision, scale);
    }
    case pg_oid::kTimestamptz:
      // Older servers have no sub-second type: the UTC text, which sorts as time.
      return features.datetime64 ? "DateTime64(6, 'UTC')" : "String";
    default:
      // text, varchar, char, json, jsonb, uuid, bytea (hex text), date, timestamp, time,
      // interval, arrays, enums, and every other type: the Postgres text form.
      return "String";
  }
}

std::string ColumnDdlType(const ColumnSchema& column, bool in_key, const ServerFeatures& features) {
  std::string base = MapSourceType(column, features);
  return in_key ? base : "Nullable(" + base + ")";
}

}  // namespace pgfanout::clickhouse
