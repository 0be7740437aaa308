// Crash faults: kill -9 at random moments, and at each failpoint; the negative control.

#include <fmt/format.h>
#include <signal.h>

#include <random>

#include "test/faults/fault_fixture.h"

namespace pgfanout::faults {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// kill -9 of the daemon under load at random 0.5-10 s intervals (short mode: 0.5-3 s, 8
// cycles), restarting it at once; recovery is measured until the next kill.
TEST_F(FaultTest, KillLoop) {
  const int cycles = Full() ? 300 : 8;
  std::mt19937_64 rng(Seed());
  std::uniform_real_distribution<double> interval(0.5, Full() ? 10.0 : 3.0);
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(Full() ? 500 : 300);
  std::optional<std::pair<std::string, Clock::time_point>> pending;
  for (int i = 0; i < cycles; ++i) {
    auto wait = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(interval(rng)));
    auto until = Clock::now() + wait;
    if (pending) AwaitRecovery(pending->first, pending->second, wait);
    std::this_thread::sleep_until(until);
    ASSERT_TRUE(daemon_.running()) << "pgfanout exited by itself in cycle " << i;
    KillDaemon();
    auto lsn = NoteFault();
    pending = {lsn, Clock::now()};
    ASSERT_NO_FATAL_FAILURE(StartDaemon({}, /*wait=*/false));
    if (i % 25 == 24) std::cout << "  kill cycle " << i + 1 << " of " << cycles << std::endl;
  }
  AwaitRecovery(pending->first, pending->second, 60s);
  auto report = Finish(Full() ? "kill -9 loop, 300 cycles" : "kill -9 loop (short)");
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_GT(report.committed, 0);
}

struct FailpointCase {
  const char* point;
  const char* action;  // kill, abort or error
};

class FailpointTest : public FaultTest, public ::testing::WithParamInterface<FailpointCase> {};

// The daemon dies (or fails a step) at a named failpoint, on a random hit, again and again
// under load; each time it is started again and must lose and repeat nothing.
TEST_P(FailpointTest, CrashAndResume) {
  const auto& c = GetParam();
  const int rounds = Full() ? 20 : 3;
  std::mt19937_64 rng(Seed());
  // Every point here is passed several times a second under this load (log.after_commit at
  // each group commit, the sink points at each batch): a hit within 2..12 comes in seconds.
  std::uniform_int_distribution<int> hit(2, 12);
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  KillDaemon(SIGTERM);  // seeded and streaming; from here on the failpoint decides
  StartWorkload(300);
  const bool dies = std::string_view(c.action) != "error";
  for (int i = 0; i < rounds; ++i) {
    std::string spec = fmt::format("{}={}@{}", c.point, c.action, hit(rng));
    auto restarted = Clock::now();
    ASSERT_NO_FATAL_FAILURE(StartDaemon({{"PGFANOUT_FAILPOINTS", spec}}, /*wait=*/false));
    if (dies) {
      ASSERT_TRUE(WaitDaemonDied(120s)) << spec << " never fired";
      auto lsn = NoteFault();
      ASSERT_NO_FATAL_FAILURE(StartDaemon({}, /*wait=*/false));
      AwaitRecovery(lsn, Clock::now(), 60s);
      KillDaemon(SIGTERM);
    } else {
      // An injected error: the daemon must retry and carry on by itself. It counts as a
      // fault only once its log shows it fired ("failpoint <name> fired").
      const std::string fired = fmt::format("failpoint {} fired", c.point);
      auto count = [&] {
        const std::string log = DaemonLog();
        size_t n = 0;
        for (size_t at = log.find(fired); at != std::string::npos; at = log.find(fired, at + 1)) {
          ++n;
        }
        return n;
      };
      const size_t before = count();
      const auto deadline = Clock::now() + 60s;
      while (count() == before && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
      ASSERT_GT(count(), before) << spec << " never fired";
      ASSERT_TRUE(daemon_.running()) << spec << ": an injected error must not stop pgfanout";
      report_.faults += static_cast<int>(count() - before);
      AwaitRecovery(SourceLsn(), restarted, 60s);
      KillDaemon(SIGTERM);
    }
  }
  ASSERT_NO_FATAL_FAILURE(StartDaemon({}, /*wait=*/false));
  auto report = Finish(fmt::format("failpoint {} = {}{}", c.point, c.action,
                                   Full() ? "" : " (short)"));
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_EQ(report.faults, rounds);
}

INSTANTIATE_TEST_SUITE_P(
    Points, FailpointTest,
    ::testing::Values(FailpointCase{"log.after_commit", "kill"},
                      FailpointCase{"sink.mid_write", "kill"},
                      FailpointCase{"sink.after_write", "kill"},
                      FailpointCase{"sink.after_write", "abort"},
                      FailpointCase{"sink.mid_write", "error"},
                      FailpointCase{"log.after_commit", "error"}),
    [](const ::testing::TestParamInfo<FailpointCase>& info) {
      std::string name = fmt::format("{}_{}", info.param.point, info.param.action);
      for (auto& ch : name) {
        if (ch == '.') ch = '_';
      }
      return name;
    });

// The negative control: a build of the daemon that confirms to the server what it received
// before its event log made it durable (and trusts the server's position on restart). It
// is killed right after such a confirmation; the checker must see events lost. If this
// test fails, the suite cannot see loss and its zeros mean nothing.
TEST_F(FaultTest, NegativeControlLosesEvents) {
  const char* bin = std::getenv("PGFANOUT_NEGATIVE_CONTROL_BIN");
  ASSERT_NE(bin, nullptr) << "meson test sets PGFANOUT_NEGATIVE_CONTROL_BIN";
  ASSERT_NO_FATAL_FAILURE(StartDaemon({{"PGFANOUT_NEGATIVE_CONTROL", "confirm_early"}}, true, bin));
  StartWorkload(300);
  std::mt19937_64 rng(Seed());
  std::uniform_int_distribution<int> hit(5, 20);
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(1s);
    KillDaemon(SIGTERM);
    ASSERT_NO_FATAL_FAILURE(StartDaemon(
        {{"PGFANOUT_FAILPOINTS", fmt::format("log.after_commit=kill@{}", hit(rng))},
         {"PGFANOUT_NEGATIVE_CONTROL", "confirm_early"}},
        /*wait=*/false, bin));
    ASSERT_TRUE(WaitDaemonDied(120s)) << "the failpoint never fired";
    NoteFault();
    ASSERT_NO_FATAL_FAILURE(
        StartDaemon({{"PGFANOUT_NEGATIVE_CONTROL", "confirm_early"}}, /*wait=*/false, bin));
  }
  // The last start stays up and its targets pass the source's position taken after the
  // last fault: what the checker then finds missing is lost, not late and not the victim
  // of a dead daemon.
  ASSERT_TRUE(AwaitRecovery(SourceLsn(), Clock::now(), 60s)) << "the control never caught up";
  ASSERT_TRUE(daemon_.running()) << "the control must not stop the daemon";
  auto report = Finish("negative control: confirm before durable", 20s);
  EXPECT_TRUE(daemon_.running()) << "alive until the checker ran";
  EXPECT_GT(report.Lost(), 0) << "the checker did not see the loss the negative control causes";
  EXPECT_EQ(report.DuplicatedOnce(), 0) << report.ToText();
  EXPECT_EQ(report.Unexpected(), 0) << report.ToText();
}

// Negative controls that keep running: the daemon breaks one guarantee on every batch, is
// left alive until every sink has reached the source's last change, and the checker must
// report that property, and no other (a control that also lost or reordered would not
// show that each check works by itself).
class NegativeControlTest : public FaultTest {
 protected:
  Report Run(const std::string& control, const std::string& scenario) {
    const char* bin = std::getenv("PGFANOUT_NEGATIVE_CONTROL_BIN");
    EXPECT_NE(bin, nullptr) << "meson test sets PGFANOUT_NEGATIVE_CONTROL_BIN";
    if (bin == nullptr) return {};
    StartDaemon({{"PGFANOUT_NEGATIVE_CONTROL", control}}, true, bin);
    StartWorkload(300);
    std::this_thread::sleep_for(4s);
    EXPECT_TRUE(daemon_.running()) << "the control must not stop the daemon";
    EXPECT_TRUE(AwaitRecovery(SourceLsn(), Clock::now(), 60s)) << "the control never caught up";
    auto report = Finish(scenario, 60s);
    EXPECT_TRUE(daemon_.running()) << "alive until the checker ran";
    EXPECT_EQ(report.Lost(), 0) << report.ToText();
    EXPECT_EQ(report.Unexpected(), 0) << report.ToText();
    return report;
  }
};

TEST_F(NegativeControlTest, ApplyingEveryBatchTwiceIsReportedAsDuplicates) {
  auto report = Run("apply_twice", "negative control: apply twice");
  EXPECT_GT(report.DuplicatedOnce(), 0) << report.ToText();
  EXPECT_EQ(report.OrderViolations(), 0) << report.ToText();
  for (const auto& s : report.sinks) {
    EXPECT_GT(s.duplicated_raw, 0) << s.name << ": each sink's duplicates are seen";
  }
  EXPECT_FALSE(report.Valid());
}

TEST_F(NegativeControlTest, TwoTransactionsSwappedAreReportedAsOutOfOrder) {
  auto report = Run("swap", "negative control: swap two transactions");
  EXPECT_GT(report.OrderViolations(), 0) << report.ToText();
  EXPECT_EQ(report.DuplicatedOnce(), 0) << report.ToText();
  EXPECT_EQ(report.DuplicatedEffect(), 0) << report.ToText();
  EXPECT_FALSE(report.Valid());
}

}  // namespace
}  // namespace pgfanout::faults
