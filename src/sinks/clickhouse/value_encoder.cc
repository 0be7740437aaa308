#include "src/sinks/clickhouse/value_encoder.h"

#include <fmt/format.h>

#include <charconv>

#include "src/sinks/json_text.h"

namespace pgfanout::clickhouse {
namespace {

using F = ChType::Family;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t year;
  int month, day;
};

Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return Civil{era * 400 + yoe + (m <= 2), m, d};
}

// Reads exactly `n` digits at `at` (advancing it).
bool Digits(std::string_view s, size_t& at, size_t n, int64_t& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[at + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  at += n;
  return true;
}

bool Expect(std::string_view s, size_t& at, char c) {
  if (at >= s.size() || s[at] != c) return false;
  ++at;
  return true;
}

// The text a String column keeps for a value of `source_oid`.
std::string StringText(const std::string& text, uint32_t source_oid) {
  if (source_oid == pg_oid::kTimestamptz) {
    // One spelling whatever the source's TimeZone: UTC, sortable.
    if (auto t = ParsePgTimestamp(text, true)) return t->Canonical();
  }
  return text;
}

// The value is a tenant's data: the message says how long it is, not what it says (it
// reaches the logs and /status).
Error Unfit(const std::string& text, const ChType& target, std::string_view why) {
  return MakeError(ErrorKind::kMismatch,
                   fmt::format("a value ({} bytes) does not fit ClickHouse type {}: {}",
                               text.size(), target.text, why));
}

}  // namespace

std::string UtcTime::Canonical() const {
  const int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
  const int64_t rest = seconds - days * 86400;
  const Civil c = CivilFromDays(days);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}", c.year, c.month, c.day,
                     rest / 3600, rest / 60 % 60, rest % 60, micros);
}

std::optional<UtcTime> ParsePgTimestamp(std::string_view s, bool with_offset) {
  size_t at = 0;
  // The year has at least four digits (10000-01-01 is valid Postgres).
  size_t year_digits = 0;
  while (at + year_digits < s.size() && s[at + year_digits] >= '0' && s[at + year_digits] <= '9') {
    ++year_digits;
  }
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (year_digits < 4 || year_digits > 6 || !Digits(s, at, year_digits, year)) return std::nullopt;
  if (!Expect(s, at, '-') || !Digits(s, at, 2, month) || !Expect(s, at, '-') ||
      !Digits(s, at, 2, day) || !Expect(s, at, ' ') || !Digits(s, at, 2, hour) ||
      !Expect(s, at, ':') || !Digits(s, at, 2, minute) || !Expect(s, at, ':') ||
      !Digits(s, at, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 24 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  int64_t micros = 0;
  if (at < s.size() && s[at] == '.') {
    ++at;
    size_t n = 0;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
      if (n < 6) micros = micros * 10 + (s[at] - '0');
      ++n;
      ++at;
    }
    if (n == 0 || n > 6) return std::nullopt;
    for (; n < 6; ++n) micros *= 10;
  }
  int64_t offset = 0;
  if (with_offset) {
    if (at >= s.size() || (s[at] != '+' && s[at] != '-')) return std::nullopt;
    const int sign = s[at++] == '-' ? -1 : 1;
    int64_t oh = 0, om = 0, os = 0;
    if (!Digits(s, at, 2, oh)) return std::nullopt;
    if (at < s.size() && s[at] == ':') {
      ++at;
      if (!Digits(s, at, 2, om)) return std::nullopt;
      if (at < s.size() && s[at] == ':') {
        ++at;
        if (!Digits(s, at, 2, os)) return std::nullopt;
      }
    }
    offset = sign * (oh * 3600 + om * 60 + os);
  }
  if (at != s.size()) return std::nullopt;  // " BC", or anything else
  UtcTime t;
  t.seconds = DaysFromCivil(year, static_cast<int>(month), static_cast<int>(day)) * 86400 +
              hour * 3600 + minute * 60 + second - offset;
  t.micros = static_cast<int32_t>(micros);
  const int64_t days = t.seconds >= 0 ? t.seconds / 86400 : -((-t.seconds + 86399) / 86400);
  t.year = CivilFromDays(days).year;
  return t;
}

bool IsJsonNumber(std::string_view s) {
  size_t at = 0;
  auto digits = [&] {
    size_t start = at;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') ++at;
    return at - start;
  };
  if (at < s.size() && s[at] == '-') ++at;
  const size_t start = at;
  const size_t n = digits();
  if (n == 0 || (n > 1 && s[start] == '0')) return false;
  if (at < s.size() && s[at] == '.') {
    ++at;
    if (digits() == 0) return false;
  }
  if (at < s.size() && (s[at] == 'e' || s[at] == 'E')) {
    ++at;
    if (at < s.size() && (s[at] == '+' || s[at] == '-')) ++at;
    if (digits() == 0) return false;
  }
  return at == s.size();
}

Result<ChValue> ConvertValue(const Datum& d, uint32_t source_oid, const ChType& target) {
  using Form = ChValue::Form;
  if (d.kind != ValueKind::kText) {
    if (!target.nullable) {
      return MakeError(
          ErrorKind::kMismatch,
          fmt::format("NULL does not fit ClickHouse type {} (not Nullable)", target.text));
    }
    return ChValue{};
  }
  const std::string& text = d.text;
  switch (target.family) {
    case F::kString:
    case F::kOther:
      return ChValue{Form::kString, StringText(text, source_oid)};
    case F::kInt:
    case F::kUInt:
      if (source_oid == pg_oid::kBool) return ChValue{Form::kNumber, text == "t" ? "1" : "0"};
      if (!IsJsonNumber(text) || text.find_first_of(".eE") != std::string::npos) {
        return Unfit(text, target, "not an integer");
      }
      return ChValue{Form::kNumber, text};
    case F::kFloat:
      // ClickHouse reads these spellings, quoted, as the IEEE special values.
      if (text == "NaN") return ChValue{Form::kString, "nan"};
      if (text == "Infinity") return ChValue{Form::kString, "inf"};
      if (text == "-Infinity") return ChValue{Form::kString, "-inf"};
      if (!IsJsonNumber(text)) return Unfit(text, target, "not a number");
      return ChValue{Form::kNumber, text};
    case F::kDecimal:
      if (text == "NaN" || text == "Infinity" || text == "-Infinity") {
        return Unfit(text, target, "a Decimal has no NaN or Infinity");
      }
      if (!IsJsonNumber(text)) return Unfit(text, target, "not a number");
      return ChValue{Form::kNumber, text};
    case F::kBool:
      if (text == "t" || text == "true") return ChValue{Form::kTrue, ""};
      if (text == "f" || text == "false") return ChValue{Form::kFalse, ""};
      return Unfit(text, target, "not a boolean");
    case F::kDate: {
      // Date silently stores 0000-00-00 for what it cannot hold: refuse instead.
      int64_t year = 0;
      size_t at = 0;
      if (text.size() != 10 || !Digits(text, at, 4, year) || text[4] != '-' || text[7] != '-') {
        return Unfit(text, target, "not a date from 1970 to 2105");
      }
      if (year < 1970 || year > 2105) return Unfit(text, target, "outside 1970 to 2105");
      return ChValue{Form::kString, text};
    }
    case F::kDateTime:
    case F::kDateTime64: {
      const bool tz = source_oid == pg_oid::kTimestamptz;
      if (!tz && source_oid != pg_oid::kTimestamp) return ChValue{Form::kString, text};
      auto t = ParsePgTimestamp(text, tz);
      if (!t) return Unfit(text, target, "not a finite time after 1 AD");
      if (target.family == F::kDateTime) {
        // Seconds since the epoch: the same instant whatever the column's time zone.
        if (t->seconds < 0 || t->seconds > int64_t{0xFFFFFFFF}) {
          return Unfit(text, target, "outside 1970 to 2106");
        }
        return ChValue{Form::kString, std::to_string(t->seconds)};
      }
      if (t->year < 1900 || t->year > 2299) return Unfit(text, target, "outside 1900 to 2299");
      return ChValue{Form::kString, t->Canonical()};
    }
    case F::kUnsupported:
      return Unfit(text, target, "the sink writes no values into this type");
  }
  return Unfit(text, target, "unknown type");
}

void AppendJsonValue(const ChValue& v, std::string& out) {
  switch (v.form) {
    case ChValue::Form::kNull:
      out.append("null");
      return;
    case ChValue::Form::kNumber:
      out.append(v.text);
      return;
    case ChValue::Form::kString:
      json_text::AppendString(v.text, out);
      return;
    case ChValue::Form::kTrue:
      out.append("true");
      return;
    case ChValue::Form::kFalse:
      out.append("false");
      return;
  }
}

std::string QuoteString(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\\' || c == '\'') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string QuoteName(std::string_view name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '\\' || c == '`') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('`');
  return out;
}

std::string SqlLiteral(const ChValue& v, const ChType& target) {
  switch (v.form) {
    case ChValue::Form::kNull:
      return "NULL";
    case ChValue::Form::kTrue:
      return "true";
    case ChValue::Form::kFalse:
      return "false";
    default:
      return fmt::format("CAST({} AS {})", QuoteString(v.text), target.text);
  }
}

}  // namespace pgfanout::clickhouse
