#include "src/core/predicate.h"

#include <gtest/gtest.h>

namespace pgfanout {
namespace {

// id int8 (key), tenant_id text (key), status text, score numeric, ok bool, code char(4),
// uid uuid, at timestamptz, ratio float8
const std::vector<ColumnSchema> kColumns = {
    {"id", 20, -1, true},       {"tenant_id", 25, -1, true}, {"status", 25, -1, false},
    {"score", 1700, -1, false}, {"ok", 16, -1, false},       {"code", 1042, 8, false},
    {"uid", 2950, -1, false},   {"at", 1184, -1, false},     {"ratio", 701, -1, false},
};

Datum T(std::string s) { return Datum{ValueKind::kText, std::move(s)}; }
Datum Null() { return Datum{}; }

std::vector<Datum> Row(std::string status, std::string score, bool ok = true) {
  return {T("1"),
          T("t1"),
          T(std::move(status)),
          T(std::move(score)),
          T(ok ? "t" : "f"),
          T("ab  "),
          T("6f1c2a4e-0000-4000-8000-00000000000a"),
          T("2026-01-01 00:00:00+00"),
          T("0.30000000000000004")};
}

BoundPredicate Bound(std::string_view text) {
  auto p = Predicate::Parse(text);
  EXPECT_TRUE(p.has_value()) << text << ": " << (p ? "" : p.error().message);
  auto b = BoundPredicate::Bind(p.value(), kColumns);
  EXPECT_TRUE(b.has_value()) << text << ": " << (b ? "" : b.error().message);
  return b.value();
}

std::optional<bool> Eval(std::string_view text, const std::vector<Datum>& row) {
  return Bound(text).Matches(row);
}

TEST(PredicateTest, ComparesByTheColumnsType) {
  auto row = Row("active", "10.50");
  EXPECT_EQ(Eval("status = 'active'", row), true);
  EXPECT_EQ(Eval("status <> 'active'", row), false);
  EXPECT_EQ(Eval("status != 'archived'", row), true);
  // Numbers numerically, not as text ("10.50" < "9" as text).
  EXPECT_EQ(Eval("score > 9", row), true);
  EXPECT_EQ(Eval("score = 10.5", row), true);
  EXPECT_EQ(Eval("score = 1.05e1", row), true);
  EXPECT_EQ(Eval("score >= 10.500001", row), false);
  EXPECT_EQ(Eval("score > -11", row), true);
  EXPECT_EQ(Eval("id = 1", row), true);
  EXPECT_EQ(Eval("ratio > 0.3", row), true);
  // Text byte by byte (COLLATE "C"): 'B' < 'a'.
  EXPECT_EQ(Eval("status > 'B'", row), true);
  EXPECT_EQ(Eval("status < 'activf'", row), true);
  // char(n) ignores trailing blanks.
  EXPECT_EQ(Eval("code = 'ab'", row), true);
  EXPECT_EQ(Eval("uid = '6F1C2A4E-0000-4000-8000-00000000000A'", row), true);
  EXPECT_EQ(Eval("ok = TRUE", row), true);
  EXPECT_EQ(Eval("ok = false", Row("a", "1", false)), true);
}

TEST(PredicateTest, NumbersCompareExactlyIncludingSpecialValues) {
  auto with = [](std::string score) { return Row("x", std::move(score)); };
  EXPECT_EQ(Eval("score > 99999999999999999999", with("100000000000000000000")), true);
  EXPECT_EQ(Eval("score < 0.1", with("0.09999999999999999999")), true);
  EXPECT_EQ(Eval("score = 0", with("-0.000")), true);
  EXPECT_EQ(Eval("score > -1", with("0")), true);
  EXPECT_EQ(Eval("score < -1.5", with("-2")), true);
  EXPECT_EQ(Eval("score > 1e30", with("NaN")), true);  // NaN sorts above every number
  EXPECT_EQ(Eval("score > 1e30", with("Infinity")), true);
  EXPECT_EQ(Eval("score < -1e30", with("-Infinity")), true);
  EXPECT_EQ(Eval("ratio = 1e20", Row("x", "1") /*ratio 0.3*/), false);
}

TEST(PredicateTest, FollowsSqlThreeValuedLogic) {
  auto row = Row("active", "1");
  row[2] = Null();  // status NULL
  EXPECT_EQ(Eval("status = 'x'", row), false);
  EXPECT_EQ(Eval("NOT status = 'x'", row), false);  // NOT unknown is unknown
  EXPECT_EQ(Eval("status = 'x' OR score = 1", row), true);
  EXPECT_EQ(Eval("status = 'x' AND score = 1", row), false);
  EXPECT_EQ(Eval("NOT (status = 'x' AND score = 2)", row), true);  // unknown AND false
  EXPECT_EQ(Eval("status IS NULL", row), true);
  EXPECT_EQ(Eval("status IS NOT NULL", row), false);
  EXPECT_EQ(Eval("status NOT IN ('a', 'b')", row), false);
  EXPECT_EQ(Eval("score IN (3, 1.0)", row), true);
  EXPECT_EQ(Eval("score NOT IN (3, 1.0)", row), false);
}

TEST(PredicateTest, OrAndNotBindAsInSql) {
  auto row = Row("a", "1");
  // AND binds tighter than OR.
  EXPECT_EQ(Eval("status = 'a' OR status = 'b' AND score = 2", row), true);
  EXPECT_EQ(Eval("(status = 'a' OR status = 'b') AND score = 2", row), false);
  EXPECT_EQ(Eval("NOT status = 'b' AND score = 1", row), true);
}

TEST(PredicateTest, AnUnsentValueMakesTheAnswerUnknown) {
  auto row = Row("active", "1");
  row[2] = Datum{ValueKind::kUnchangedToast, {}};
  EXPECT_EQ(Eval("status = 'active'", row), std::nullopt);
  EXPECT_EQ(Eval("score = 1", row), true);  // reads no unsent column
  // A key-only old row has only its key columns.
  std::vector<Datum> key_only = {T("1"), T("t1"), Null(), Null(), Null(),
                                 Null(), Null(),  Null(), Null()};
  EXPECT_EQ(Bound("status IS NULL").Matches(key_only, /*key_only=*/true), std::nullopt);
  EXPECT_EQ(Bound("tenant_id = 't1'").Matches(key_only, /*key_only=*/true), true);
}

TEST(PredicateTest, RendersSqlWithQuotedNamesAndLiterals) {
  EXPECT_EQ(Bound("status = 'it''s' AND NOT score >= 3").Sql(),
            "((\"status\" = E'it''s') AND (NOT (\"score\" >= 3)))");
  EXPECT_EQ(Bound("status < 'b\\' OR ok = true OR uid IS NOT NULL").Sql(),
            "((\"status\" COLLATE \"C\" < E'b\\\\') OR (\"ok\" = true) OR (\"uid\" IS NOT NULL))");
  EXPECT_EQ(Bound("code NOT IN ('a', 'b')").Sql(), "(\"code\" NOT IN (E'a', E'b'))");
  auto p = Predicate::Parse("\"Odd\"\"Name\" = 1");
  ASSERT_TRUE(p.has_value());
  auto b = BoundPredicate::Bind(p.value(), {{"Odd\"Name", 23, -1, false}});
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b.value().Sql(), "(\"Odd\"\"Name\" = 1)");
}

TEST(PredicateTest, RefusesWhatItCannotEvaluateExactly) {
  struct Case {
    const char* text;
    const char* error;
  };
  for (const Case& c : std::vector<Case>{
           {"", "expected a column name"},
           {"status = NULL", "use IS NULL"},
           {"status == 'a'", "single ="},
           {"status = 'a' AND", "expected a column name"},
           {"status = 'a' status", "expected AND, OR or the end"},
           {"(status = 'a'", "expected ')'"},
           {"status = 'a", "not closed"},
           {"status IN ()", "expected a literal"},
           {"status = 'a'; DROP TABLE t", "unexpected character ';'"},
           {"status = upper('a')", "expected a literal"},
           {"and = 1", "double-quote"},
           {"score = 12abc", "runs into a name"},
       }) {
    auto p = Predicate::Parse(c.text);
    ASSERT_FALSE(p.has_value()) << c.text;
    EXPECT_NE(p.error().message.find(c.error), std::string::npos)
        << c.text << ": " << p.error().message;
  }
  for (const Case& c : std::vector<Case>{
           {"missing = 1", "no column missing"},
           {"at > '2026-01-01'", "column at has a type (oid 1184)"},
           {"score = '1'", "compare it with a number"},
           {"status = 1", "compare it with 'quoted text'"},
           {"ok = 't'", "TRUE or FALSE"},
           {"ok < true", "only =, <> and IN"},
           {"uid = 'nope'", "is a uuid"},
           {"Status = 'a'", "no column status"},  // folded, then missing? no: exists
       }) {
    auto p = Predicate::Parse(c.text);
    ASSERT_TRUE(p.has_value()) << c.text;
    auto b = BoundPredicate::Bind(p.value(), kColumns);
    if (std::string_view(c.text) == "Status = 'a'") {
      EXPECT_TRUE(b.has_value()) << "unquoted names fold to lower case";
      continue;
    }
    ASSERT_FALSE(b.has_value()) << c.text;
    EXPECT_NE(b.error().message.find(c.error), std::string::npos)
        << c.text << ": " << b.error().message;
  }
  std::string deep(200, '(');
  EXPECT_FALSE(Predicate::Parse(deep + "id = 1" + std::string(200, ')')).has_value());
}

TEST(PredicateTest, ListsTheColumnsItReads) {
  auto p = Predicate::Parse("status = 'a' OR (score > 1 AND status <> 'b') OR \"Odd\" IS NULL");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p.value().columns(), (std::vector<std::string>{"status", "score", "Odd"}));
}

}  // namespace
}  // namespace pgfanout
