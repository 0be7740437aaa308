#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <ctime>
#include <iterator>
#include <string_view>

#include "src/core/change_event.h"

// JSON text written straight into a buffer, for every sink that sends JSON (JSONL, webhook,
// NATS, ClickHouse's JSONEachRow). It runs once per value on the delivery path, where a
// DOM per event would cost more than the rest of the sink. Templates over the buffer
// (`fmt::memory_buffer` or `std::string`: anything with push_back and append(first, last)),
// so each call site inlines them as it did when every sink had its own copy.
namespace pgfanout::json_text {

namespace detail {

template <class Out>
void Put(Out& out, std::string_view s) {
  out.append(s.data(), s.data() + s.size());
}

// Type OIDs from pg_type.dat whose text form maps to a JSON kind other than string.
constexpr uint32_t kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kOidOid = 26,
                   kJsonOid = 114, kFloat4Oid = 700, kFloat8Oid = 701, kNumericOid = 1700,
                   kJsonbOid = 3802;

// Postgres prints NaN and Infinity for float and numeric; JSON has no such numbers.
inline bool IsJsonNumber(std::string_view s) {
  return !s.empty() && s != "NaN" && s != "Infinity" && s != "-Infinity";
}

}  // namespace detail

// A JSON string (RFC 8259): `"` and `\` escaped, control bytes as \n, \r, \t or \u00XX;
// bytes >= 0x80 pass through (Postgres sends UTF-8), and so does DEL.
template <class Out>
void AppendString(std::string_view s, Out& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, s.data() + i);
    run = i + 1;
    switch (c) {
      case '"':
        detail::Put(out, "\\\"");
        break;
      case '\\':
        detail::Put(out, "\\\\");
        break;
      case '\n':
        detail::Put(out, "\\n");
        break;
      case '\r':
        detail::Put(out, "\\r");
        break;
      case '\t':
        detail::Put(out, "\\t");
        break;
      default:
        detail::Put(out, "\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
  }
  out.append(s.data() + run, s.data() + s.size());
  out.push_back('"');
}

// A column value in its JSON kind: booleans, integers, floats and numerics as numbers
// (NaN and Infinity as strings), json/jsonb embedded as they are, NULL as null, anything
// else as a string in Postgres text form. An unchanged TOAST value has no text and is
// written as null: callers leave those out or write their own placeholder.
template <class Out>
void AppendValue(const ColumnSchema& column, const Datum& value, Out& out) {
  using namespace detail;
  if (value.kind != ValueKind::kText) {
    Put(out, "null");
    return;
  }
  switch (column.type_oid) {
    case kBoolOid:
      Put(out, value.text == "t" ? "true" : "false");
      return;
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid:
    case kFloat4Oid:
    case kFloat8Oid:
    case kNumericOid:
      if (IsJsonNumber(value.text)) {
        Put(out, value.text);
        return;
      }
      break;
    case kJsonOid:
    case kJsonbOid:
      Put(out, value.text);  // already JSON
      return;
  }
  AppendString(value.text, out);
}

// "2026-11-21T22:00:00.123456Z" (quoted) for microseconds since the Unix epoch.
template <class Out>
void AppendTime(int64_t unix_us, Out& out) {
  auto secs = static_cast<std::time_t>(unix_us / 1'000'000);
  int64_t micros = unix_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  fmt::format_to(std::back_inserter(out), "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 micros);
}

// The op as the JSON formats name it.
inline const char* OpName(Op op) {
  switch (op) {
    case Op::kInsert:
      return "insert";
    case Op::kUpdate:
      return "update";
    case Op::kDelete:
      return "delete";
    case Op::kTruncate:
      return "truncate";
  }
  return "?";
}

}  // namespace pgfanout::json_text
