// What every pgfanout command does to itself first (src/daemon/hardening.h).
#include "src/daemon/hardening.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/stat.h>

namespace pgfanout {
namespace {

TEST(HardenProcessTest, FilesAreTheUsersOnlyAndNoCoreDumpIsLeft) {
  ASSERT_EQ(::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1) << "a test process starts dumpable";
  HardenProcess(/*allow_core_dumps=*/false);
  const mode_t mask = ::umask(077);
  EXPECT_EQ(mask, 077u);
  EXPECT_EQ(::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
  ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  HardenProcess(/*allow_core_dumps=*/true);
  EXPECT_EQ(::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1) << "--allow-core-dumps leaves it";
}

}  // namespace
}  // namespace pgfanout
