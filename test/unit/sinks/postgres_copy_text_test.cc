#include <gtest/gtest.h>

#include <string>

#include "src/sinks/postgres/copy_text.h"

namespace pgfanout {
namespace {

std::string Escaped(std::string_view text) {
  std::string out;
  AppendCopyEscaped(text, out);
  return out;
}

TEST(PostgresCopyText, EscapesTheFourCharactersCopyReadsSpecially) {
  EXPECT_EQ(Escaped("a\\b"), "a\\\\b");
  EXPECT_EQ(Escaped("line1\nline2"), "line1\\nline2");
  EXPECT_EQ(Escaped("cr\rhere"), "cr\\rhere");
  EXPECT_EQ(Escaped("col\tcol"), "col\\tcol");
  EXPECT_EQ(Escaped("\\x00ff"), "\\\\x00ff") << "a bytea hex value keeps its backslash";
  EXPECT_EQ(Escaped("\\N"), "\\\\N") << "the text \\N must not read back as NULL";
  EXPECT_EQ(Escaped("\\."), "\\\\.") << "nor end the data";
}

TEST(PostgresCopyText, LeavesEverythingElseAlone) {
  const std::string text = "O'Brien \"quoted\" {1,2} naïve 日本 😀 , ; |";
  EXPECT_EQ(Escaped(text), text);
  EXPECT_EQ(Escaped(""), "");
}

TEST(PostgresCopyText, WritesTabSeparatedRowsWithNullsAndTypedFields) {
  std::string out;
  CopyTextWriter w(out);
  w.Value("a\tb");
  w.Null();
  w.Int(-42);
  w.Bool(true);
  w.EndRow();
  w.Value("");
  w.Bool(false);
  w.EndRow();
  EXPECT_EQ(out, "a\\tb\t\\N\t-42\tt\n\tf\n");
}

TEST(PostgresCopyText, CommitTimesAreUtcTimestampLiterals) {
  EXPECT_EQ(FormatTimestampUtc(1'700'000'000'123'456), "2023-11-14 22:13:20.123456+00");
  EXPECT_EQ(FormatTimestampUtc(0), "1970-01-01 00:00:00.000000+00");
  EXPECT_EQ(FormatTimestampUtc(-1), "1969-12-31 23:59:59.999999+00");
}

}  // namespace
}  // namespace pgfanout
