#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "src/core/change_event.h"

namespace pgfanout::webhook {

// JSON text for the webhook payloads, written straight into a buffer: this runs once per
// value on the delivery path, where a DOM per event would cost more than the rest.

// A JSON string (RFC 8259 escaping; bytes >= 0x80 pass through, Postgres sends UTF-8).
void AppendString(std::string_view s, fmt::memory_buffer& out);

// A column value in its JSON kind: booleans, integers, floats and numerics as numbers
// (NaN and Infinity as strings), json/jsonb embedded, NULL as null, everything else as a
// string in Postgres text form. Not for kUnchangedToast (the caller decides).
void AppendValue(const ColumnSchema& column, const Datum& value, fmt::memory_buffer& out);

// {"col": value, …} over `row`'s columns for which `want(column)` holds. Unchanged TOAST
// values are written as `toast_placeholder` when it is non-empty, else left out.
template <class Want>
void AppendRow(const TableSchema& table, const std::vector<Datum>& row, Want want,
               std::string_view toast_placeholder, fmt::memory_buffer& out) {
  out.push_back('{');
  bool first = true;
  for (size_t i = 0; i < row.size() && i < table.columns.size(); ++i) {
    const ColumnSchema& col = table.columns[i];
    const bool toast = row[i].kind == ValueKind::kUnchangedToast;
    if ((toast && toast_placeholder.empty()) || !want(col)) continue;
    if (!first) out.push_back(',');
    first = false;
    AppendString(col.name, out);
    out.push_back(':');
    if (toast) {
      AppendString(toast_placeholder, out);
    } else {
      AppendValue(col, row[i], out);
    }
  }
  out.push_back('}');
}

// "2026-11-21T22:00:00.123456Z" (quoted) for microseconds since the Unix epoch.
void AppendTime(int64_t unix_us, fmt::memory_buffer& out);

}  // namespace pgfanout::webhook
