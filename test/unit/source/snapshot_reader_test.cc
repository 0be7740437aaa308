#include "src/source/snapshot_reader.h"

#include <gtest/gtest.h>

namespace pgfanout {
namespace {

Datum T(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }

TEST(ParseCopyLineTest, SplitsOnTabsAndUnescapes) {
  std::vector<Datum> row;
  ASSERT_TRUE(ParseCopyLine("1\\tab\\ta\\\\b\t\\N\tline\\nbreak\\r\t", 4, row));
  ASSERT_EQ(row.size(), 4u);
  EXPECT_EQ(row[0], T("1\tab\ta\\b"));
  EXPECT_EQ(row[1].kind, ValueKind::kNull);
  EXPECT_EQ(row[2], T("line\nbreak\r"));
  EXPECT_EQ(row[3], T("")) << "an empty field is an empty string, not NULL";
}

TEST(ParseCopyLineTest, EscapedNIsNotNullInsideAValue) {
  std::vector<Datum> row;
  ASSERT_TRUE(ParseCopyLine("\\\\N\tx\\N", 2, row));
  EXPECT_EQ(row[0], T("\\N"));
  EXPECT_EQ(row[1], T("xN"));
}

TEST(ParseCopyLineTest, RejectsWrongFieldCountsAndATrailingBackslash) {
  std::vector<Datum> row;
  EXPECT_FALSE(ParseCopyLine("a\tb", 3, row));
  EXPECT_FALSE(ParseCopyLine("a\tb\tc", 2, row));
  EXPECT_FALSE(ParseCopyLine("a\\", 1, row));
}

}  // namespace
}  // namespace pgfanout
