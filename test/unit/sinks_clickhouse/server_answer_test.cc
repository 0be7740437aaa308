#include <gtest/gtest.h>

#include "src/sinks/clickhouse/clickhouse_http.h"
#include "src/sinks/clickhouse/server_errors.h"
#include "src/sinks/clickhouse/tsv_reader.h"

namespace pgfanout::clickhouse {
namespace {

TEST(ClickHouseServerErrors, DefinitionAndTypeErrorsStopTheSink) {
  // As ClickHouse 18.16 answers a value it cannot parse (HTTP 500, code in the body).
  auto e = ReadServerError(500,
                           "Code: 27, e.displayText() = DB::Exception: Cannot parse input: "
                           "expected , before: \"12.5\"}: (while read the value of key balance): "
                           "(at row 1)\n, e.what() = DB::Exception\n",
                           "");
  EXPECT_EQ(e.code, 27);
  EXPECT_EQ(e.column, "balance");
  EXPECT_EQ(e.message,
            "Cannot parse input: expected , before: …: (while read the value of key balance): "
            "(at row 1)")
      << "what the server could not parse is a tenant's data";
  EXPECT_EQ(KindOf(e), ErrorKind::kMismatch);
  EXPECT_EQ(KindOf(ReadServerError(404,
                                   "Code: 60, e.displayText() = DB::Exception: Table x.y "
                                   "doesn't exist., e.what() = DB::Exception",
                                   "")),
            ErrorKind::kMismatch);
  EXPECT_EQ(KindOf(ReadServerError(400,
                                   "Code: 16, e.displayText() = DB::Exception: No such column "
                                   "x in table t, e.what() = DB::Exception",
                                   "")),
            ErrorKind::kMismatch);
}

// The message reaches the logs, /status and the state dir: no value of a row may be in it.
TEST(ClickHouseServerErrors, TheMessageLeavesOutTheDataTheServerQuotes) {
  auto e = ReadServerError(500,
                           "Code: 6, e.displayText() = DB::Exception: Cannot parse string "
                           "'alice@example.com SSN 123-45-6789' as Int32: syntax error at begin "
                           "of string\nRow 1:\nColumn 0, name: id, parsed text: \"alice\"\n",
                           "");
  EXPECT_EQ(e.message, "Cannot parse string '…' as Int32: syntax error at begin of string");
  auto escaped = ReadServerError(500, "Code: 6. DB::Exception: Cannot read 'it\\'s secret'", "");
  EXPECT_EQ(escaped.message, "Cannot read '…'");
  const std::string long_text(2000, 'x');
  auto cut = ReadServerError(500, "Code: 1. DB::Exception: " + long_text, "");
  EXPECT_EQ(cut.message.size(), 300u + std::string("…").size());
}

TEST(ClickHouseServerErrors, TransientTroubleIsRetried) {
  EXPECT_EQ(KindOf(ReadServerError(
                500, "Code: 252, e.displayText() = DB::Exception: Too many parts", "")),
            ErrorKind::kSink);
  EXPECT_EQ(
      KindOf(ReadServerError(500, "Code: 241, e.displayText() = DB::Exception: Memory limit", "")),
      ErrorKind::kSink);
  EXPECT_EQ(KindOf(ReadServerError(503, "Service Unavailable", "")), ErrorKind::kConnection)
      << "a proxy in front of the server";
  EXPECT_EQ(KindOf(ReadServerError(401,
                                   "Code: 193, e.displayText() = DB::Exception: Wrong "
                                   "password for user writer, e.what() = DB::Exception",
                                   "")),
            ErrorKind::kConnection);
}

TEST(ClickHouseServerErrors, NewerServersNameTheCodeInAHeader) {
  auto e = ReadServerError(400, "Code: 62. DB::Exception: Syntax error (SYNTAX_ERROR)", "62");
  EXPECT_EQ(e.code, 62);
  EXPECT_EQ(KindOf(e), ErrorKind::kMismatch);
}

TEST(ClickHouseTsv, ReadsValuesExactlyAsTheServerHoldsThem) {
  auto rows = ParseTsv("1\t\\N\ta\\tb\\nc\\\\d\\'e\n2\t\\\\N\t\\x41\\0\n");
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows.value().size(), 2u);
  EXPECT_EQ(rows.value()[0], (TsvRow{"1", std::nullopt, "a\tb\nc\\d'e"}));
  EXPECT_EQ(rows.value()[1], (TsvRow{"2", "\\N", std::string("A\0", 2)}))
      << "an escaped backslash before N is text, not NULL";
  EXPECT_TRUE(ParseTsv("").value().empty());
  EXPECT_FALSE(ParseTsv("1\t2")) << "cut off";
}

TEST(ClickHouseHttpParts, UrlEncodingKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(UrlEncode("INSERT INTO `db`.`t` FORMAT JSONEachRow"),
            "INSERT%20INTO%20%60db%60.%60t%60%20FORMAT%20JSONEachRow");
  EXPECT_EQ(UrlEncode("a&b=c/ü"), "a%26b%3Dc%2F%C3%BC");
}

}  // namespace
}  // namespace pgfanout::clickhouse
