#include "src/sinks/webhook/json_text.h"

#include <ctime>
#include <iterator>

namespace pgfanout::webhook {
namespace {

// Type OIDs from pg_type.dat whose text form maps to a JSON kind other than string.
constexpr uint32_t kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kOidOid = 26,
                   kJsonOid = 114, kFloat4Oid = 700, kFloat8Oid = 701, kNumericOid = 1700,
                   kJsonbOid = 3802;

bool IsJsonNumber(std::string_view s) {
  // Postgres prints NaN and Infinity for float and numeric; JSON has no such numbers.
  return !s.empty() && s != "NaN" && s != "Infinity" && s != "-Infinity";
}

}  // namespace

void AppendString(std::string_view s, fmt::memory_buffer& out) {
  out.push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, s.data() + i);
    run = i + 1;
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    }
  }
  out.append(s.data() + run, s.data() + s.size());
  out.push_back('"');
}

void AppendValue(const ColumnSchema& col, const Datum& d, fmt::memory_buffer& out) {
  if (d.kind != ValueKind::kText) {
    out.append(std::string_view("null"));
    return;
  }
  switch (col.type_oid) {
    case kBoolOid:
      out.append(std::string_view(d.text == "t" ? "true" : "false"));
      return;
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid:
    case kFloat4Oid:
    case kFloat8Oid:
    case kNumericOid:
      if (IsJsonNumber(d.text)) {
        out.append(d.text);
        return;
      }
      break;
    case kJsonOid:
    case kJsonbOid:
      out.append(d.text);  // already JSON
      return;
  }
  AppendString(d.text, out);
}

void AppendTime(int64_t unix_us, fmt::memory_buffer& out) {
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

}  // namespace pgfanout::webhook
