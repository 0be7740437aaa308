// POST /resnapshot's query: what it takes, what it refuses (naming the key), and the CLI's
// query string read back the same.
#include <gtest/gtest.h>

#include "src/daemon/resnapshot.h"

namespace pgfanout {
namespace {

TEST(ResnapshotQueryTest, AWhereLimitsTheCopyAndKeepsTheRowsOutsideIt) {
  auto q = ParseResnapshotQuery("sink=pg&table=public.users&where=plan%20%3D%20%27pro%27");
  ASSERT_TRUE(q.has_value()) << q.error().message;
  EXPECT_EQ(q.value().where, "plan = 'pro'");
  EXPECT_FALSE(q.value().replace) << "a copy limited by where removes nothing";
  auto plain = ParseResnapshotQuery("sink=pg");
  ASSERT_TRUE(plain.has_value());
  EXPECT_TRUE(plain.value().replace);
  EXPECT_FALSE(plain.value().where.has_value());
}

TEST(ResnapshotQueryTest, RefusesABadWhereAndAReplaceWithIt) {
  auto bad = ParseResnapshotQuery("sink=pg&where=plan%20%3D%20upper(%27x%27)");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("/resnapshot: where: at 8"), std::string::npos)
      << bad.error().message;
  auto both = ParseResnapshotQuery("sink=pg&replace=true&where=a%20%3D%201");
  ASSERT_FALSE(both.has_value());
  EXPECT_NE(both.error().message.find("/resnapshot: replace: expected false with where"),
            std::string::npos)
      << both.error().message;
  auto other = ParseResnapshotQuery("sink=pg&filter=x");
  ASSERT_FALSE(other.has_value());
  EXPECT_NE(other.error().message.find("one of sink, table, replace, where"), std::string::npos);
}

TEST(ResnapshotQueryTest, TheCommandsQueryStringReadsBackTheSame) {
  ResnapshotQuery ask{.sink = "pg t/1",
                      .table = "public.users",
                      .replace = false,
                      .where = "name <> 'it''s & more' OR id IN (1, 2)"};
  auto back = ParseResnapshotQuery(ResnapshotQueryString(ask));
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back.value().sink, ask.sink);
  EXPECT_EQ(back.value().table, ask.table);
  EXPECT_EQ(back.value().where, ask.where);
  EXPECT_FALSE(back.value().replace);
}

}  // namespace
}  // namespace pgfanout
