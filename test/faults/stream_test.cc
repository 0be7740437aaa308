// Large transactions: streamed in chunks by the server (logical_decoding_work_mem=64kB),
// interleaved with each other and with the small-transaction workload, with rolled-back
// savepoints and an aborted large transaction, and the daemon killed mid-stream.

#include <fmt/format.h>
#include <signal.h>

#include <random>

#include "test/faults/fault_fixture.h"

namespace pgfanout::faults {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class StreamTest : public FaultTest {
 protected:
  std::vector<std::string> ServerSettings() const override {
    return {"logical_decoding_work_mem = 64kB"};
  }
};

TEST_F(StreamTest, LargeTransactionsKilledMidStream) {
  const int rows = Full() ? 200'000 : 40'000;
  const int rounds = Full() ? 4 : 2;
  std::mt19937_64 rng(Seed());
  std::uniform_int_distribution<int> hit(2, 40);
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(200);
  for (int round = 0; round < rounds; ++round) {
    KillDaemon(SIGTERM);
    std::string spec = fmt::format("source.mid_stream=kill@{}", hit(rng));
    ASSERT_NO_FATAL_FAILURE(StartDaemon({{"PGFANOUT_FAILPOINTS", spec}}, /*wait=*/false));
    // Three large transactions at once: one committed with every 7th chunk rolled back to a
    // savepoint, one aborted, one committed with every 5th chunk rolled back.
    std::thread a([&] { workload_->BigTransaction("a", rows, 7, false); });
    std::thread b([&] { workload_->BigTransaction("b", rows / 4, 0, true); });
    std::thread c([&] { workload_->BigTransaction("c", rows / 2, 5, false); });
    a.join();
    b.join();
    c.join();
    ASSERT_TRUE(WaitDaemonDied(120s)) << spec << " never fired: nothing was streamed";
    auto lsn = NoteFault();
    ASSERT_NO_FATAL_FAILURE(StartDaemon({}, /*wait=*/false));
    AwaitRecovery(lsn, Clock::now(), 120s);
  }
  auto streamed = pg_->Scalar(
      "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 'pgfanout_fault'");
  report_.notes = "streamed transactions (pg_stat_replication_slots.stream_txns): " + streamed;
  auto report = Finish(fmt::format("large transactions ({} rows, savepoints, abort, "
                                   "interleaved, 64kB work mem), killed mid-stream{}",
                                   rows, Full() ? "" : " (short)"));
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_GT(std::stoll(streamed.empty() ? "0" : streamed), 0) << "the server streamed nothing";
  EXPECT_GE(report.committed, rows) << "the large transactions must be in the history";
}

}  // namespace
}  // namespace pgfanout::faults
