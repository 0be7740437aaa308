#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "src/core/change_event.h"
#include "src/core/error.h"
#include "src/sinks/clickhouse/type_mapping.h"

namespace pgfanout::clickhouse {

// How a Postgres value (its text form, as the replication connection sends it: DateStyle
// ISO, extra_float_digits 3) is written into a ClickHouse column. Pure functions.

// A point in time read from a timestamp[tz] text.
struct UtcTime {
  int64_t seconds = 0;  // since 1970-01-01 00:00:00 UTC
  int32_t micros = 0;   // 0..999999
  int64_t year = 0;     // of the UTC date
  // "YYYY-MM-DD HH:MM:SS.ffffff" in UTC, always six fraction digits (sorts as time).
  std::string Canonical() const;
};

// Reads "2026-01-02 03:04:05.123456+05:30" (timestamptz; the offset is required) or
// "2026-01-02 03:04:05" (timestamp, `with_offset` false: read as UTC). nullopt for
// infinity, -infinity, BC dates and anything malformed.
std::optional<UtcTime> ParsePgTimestamp(std::string_view text, bool with_offset);

// Whether `text` is a JSON number (-?int[.frac][e[+-]exp]): safe to write unquoted.
bool IsJsonNumber(std::string_view text);

// A value converted for a column, before it is written as JSON or as SQL.
struct ChValue {
  enum class Form : uint8_t { kNull, kNumber, kString, kTrue, kFalse };
  Form form = Form::kNull;
  std::string text;  // kNumber: digits to write as they are; kString: the string
};

// Converts `d` from a source column of type `source_oid` for a column of type `target`.
// kUnchangedToast counts as NULL (the caller fills those values first). Errors
// (kMismatch) say what does not fit, without naming the column (the caller does):
// NULL for a column that is not Nullable, a non-number for a number column, NaN or
// Infinity for a Decimal, a time outside the column type's range, an Array column.
Result<ChValue> ConvertValue(const Datum& d, uint32_t source_oid, const ChType& target);

// Appends `v` as a JSONEachRow field value.
void AppendJsonValue(const ChValue& v, std::string& out);

// `v` as an SQL expression of type `target` (CAST('…' AS T)), for key lookups.
std::string SqlLiteral(const ChValue& v, const ChType& target);

// 'text' quoted for ClickHouse SQL (backslash and quote escaped).
std::string QuoteString(std::string_view text);

// `name` quoted as a ClickHouse identifier (`…`).
std::string QuoteName(std::string_view name);

}  // namespace pgfanout::clickhouse
