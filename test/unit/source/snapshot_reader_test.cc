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

TEST(TableCopyStateTest, RoundTripsSplitsAndProgressWithAnyText) {
  TableCopyState s;
  s.splits = {{"7", "100"}, {"9", "a:b\t\n\"'"}};
  s.last = {KeyValues{"7", "42"}, std::nullopt, KeyValues{"9", ""}};
  s.done = {true, false, false};
  auto back = TableCopyState::Decode(s.Encode());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->splits, s.splits);
  EXPECT_EQ(back->last, s.last);
  EXPECT_EQ(back->done, s.done);
  EXPECT_TRUE(back->Planned());
}

TEST(TableCopyStateTest, RejectsDamagedText) {
  TableCopyState s;
  s.splits = {{"5"}};
  s.last = {KeyValues{"1"}, std::nullopt};
  s.done = {false, false};
  std::string text = s.Encode();
  EXPECT_FALSE(TableCopyState::Decode(text.substr(0, text.size() - 1)).has_value());
  EXPECT_FALSE(TableCopyState::Decode(text + "x").has_value());
  EXPECT_FALSE(TableCopyState::Decode("").has_value());
}

TEST(FieldTest, LengthPrefixedFieldsSurviveSeparators) {
  std::string out;
  AppendField("a:b", out);
  AppendField("", out);
  std::string_view in(out);
  EXPECT_EQ(TakeField(in), "a:b");
  EXPECT_EQ(TakeField(in), "");
  EXPECT_TRUE(in.empty());
  std::string_view bad("5:abc");
  EXPECT_EQ(TakeField(bad), std::nullopt);
}

}  // namespace
}  // namespace pgfanout
