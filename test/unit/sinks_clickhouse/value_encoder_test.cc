#include "src/sinks/clickhouse/value_encoder.h"

#include <gtest/gtest.h>

namespace pgfanout::clickhouse {
namespace {

Datum T(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }

// The JSONEachRow text of `text` from a column of `oid` into a column of ClickHouse `type`.
std::string Json(const Datum& d, uint32_t oid, const std::string& type) {
  auto v = ConvertValue(d, oid, ParseChType(type));
  if (!v) return "ERROR: " + v.error().message;
  std::string out;
  AppendJsonValue(v.value(), out);
  return out;
}

TEST(ClickHouseValueEncoding, NullIsNullOnlyWhereTheColumnIsNullable) {
  EXPECT_EQ(Json(Datum{}, 25, "Nullable(String)"), "null");
  EXPECT_EQ(Json(Datum{ValueKind::kUnchangedToast}, 25, "Nullable(String)"), "null");
  EXPECT_EQ(Json(Datum{}, 25, "String"),
            "ERROR: NULL does not fit ClickHouse type String (not Nullable)");
}

TEST(ClickHouseValueEncoding, NumbersGoUnquotedAndOnlyWhenTheyAreNumbers) {
  EXPECT_EQ(Json(T("-2147483648"), 23, "Int32"), "-2147483648");
  EXPECT_EQ(Json(T("9223372036854775807"), 20, "Nullable(Int64)"), "9223372036854775807")
      << "no detour through a double";
  EXPECT_EQ(Json(T("123.45"), 1700, "Decimal(12, 2)"), "123.45");
  EXPECT_EQ(Json(T("1e+308"), 701, "Float64"), "1e+308");
  EXPECT_EQ(Json(T("-0"), 701, "Float64"), "-0");
  EXPECT_EQ(Json(T("t"), 16, "UInt8"), "1");
  EXPECT_EQ(Json(T("f"), 16, "Nullable(UInt8)"), "0");
  // A value that is not a number never reaches the JSON unquoted.
  EXPECT_EQ(Json(T("1,\"x\":2"), 25, "Int32").rfind("ERROR: a value (7 bytes) does not fit", 0),
            0u);
  EXPECT_EQ(Json(T("1.5"), 701, "Int64").rfind("ERROR:", 0), 0u);
}

TEST(ClickHouseValueEncoding, FloatSpecialsAreQuotedAsClickHouseSpellsThem) {
  EXPECT_EQ(Json(T("NaN"), 701, "Float64"), "\"nan\"");
  EXPECT_EQ(Json(T("Infinity"), 700, "Float32"), "\"inf\"");
  EXPECT_EQ(Json(T("-Infinity"), 701, "Nullable(Float64)"), "\"-inf\"");
  EXPECT_EQ(Json(T("NaN"), 1700, "Decimal(12, 2)"),
            "ERROR: a value (3 bytes) does not fit ClickHouse type Decimal(12, 2): a Decimal has no NaN "
            "or Infinity");
}

TEST(ClickHouseValueEncoding, TimestamptzBecomesUtcWhateverTheSourceOffset) {
  auto t = ParsePgTimestamp("2026-01-02 03:04:05.5+05:30", true);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Canonical(), "2026-01-01 21:34:05.500000");
  EXPECT_EQ(ParsePgTimestamp("2026-01-01 00:00:00+00", true)->seconds, 1767225600);
  EXPECT_EQ(ParsePgTimestamp("2025-12-31 16:00:00-08", true)->seconds, 1767225600);
  EXPECT_EQ(ParsePgTimestamp("1969-12-31 23:59:59.999999+00", true)->Canonical(),
            "1969-12-31 23:59:59.999999");
  EXPECT_EQ(ParsePgTimestamp("1900-01-01 00:00:00+00:53:28", true)->Canonical(),
            "1899-12-31 23:06:32.000000")
      << "an LMT offset with seconds";
  EXPECT_FALSE(ParsePgTimestamp("infinity", true));
  EXPECT_FALSE(ParsePgTimestamp("0044-03-15 12:00:00+00 BC", true));
  EXPECT_FALSE(ParsePgTimestamp("2026-01-01 00:00:00", true)) << "timestamptz needs its offset";
  EXPECT_EQ(ParsePgTimestamp("2026-01-01 00:00:00.123", false)->Canonical(),
            "2026-01-01 00:00:00.123000");
}

TEST(ClickHouseValueEncoding, TimesFitEachClickHouseTimeTypeOrAreRefused) {
  // String columns (servers without DateTime64) hold the UTC text, which sorts as time.
  EXPECT_EQ(Json(T("2026-01-02 03:04:05.123456+01"), 1184, "Nullable(String)"),
            "\"2026-01-02 02:04:05.123456\"");
  EXPECT_EQ(Json(T("infinity"), 1184, "Nullable(String)"), "\"infinity\"") << "kept as sent";
  EXPECT_EQ(Json(T("2026-01-02 03:04:05.123456+01"), 1184, "Nullable(DateTime64(6, 'UTC'))"),
            "\"2026-01-02 02:04:05.123456\"");
  EXPECT_EQ(Json(T("2026-01-01 01:00:00+01"), 1184, "DateTime('Asia/Tokyo')"), "\"1767225600\"")
      << "seconds since the epoch mean one instant in any zone";
  EXPECT_EQ(Json(T("infinity"), 1184, "DateTime64(6, 'UTC')").rfind("ERROR:", 0), 0u);
  EXPECT_EQ(Json(T("1960-01-01 00:00:00+00"), 1184, "DateTime").rfind("ERROR:", 0), 0u);
  EXPECT_EQ(Json(T("2026-03-01"), 1082, "Date"), "\"2026-03-01\"");
  EXPECT_EQ(Json(T("1969-12-31"), 1082, "Date"),
            "ERROR: a value (10 bytes) does not fit ClickHouse type Date: outside 1970 to 2105")
      << "Date would store 0000-00-00 silently";
}

TEST(ClickHouseValueEncoding, JsonNumbersAreRecognisedStrictly) {
  for (const char* yes : {"0", "-0", "12", "1.5", "-1.25e+10", "3E-7"}) {
    EXPECT_TRUE(IsJsonNumber(yes)) << yes;
  }
  for (const char* no : {"", "-", "01", "1.", ".5", "1e", "NaN", "1 ", "0x10", "+1"}) {
    EXPECT_FALSE(IsJsonNumber(no)) << no;
  }
}

TEST(ClickHouseValueEncoding, SqlLiteralsAndNamesAreQuoted) {
  EXPECT_EQ(QuoteString("it's a \\ test"), "'it\\'s a \\\\ test'");
  EXPECT_EQ(QuoteName("we`ird"), "`we\\`ird`");
  auto v = ConvertValue(T("7"), 23, ParseChType("Int32"));
  ASSERT_TRUE(v);
  EXPECT_EQ(SqlLiteral(v.value(), ParseChType("Int32")), "CAST('7' AS Int32)");
}

}  // namespace
}  // namespace pgfanout::clickhouse
