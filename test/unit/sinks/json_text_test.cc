#include "src/sinks/json_text.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

namespace pgfanout::json_text {
namespace {

ColumnSchema Column(uint32_t type_oid) { return ColumnSchema{.name = "c", .type_oid = type_oid}; }
Datum Text(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }

// The same text through both buffer kinds the sinks use.
std::string String(std::string_view s) {
  std::string out;
  AppendString(s, out);
  fmt::memory_buffer buffer;
  AppendString(s, buffer);
  EXPECT_EQ(out, fmt::to_string(buffer)) << "std::string and fmt::memory_buffer differ";
  return out;
}

std::string Value(uint32_t type_oid, const Datum& d) {
  std::string out;
  AppendValue(Column(type_oid), d, out);
  return out;
}

TEST(JsonText, StringsEscapeQuoteBackslashAndControlBytesOnly) {
  EXPECT_EQ(String(""), "\"\"");
  EXPECT_EQ(String("plain"), "\"plain\"");
  EXPECT_EQ(String("a \"q\" \\ \n\t\r \x01 \x1f ü \x7f"), R"("a \"q\" \\ \n\t\r \u0001 \u001f ü )"
                                                          "\x7f\"");
  EXPECT_EQ(String(std::string("nul\0byte \xff", 10)), "\"nul\\u0000byte \xff\"")
      << "bytes that are not UTF-8 pass unchanged (ClickHouse strings are bytes)";
  EXPECT_EQ(String("\"\"\\"), R"("\"\"\\")") << "escapes at both ends, none in between";
}

TEST(JsonText, ValuesKeepTheirJsonKind) {
  EXPECT_EQ(Value(16, Text("t")), "true");
  EXPECT_EQ(Value(16, Text("f")), "false");
  EXPECT_EQ(Value(20, Text("-9223372036854775808")), "-9223372036854775808");
  EXPECT_EQ(Value(1700, Text("12.50")), "12.50") << "numeric digits as Postgres printed them";
  EXPECT_EQ(Value(701, Text("1.5e+300")), "1.5e+300");
  EXPECT_EQ(Value(701, Text("NaN")), "\"NaN\"") << "JSON has no NaN";
  EXPECT_EQ(Value(700, Text("-Infinity")), "\"-Infinity\"");
  EXPECT_EQ(Value(1700, Text("")), "\"\"") << "an empty number is not a JSON number";
  EXPECT_EQ(Value(3802, Text(R"({"a": [1, 2]})")), R"({"a": [1, 2]})") << "jsonb embedded";
  EXPECT_EQ(Value(114, Text("[true]")), "[true]") << "json embedded";
  EXPECT_EQ(Value(25, Text("x\"y")), R"("x\"y")") << "text as a string";
  EXPECT_EQ(Value(1184, Text("2026-11-21 22:00:00+00")), "\"2026-11-21 22:00:00+00\"");
  EXPECT_EQ(Value(23, Datum{}), "null");
  EXPECT_EQ(Value(25, Datum{ValueKind::kUnchangedToast}), "null")
      << "no text to write: null, never an empty or stale string";
}

TEST(JsonText, TimesAreUtcWithMicroseconds) {
  auto time = [](int64_t unix_us) {
    std::string out;
    AppendTime(unix_us, out);
    return out;
  };
  EXPECT_EQ(time(0), "\"1970-01-01T00:00:00.000000Z\"");
  EXPECT_EQ(time(1'795'298'400'123'456), "\"2026-11-21T22:00:00.123456Z\"");
  EXPECT_EQ(time(-1), "\"1969-12-31T23:59:59.999999Z\"") << "before the epoch, rounded down";
}

TEST(JsonText, OpsHaveTheirNames) {
  EXPECT_STREQ(OpName(Op::kInsert), "insert");
  EXPECT_STREQ(OpName(Op::kUpdate), "update");
  EXPECT_STREQ(OpName(Op::kDelete), "delete");
  EXPECT_STREQ(OpName(Op::kTruncate), "truncate");
}

}  // namespace
}  // namespace pgfanout::json_text
