// The shared sink scenarios (sink_e2e_fixture.h) for the NATS JetStream sink, on one real
// nats-server: three sinks (tenant t1, tenants t2+t3, every tenant), each with its own
// stream; a consumer's rebuild of each stream must equal the source, and each stream must
// hold each event id once, also across kill -9, failpoints inside a batch and a restart of
// nats-server under load.

#include <fmt/format.h>
#include <signal.h>

#include "test/integration/nats/nats_e2e_fixture.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;

class NatsE2ETest : public NatsE2EFixture {
 protected:
  void SetUp() override {
    SinkE2ETest::SetUp();
    if (HasFatalFailure()) return;
    auto server = NatsServer::Start();
    ASSERT_NE(server, nullptr);
    servers_.push_back(std::move(server));
    sinks_ = {{.id = "nats-t1", .stream = "T1", .prefix = "pgf-t1", .tenants = {"t1"}},
              {.id = "nats-t23", .stream = "T23", .prefix = "pgf-t23", .tenants = {"t2", "t3"}},
              {.id = "nats-all", .stream = "ALL", .prefix = "pgf-all"}};
  }

  void ExpectEverySinkEqualsSource(std::chrono::seconds timeout = 90s) {
    ExpectSinkEqualsSource("nats-t1", {"t1"}, timeout);
    ExpectSinkEqualsSource("nats-t23", {"t2", "t3"}, timeout);
    ExpectSinkEqualsSource("nats-all", {}, timeout);
    for (const auto& s : sinks_) ExpectEachEventOnce(s.id);
  }

  // Starts the daemon with failpoints, runs a workload round and waits until they kill
  // it. `first`: the slot does not exist yet, so the round waits for it (a change made
  // before it would never be streamed); later the daemon may die before it is active.
  void RunUntilFailpointKills(const std::string& failpoints, int round, bool first) {
    WriteConfig();
    ASSERT_TRUE(daemon_.Start({"run", "--config", config_path_}, log_path_,
                              {{"PGFANOUT_FAILPOINTS", failpoints}}));
    if (first) WaitSlotActive(*pg_, daemon_, "pgfanout_e2e");
    Workload(round);
    auto exit = daemon_.Wait(60s);
    ASSERT_TRUE(exit.has_value()) << "the failpoint " << failpoints << " never fired";
    ASSERT_EQ(*exit, -SIGKILL) << "pgfanout exited otherwise under " << failpoints;
  }
};

TEST_F(NatsE2ETest, MixedWorkloadReachesEachStreamAsTheSourceHasIt) {
  StartDaemon();
  for (int round = 1; round <= 3; ++round) Workload(round);
  ExpectEverySinkEqualsSource();
  StopDaemon();

  // Each stream was created by its sink, with the documented settings.
  for (const auto& s : sinks_) {
    auto c = StreamInfo(s.stream)["config"];
    EXPECT_EQ(c["subjects"], nlohmann::json::array({s.prefix + ".>"})) << s.stream;
    EXPECT_EQ(c["storage"], "file");
    EXPECT_EQ(c["retention"], "limits");
    EXPECT_EQ(c["num_replicas"], 1);
    EXPECT_EQ(c["duplicate_window"], int64_t{3600} * 1'000'000'000) << "one hour";
    EXPECT_EQ(c["description"].get<std::string>().rfind("pgfanout sink " + s.id + ":", 0), 0u);
  }
}

TEST_F(NatsE2ETest, KillNineLoopStoresEachEventOnce) {
  StartDaemon();
  Workload(1);
  KillLoop(8, {{"nats-t1", {"t1"}}, {"nats-t23", {"t2", "t3"}}, {"nats-all", {}}});
  for (const auto& s : sinks_) ExpectEachEventOnce(s.id);
  StopDaemon();

  // What a crash makes pgfanout do, by hand: publish stored events again. The server
  // acknowledges them as duplicates and stores nothing.
  auto& all = State("nats-all");
  const uint64_t before = StreamInfo("ALL")["state"].value("messages", uint64_t{0});
  ASSERT_EQ(before, all.messages());
  ASSERT_GE(all.sample().size(), 20u);
  for (size_t i = 0; i < 20; ++i) {
    const auto& m = all.sample()[i];
    std::string error;
    auto ack = Reader().Publish(m.subject, {{"Nats-Msg-Id", m.msg_id}}, m.data, &error);
    ASSERT_TRUE(ack) << error;
    EXPECT_EQ((*ack)["seq"], m.seq) << ack->dump();
    EXPECT_EQ(ack->value("duplicate", false), true) << ack->dump();
  }
  EXPECT_EQ(StreamInfo("ALL")["state"].value("messages", uint64_t{0}), before);
}

TEST_F(NatsE2ETest, KilledMidBatchOrAfterItsAcksRepublishesNothingTwice) {
  // Half a batch out (some acknowledged, none of it under the cursor), then a whole batch
  // acknowledged but its cursor not stored: both come again after the restart.
  ASSERT_NO_FATAL_FAILURE(RunUntilFailpointKills("sink.mid_write=kill@4", 1, true));
  ASSERT_NO_FATAL_FAILURE(RunUntilFailpointKills("sink.after_write=kill@4", 2, false));
  StartDaemon();
  Workload(3);
  ExpectEverySinkEqualsSource();
  StopDaemon();
}

TEST_F(NatsE2ETest, NatsServerRestartMidLoadLosesAndDuplicatesNothing) {
  StartDaemon();
  Workload(1);
  StartBackground(50);
  std::this_thread::sleep_for(1500ms);
  // A crash of the server, not a clean shutdown: acks in flight are lost with it.
  ASSERT_TRUE(servers_[0]->Stop(SIGKILL));
  std::this_thread::sleep_for(2s);
  ASSERT_TRUE(servers_[0]->StartAgain());
  std::this_thread::sleep_for(1500ms);
  StopBackground();
  Workload(2);
  ExpectEverySinkEqualsSource(120s);
  EXPECT_NE(DaemonLog().find("[connection]; retry"), std::string::npos)
      << "the sinks never saw the server go away";
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing
