// Halts: the slot invalidated by max_slot_wal_keep_size, the slot dropped, the source
// replaced by another cluster, the slot confirmed past the state dir. Each time the daemon
// must stop by itself with exit 1 and a message that names the cause, never create a new
// slot or skip ahead, refuse again when started again, and have delivered nothing the
// source did not commit.

#include <fmt/format.h>
#include <signal.h>

#include <sstream>

#include "test/faults/fault_fixture.h"

namespace pgfanout::faults {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSlot = kFaultSlot;
constexpr auto kHaltBudget = 30s;

class HaltTest : public FaultTest {
 protected:
  // One 16 MB segment of WAL may be kept for a slot; a slot further behind is invalidated
  // at the next checkpoint. The workload writes far less than that between checkpoints,
  // so only a stalled daemon loses its slot.
  std::vector<std::string> ServerSettings() const override {
    return {"max_slot_wal_keep_size = 16MB"};
  }

  std::string SourceDsnForDaemon() const override {
    return source_dsn_.empty() ? pg_->Dsn() : source_dsn_;
  }

  // Streams under a light workload until every sink has what the source had a moment ago.
  void StreamAWhile() {
    ASSERT_NO_FATAL_FAILURE(StartDaemon());
    StartWorkload(100);
    std::this_thread::sleep_for(2s);
    ASSERT_TRUE(AwaitRecovery(SourceLsn(), std::chrono::steady_clock::now(), 30s))
        << "the sinks never caught up before the fault";
  }

  // Waits for the daemon to exit by itself (it was started or resumed just before, and
  // the log had `log_from` bytes then); expects exit 1 and a critical line holding every
  // word of `words`, which it returns.
  std::string ExpectHalt(size_t log_from, const std::vector<std::string>& words) {
    if (!WaitDaemonDied(kHaltBudget)) {
      ADD_FAILURE() << "pgfanout still runs " << kHaltBudget.count() << " s after the fault";
      return "";
    }
    EXPECT_EQ(daemon_.Wait(0ms), 1) << "pgfanout must exit 1 when it halts";
    std::string log = DaemonLog().substr(log_from);
    std::string line;
    std::istringstream lines(log);
    for (std::string l; std::getline(lines, l);) {
      if (l.find(" critical ") != std::string::npos) line = l;
    }
    EXPECT_FALSE(line.empty()) << "no critical line in the log:\n" << log;
    for (const auto& w : words) {
      EXPECT_NE(line.find(w), std::string::npos)
          << "the halt message lacks \"" << w << "\": " << line;
    }
    std::cout << "  halted: " << line << std::endl;
    return line;
  }

  // Starts the daemon once more: it must refuse again, with the same message.
  void ExpectRefusesAgain(const std::string& first, const std::vector<std::string>& words) {
    size_t from = DaemonLog().size();
    ASSERT_NO_FATAL_FAILURE(StartDaemon({}, /*wait=*/false));
    std::string again = ExpectHalt(from, words);
    // Same cause: the message after the timestamp and level.
    auto tail = [](const std::string& l) {
      return l.substr(std::min(l.size(), l.find(" critical ")));
    };
    EXPECT_EQ(tail(again), tail(first)) << "a second start must refuse for the same reason";
  }

  int64_t Slots(const PgServer& server) {
    return std::stoll(server.Scalar("SELECT count(*) FROM pg_replication_slots"));
  }

  // Nothing delivered that the source did not commit, nothing applied twice or out of
  // order. Losses are expected where WAL or the slot is gone; the report shows them.
  void ExpectNothingPastTheHalt(const std::string& scenario) {
    auto report = Finish(scenario, 10s);
    EXPECT_EQ(report.Unexpected(), 0) << report.ToText();
    EXPECT_EQ(report.DuplicatedEffect(), 0) << report.ToText();
    EXPECT_EQ(report.OrderViolations(), 0) << report.ToText();
    EXPECT_GT(report.committed, 0);
  }

  std::string source_dsn_;  // where the config sends the daemon, when not to pg_
};

// The daemon is stopped (SIGSTOP) while the workload goes on and the server switches WAL
// segments and checkpoints: the slot falls more than max_slot_wal_keep_size behind and
// the server invalidates it (and ends its walsender). Resumed, the daemon reconnects,
// sees wal_status 'lost' and halts.
TEST_F(HaltTest, SlotInvalidatedByMaxSlotWalKeepSizeHalts) {
  ASSERT_NO_FATAL_FAILURE(StreamAWhile());
  daemon_.Kill(SIGSTOP);
  NoteFault();
  const std::string status_sql =
      fmt::format("SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{}'", kSlot);
  auto deadline = std::chrono::steady_clock::now() + 30s;
  for (int i = 1; pg_->Scalar(status_sql) != "lost"; ++i) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "the slot was never invalidated; wal_status " << pg_->Scalar(status_sql);
    std::this_thread::sleep_for(100ms);  // the workload writes into the new segment
    pg_->Exec("SELECT pg_switch_wal()");
    if (i % 3 == 0) pg_->Exec("CHECKPOINT");
  }
  size_t from = DaemonLog().size();
  daemon_.Kill(SIGCONT);
  const std::vector<std::string> words = {"invalidated", "wal_status 'lost'",
                                          "max_slot_wal_keep_size", "re-snapshot"};
  std::string first = ExpectHalt(from, words);
  EXPECT_EQ(Slots(*pg_), 1) << "the invalidated slot must stay, and no new one be made";
  ASSERT_NO_FATAL_FAILURE(ExpectRefusesAgain(first, words));
  EXPECT_EQ(Slots(*pg_), 1);
  EXPECT_EQ(pg_->Scalar(status_sql), "lost");
  ExpectNothingPastTheHalt("halt: slot invalidated by max_slot_wal_keep_size");
}

// The slot is dropped while the daemon is stopped (SIGSTOP; its walsender is terminated so
// the slot can go). Resumed, the daemon reconnects, finds no slot and halts rather than
// create one at the server's current position.
TEST_F(HaltTest, SlotDroppedHalts) {
  ASSERT_NO_FATAL_FAILURE(StreamAWhile());
  daemon_.Kill(SIGSTOP);
  NoteFault();
  pg_->Exec(fmt::format(
      "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{}'",
      kSlot));
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (pg_->Scalar(fmt::format("SELECT active FROM pg_replication_slots WHERE slot_name = '{}'",
                                 kSlot)) != "f") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the walsender never went away";
    std::this_thread::sleep_for(50ms);
  }
  pg_->Exec(fmt::format("SELECT pg_drop_replication_slot('{}')", kSlot));
  std::this_thread::sleep_for(1s);  // the workload commits changes no slot keeps any more
  size_t from = DaemonLog().size();
  daemon_.Kill(SIGCONT);
  const std::vector<std::string> words = {"is gone from the source",
                                          "will not create a new slot silently", "new state_dir"};
  std::string first = ExpectHalt(from, words);
  EXPECT_EQ(Slots(*pg_), 0) << "pgfanout created a slot";
  ASSERT_NO_FATAL_FAILURE(ExpectRefusesAgain(first, words));
  EXPECT_EQ(Slots(*pg_), 0) << "pgfanout created a slot";
  ExpectNothingPastTheHalt("halt: slot dropped");
}

// The source DSN now leads to another cluster (a new system identifier) with the same
// schema. The daemon refuses before it touches that cluster (no slot, no publication).
// Pointed back at the original, it resumes where it was and loses nothing.
TEST_F(HaltTest, SourceReplacedByAnotherClusterHalts) {
  ASSERT_NO_FATAL_FAILURE(StreamAWhile());
  KillDaemon(SIGTERM);
  NoteFault();
  auto other = PgServer::Start(PgServer::Options{.own_identity = true});
  ASSERT_NE(other, nullptr);
  other->Exec(kWorkloadSchema);
  ASSERT_NE(other->Scalar("SELECT system_identifier FROM pg_control_system()"),
            pg_->Scalar("SELECT system_identifier FROM pg_control_system()"));
  source_dsn_ = other->Dsn();
  WriteConfig();

  size_t from = DaemonLog().size();
  ASSERT_NO_FATAL_FAILURE(StartDaemon({}, /*wait=*/false));
  const std::vector<std::string> words = {"system identifier", "refusing to mix",
                                          "Point source.dsn at the original server"};
  std::string first = ExpectHalt(from, words);
  ASSERT_NO_FATAL_FAILURE(ExpectRefusesAgain(first, words));
  EXPECT_EQ(Slots(*other), 0) << "pgfanout created a slot on the other cluster";
  EXPECT_EQ(other->Scalar("SELECT count(*) FROM pg_publication"), "0")
      << "pgfanout changed the other cluster";

  // The refusals left the state dir as it was: back on the original, nothing is lost.
  source_dsn_.clear();
  WriteConfig();
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  auto report = Finish("halt: source replaced by another cluster, then restored", 60s);
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_GT(report.committed, 0);
}

// The slot is advanced past what the state dir holds while the daemon is down (another
// consumer, or a state dir restored from an old copy): the changes in between are gone
// for pgfanout. It refuses to start, rather than continue from the slot, and says what to
// do.
TEST_F(HaltTest, SlotConfirmedPastTheStateDirHalts) {
  ASSERT_NO_FATAL_FAILURE(StreamAWhile());
  KillDaemon(SIGTERM);
  NoteFault();
  std::this_thread::sleep_for(1s);  // the workload goes on: a gap opens
  pg_->Exec(fmt::format("SELECT pg_replication_slot_advance('{}', pg_current_wal_lsn())", kSlot));
  size_t from = DaemonLog().size();
  ASSERT_NO_FATAL_FAILURE(StartDaemon({}, /*wait=*/false));
  const std::vector<std::string> words = {"past what the state dir holds", "use a new state_dir",
                                          "re-snapshot the sinks"};
  std::string first = ExpectHalt(from, words);
  ASSERT_NO_FATAL_FAILURE(ExpectRefusesAgain(first, words));
  EXPECT_EQ(Slots(*pg_), 1) << "pgfanout replaced the slot";
  ExpectNothingPastTheHalt("halt: slot confirmed past the state dir");
}

}  // namespace
}  // namespace pgfanout::faults
