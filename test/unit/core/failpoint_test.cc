// PGFANOUT_FAILPOINTS is read strictly: a typo must stop a fault test, not let it run
// without the fault it asked for.
#include "src/core/failpoint.h"

#include <gtest/gtest.h>

namespace pgfanout {
namespace {

TEST(FailpointsTest, ParsesKnownPointsActionsAndCounts) {
  auto parsed = ParseFailpoints("log.after_commit=kill@3,sink.mid_write=error");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  ASSERT_EQ(parsed.value().size(), 2u);
  EXPECT_EQ(parsed.value()[0].name, "log.after_commit");
  EXPECT_EQ(parsed.value()[0].action, "kill");
  EXPECT_EQ(parsed.value()[0].fire_on, 3);
  EXPECT_EQ(parsed.value()[1].fire_on, 1);
}

TEST(FailpointsTest, RefusesUnknownPointsActionsAndCounts) {
  for (const char* bad : {"log.after_commit=kil", "log.aftercommit=kill", "sink.mid_write",
                          "sink.mid_write=kill@0", "sink.mid_write=kill@x",
                          "sink.mid_write=error,backfill.after_chunk=explode"}) {
    auto parsed = ParseFailpoints(bad);
    ASSERT_FALSE(parsed.has_value()) << bad;
    EXPECT_EQ(parsed.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_NE(parsed.error().message.find("PGFANOUT_FAILPOINTS: '"), std::string::npos)
        << parsed.error().message;
  }
}

}  // namespace
}  // namespace pgfanout
