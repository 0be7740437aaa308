// Tables pgfanout must refuse before it touches the publication: publishing them would
// break the primary's writes or silently drop their changes.
#include <gtest/gtest.h>

#include "test/integration/tailer_fixture.h"

namespace pgfanout::testing {
namespace {

class TableChecksTest : public TailerTest {
 protected:
  // Points the config's first tracked table (public.users) at `table` instead.
  void TrackInsteadOfUsers(const std::string& table) {
    EditConfig("name: public.users", "name: public." + table);
  }

  // Expects a refusal before anything was published; returns the log.
  std::string RunExpectingRefusal() {
    std::string log = TailerTest::RunExpectingRefusal();
    EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM pg_publication"), "0")
        << "nothing may be published before the checks pass";
    return log;
  }
};

TEST_F(TableChecksTest, RefusesATableWithoutReplicaIdentityAndSaysHowToFixIt) {
  pg_->Exec("CREATE TABLE events_nopk (tenant_id text, payload text)");
  TrackInsteadOfUsers("events_nopk");
  std::string log = RunExpectingRefusal();
  EXPECT_NE(log.find("ALTER TABLE \"public\".\"events_nopk\" REPLICA IDENTITY FULL"),
            std::string::npos)
      << log;
  // Once fixed as the message says, the same config runs.
  pg_->Exec("ALTER TABLE events_nopk REPLICA IDENTITY FULL");
  StartDaemon();
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing
