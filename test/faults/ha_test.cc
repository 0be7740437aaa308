// Failovers of the source (issue 21): a real Patroni cluster, etcd and two PostgreSQL 15
// nodes in synchronous_mode, whose permanent logical slot pgfanout adopts (Patroni made it
// at bootstrap, before the publication existed). pgfanout and the workload reach the
// cluster through one multi-host DSN (target_session_attrs=read-write), so each follows
// the primary by itself. The checker then compares the workload's history with every
// sink: nothing lost, nothing applied twice, across a switchover and a lost machine.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "test/faults/fault_fixture.h"
#include "test/support/patroni_cluster.h"

namespace pgfanout::faults {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::PatroniCluster;

class HaTest : public FaultTest {
 protected:
  std::unique_ptr<PgServer> StartSource() override {
    cluster_ = PatroniCluster::Start(PatroniCluster::Options{.slot = kFaultSlot});
    if (!cluster_) return nullptr;
    return PgServer::Attach(cluster_->Dsn());
  }
  void TearDown() override {
    if (HasFailure() && cluster_) {
      for (int i = 0; i < cluster_->size(); ++i) std::cerr << cluster_->NodeLog(i);
    }
    FaultTest::TearDown();
  }
  // Seconds from `since` until the daemon's log has one more "streaming slot" line than
  // `before` (it connected to the new primary and streams); -1 if not within `budget`.
  double SecondsUntilStreaming(size_t before, Clock::time_point since,
                               std::chrono::seconds budget) {
    const auto deadline = Clock::now() + budget;
    while (Clock::now() < deadline) {
      if (StreamStarts() > before) {
        return std::chrono::duration<double>(Clock::now() - since).count();
      }
      std::this_thread::sleep_for(100ms);
    }
    return -1;
  }
  size_t StreamStarts() const {
    const std::string log = DaemonLog();
    size_t n = 0;
    for (size_t at = log.find("streaming slot"); at != std::string::npos;
         at = log.find("streaming slot", at + 1)) {
      ++n;
    }
    return n;
  }

  std::unique_ptr<PatroniCluster> cluster_;
};

// Under a steady write load: `patronictl switchover` to the replica, then (once the old
// primary follows again) the new primary's machine is lost (kill -9 of its Patroni and
// postmaster together; the other node is promoted after Patroni's ttl). pgfanout follows
// each new primary through the multi-host DSN, on the slot copy Patroni kept there, and
// every sink ends equal to the source with no change lost or applied twice. Full: two
// rounds.
TEST_F(HaTest, SwitchoverThenLostPrimaryUnderLoadLoseAndRepeatNothing) {
  const int rounds = Full() ? 2 : 1;
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(200);
  std::string notes;
  for (int round = 0; round < rounds; ++round) {
    std::this_thread::sleep_for(3s);
    auto leader = cluster_->Leader();
    ASSERT_TRUE(leader.has_value());
    const int other = 1 - *leader;

    // Switchover.
    ASSERT_TRUE(cluster_->WaitReplicasFollow(90s)) << "the replica does not follow";
    size_t starts = StreamStarts();
    NoteFault();
    auto since = Clock::now();
    ASSERT_TRUE(cluster_->Switchover(other, 60s)) << "switchover to " << cluster_->name(other);
    const double switchover_s = SecondsUntilStreaming(starts, since, 90s);
    EXPECT_GE(switchover_s, 0) << "pgfanout did not stream from the new primary";
    EXPECT_TRUE(AwaitRecovery(SourceLsn(), since, 120s))
        << "the sinks did not pass the new primary's position after the switchover";
    ASSERT_TRUE(daemon_.running()) << "pgfanout exited after the switchover";

    // The new primary's machine is lost, once the old one follows it again.
    std::this_thread::sleep_for(2s);
    ASSERT_TRUE(cluster_->WaitReplicasFollow(120s)) << "the old primary does not follow";
    starts = StreamStarts();
    NoteFault();
    since = Clock::now();
    cluster_->KillNode(other);
    auto promoted = cluster_->WaitWritableLeader(90s);
    ASSERT_EQ(promoted, std::optional<int>(*leader)) << "no failover to " << cluster_->name(*leader);
    const double failover_s = SecondsUntilStreaming(starts, since, 90s);
    EXPECT_GE(failover_s, 0) << "pgfanout did not stream from the promoted node";
    EXPECT_TRUE(AwaitRecovery(SourceLsn(), since, 120s))
        << "the sinks did not pass the promoted node's position";
    ASSERT_TRUE(daemon_.running()) << "pgfanout exited after the failover";
    notes += fmt::format("{}switchover: streaming again after {:.1f} s; lost primary: {:.1f} s",
                         notes.empty() ? "" : "; ", switchover_s, failover_s);
    // The lost machine comes back (pg_rewind if it must) and follows.
    ASSERT_TRUE(cluster_->StartNode(other));
  }
  std::this_thread::sleep_for(2s);
  report_.notes = notes + " (Patroni ttl 10 s, loop_wait 1 s)";
  auto report = Finish(Full() ? "ha: 2 x (switchover, lost primary), Patroni synchronous_mode"
                              : "ha: switchover, lost primary (short)");
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_GT(report.committed, 0);
  EXPECT_TRUE(daemon_.running());
}

}  // namespace
}  // namespace pgfanout::faults
