// The NATS sink on a 3-node JetStream cluster on loopback, its stream replicated 3 times:
// the node the sink's url names is stopped under load (the sink fails over to the next
// server of its list, and the stream may elect a new leader) and started again; a
// consumer's rebuild still equals the source and each event id is stored once.

#include <fmt/format.h>
#include <signal.h>

#include "test/integration/nats/nats_e2e_fixture.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;

class NatsClusterE2ETest : public NatsE2EFixture {
 protected:
  void SetUp() override {
    SinkE2ETest::SetUp();
    if (HasFatalFailure()) return;
    servers_ = NatsServer::StartCluster(3);
    ASSERT_EQ(servers_.size(), 3u);
    replicas_ = 3;
    sinks_ = {{.id = "nats-all", .stream = "ALL", .prefix = "pgf-all"},
              {.id = "nats-t23", .stream = "T23", .prefix = "pgf-t23", .tenants = {"t2", "t3"}}};
  }
};

TEST_F(NatsClusterE2ETest, ReplicatedStreamSurvivesANodeStoppedMidLoad) {
  StartDaemon();
  Workload(1);
  StartBackground(50);
  std::this_thread::sleep_for(1500ms);
  ASSERT_TRUE(servers_[0]->Stop(SIGKILL));
  Workload(2);  // with one node of three down: the streams keep their quorum
  std::this_thread::sleep_for(2s);
  ASSERT_TRUE(servers_[0]->StartAgain());
  std::this_thread::sleep_for(1s);
  StopBackground();
  Workload(3);
  ExpectSinkEqualsSource("nats-all", {}, 120s);
  ExpectSinkEqualsSource("nats-t23", {"t2", "t3"}, 120s);
  ExpectEachEventOnce("nats-all");
  ExpectEachEventOnce("nats-t23");
  StopDaemon();

  auto info = StreamInfo("ALL");
  EXPECT_EQ(info["config"]["num_replicas"], 3);
  EXPECT_EQ(info["config"]["duplicate_window"], int64_t{3600} * 1'000'000'000);
  ASSERT_TRUE(info.contains("cluster")) << info.dump();
  EXPECT_TRUE(info["cluster"].contains("leader")) << info.dump();
  EXPECT_EQ(info["cluster"]["replicas"].size(), 2u) << info.dump();  // besides the leader
}

}  // namespace
}  // namespace pgfanout::testing
