// A build without failpoints (a release build; this executable compiles failpoint.cc so):
// PGFANOUT_FAILPOINTS does nothing, and the command says it is ignored.
#include <gtest/gtest.h>

#include <cstdlib>

#include "src/core/failpoint.h"

#ifdef PGFANOUT_WITH_FAILPOINTS
#error "this test must be built without failpoints"
#endif

namespace pgfanout {
namespace {

TEST(FailpointsOffTest, TheEnvironmentCannotMakeAReleaseBuildFail) {
  ::setenv("PGFANOUT_FAILPOINTS", "sink.mid_write=error", 1);
  EXPECT_TRUE(FailpointHit("sink.mid_write").has_value());
  auto said = CheckFailpoints();
  ASSERT_TRUE(said.has_value());
  EXPECT_NE(said.value().find("this build has no failpoints"), std::string::npos) << said.value();
  ::unsetenv("PGFANOUT_FAILPOINTS");
  EXPECT_EQ(CheckFailpoints().value(), "");
}

}  // namespace
}  // namespace pgfanout
