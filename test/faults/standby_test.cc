// pgfanout's own failover (issue 21): source.confirm: sinks, two daemons on one slot with
// their own state dirs, and besides the fixture's two Postgres sinks a ClickHouse sink of
// every tenant. The slot is leadership: the one that streams it delivers, the other
// waits as a standby and takes over when the server frees the slot. The slot is confirmed
// only at what every sink's destination holds, so the standby needs nothing from the lost
// machine: each sink resumes from the position its destination stored. The checker then
// compares the workload's history with every target: nothing lost, nothing applied twice.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "test/faults/fault_fixture.h"
#include "test/support/clickhouse_server.h"
#include "test/support/http_client.h"

namespace pgfanout::faults {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// The server frees the slot of a walsender whose client has been silent this long.
constexpr int kWalSenderTimeoutS = 5;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// Holds an ACCESS EXCLUSIVE lock on a table of a target database until released: that
// sink's writes wait, so it has events pending and holds the slot back.
class TableLock {
 public:
  TableLock(const std::string& dsn, const std::string& table) : conn_(PQconnectdb(dsn.c_str())) {
    ok_ = PQstatus(conn_) == CONNECTION_OK && Exec("BEGIN") &&
          Exec("LOCK TABLE " + table + " IN ACCESS EXCLUSIVE MODE");
  }
  ~TableLock() { Release(); }
  bool ok() const { return ok_; }
  void Release() {
    if (!conn_) return;
    Exec("COMMIT");
    PQfinish(conn_);
    conn_ = nullptr;
  }

 private:
  bool Exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    const bool good = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return good;
  }
  PGconn* conn_;
  bool ok_ = false;
};

class StandbyTest : public FaultTest {
 protected:
  bool ConfirmSinks() const override { return true; }
  std::vector<std::string> ServerSettings() const override {
    return {fmt::format("wal_sender_timeout = {}s", kWalSenderTimeoutS)};
  }
  bool AnyDaemonRunning() override { return daemon_.running() || standby_.running(); }

  void SetUp() override {
    // Before the fixture writes the config, which names its URL. Short runs: no merges, so
    // each row ever inserted stays countable without FINAL (RepeatedRows). At full length
    // unmerged parts (one per batch, and one per position stored) pass the server's limits
    // (300 parts; FINAL over thousands of parts exceeds its memory): merges run there, and
    // the rows are compared as FINAL shows them.
    ch_ = testing::ClickHouseServer::Start({.no_merges = !Full()});
    ASSERT_NE(ch_, nullptr);
    FaultTest::SetUp();
    if (HasFatalFailure()) return;
    standby_config_ = work_dir_ + "/standby.yaml";
    standby_log_ = work_dir_ + "/standby.log";
    std::ofstream(standby_config_) << ConfigText(work_dir_ + "/state-standby");
  }
  void TearDown() override {
    if (standby_.running()) {
      standby_.Kill(SIGKILL);
      standby_.Wait(10s);
    }
    if (HasFailure()) {
      const std::string log = ReadFile(standby_log_);
      std::cerr << "---- standby log (" << standby_log_ << "), last 20000 bytes ----\n"
                << log.substr(log.size() > 20000 ? log.size() - 20000 : 0);
    }
    FaultTest::TearDown();
    ch_.reset();
  }

  std::string ExtraSinks() const override {
    return fmt::format(
        "\n  - id: ch-all\n    type: clickhouse\n    tenants: [\"*\"]\n    url: \"{}\"\n"
        "    database: everyone\n    batch_size: 200\n",
        ch_->Url());
  }
  // The ClickHouse sink as a reader sees it: FINAL, without the rows deletes left. Its
  // rows and their position are two inserts, so a kill between them inserts that batch
  // again (harmless under FINAL): raw repeats are counted apart (RepeatedRows), and the
  // checker compares the rows.
  void ExtraViews(std::vector<SinkView>& views) override {
    TableState state;
    auto ledger = ch_->TryRows(
        "SELECT tenant_id, toString(op_id) FROM everyone.ledger FINAL "
        "WHERE pgfanout_is_deleted = 0");
    auto accounts = ch_->TryRows(
        "SELECT tenant_id, toString(id), toString(version), toString(balance) "
        "FROM everyone.accounts FINAL WHERE pgfanout_is_deleted = 0");
    for (const auto& r : ledger.value_or(std::vector<testing::Row>{})) {
      state.ledger.emplace(*r[0], std::stoll(*r[1]));
    }
    for (const auto& r : accounts.value_or(std::vector<testing::Row>{})) {
      state.accounts[{*r[0], std::stoll(*r[1])}] = {std::stoll(*r[2]), std::stoll(*r[3])};
    }
    views.push_back(SinkView{.name = "ch-all", .compacts = true, .rows = std::move(state)});
  }
  // Rows inserted more than once, identical in every column, read without FINAL.
  int64_t RepeatedRows() {
    int64_t repeats = 0;
    for (const std::string table : {"accounts", "ledger"}) {
      const std::string columns = ch_->Scalar(
          fmt::format("SELECT arrayStringConcat(groupArray(name), ', ') FROM system.columns "
                      "WHERE database = 'everyone' AND table = '{}'",
                      table));
      repeats += std::stoll(ch_->Scalar(fmt::format(
          "SELECT toInt64(sum(c - 1)) FROM (SELECT count() AS c FROM everyone.{} GROUP BY {})",
          table, columns)));
    }
    return repeats;
  }

  // Starts the second daemon and waits until it says it is a standby.
  void StartStandby() {
    ASSERT_TRUE(standby_.Start({"run", "--config", standby_config_}, standby_log_));
    ASSERT_TRUE(WaitFor([&] { return Count(ReadFile(standby_log_), "standby: ") > 0; }, 60s))
        << "the second daemon never said it is a standby";
  }

  // Seconds from `since` until `done` holds, polled every 50 ms; -1 after `budget`.
  template <class Pred>
  static double SecondsUntil(Pred done, Clock::time_point since, std::chrono::seconds budget) {
    while (Clock::now() < since + budget) {
      if (done()) return std::chrono::duration<double>(Clock::now() - since).count();
      std::this_thread::sleep_for(50ms);
    }
    return -1;
  }
  template <class Pred>
  static bool WaitFor(Pred done, std::chrono::seconds budget) {
    return SecondsUntil(done, Clock::now(), budget) >= 0;
  }

  // The /status of the daemon whose log is `log_path`, parsed.
  static json StatusOf(const std::string& log_path) {
    std::smatch m;
    const std::string log = ReadFile(log_path);
    static const std::regex re("http: listening on ([0-9.:]+)");
    if (!std::regex_search(log, m, re)) return json();
    auto reply = testing::HttpGet(m[1].str(), "/status");
    if (reply.status != 200) return json();
    return json::parse(reply.body, nullptr, false);
  }

  // The slot's confirmed position on the source, as a number.
  int64_t SlotConfirmedBehind() {
    return std::stoll(pg_->Scalar(
        fmt::format("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
                    "FROM pg_replication_slots WHERE slot_name = '{}'",
                    kFaultSlot)));
  }

  testing::DaemonProcess standby_;
  std::string standby_config_, standby_log_;
  std::unique_ptr<testing::ClickHouseServer> ch_;
};

// The leader's machine is lost under load: kill -9, and its state dir deleted, while one
// sink lags (its target table is locked), so the slot is held back at that sink's position
// and the leader's log held changes no destination had. The standby streams within
// wal_sender_timeout + 2 s (a lost machine's TCP connection can linger that long; a killed
// process on this machine frees the slot at once), resumes every sink from the position its
// destination stored (no copy), and every target ends equal to the source with nothing
// lost or applied twice.
TEST_F(StandbyTest, MachineLostTheStandbyTakesOverFromTheDestinations) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  ASSERT_NO_FATAL_FAILURE(StartStandby());
  auto leader = StatusOf(log_path_);
  EXPECT_EQ(leader["role"], "leader") << leader.dump();
  EXPECT_EQ(leader["confirm"], "sinks");
  auto waiting = StatusOf(standby_log_);
  EXPECT_EQ(waiting["role"], "standby") << waiting.dump();
  EXPECT_EQ(waiting["ready"], true) << "a standby is healthy: ready to take over";
  StartWorkload(200);
  std::this_thread::sleep_for(Full() ? 20s : 4s);
  TableLock lagging(sink_pg_->Dsn("tenant_a"), "ledger");
  ASSERT_TRUE(lagging.ok());
  std::this_thread::sleep_for(3s);  // tenant-a's batches wait on the lock
  const int64_t held_back = SlotConfirmedBehind();

  NoteFault();
  const auto since = Clock::now();
  KillDaemon(SIGKILL);
  std::filesystem::remove_all(work_dir_ + "/state");
  lagging.Release();
  const double takeover_s =
      SecondsUntil([&] { return Count(ReadFile(standby_log_), "streaming slot") > 0; }, since, 60s);
  EXPECT_GE(takeover_s, 0) << "the standby never streamed";
  EXPECT_LE(takeover_s, kWalSenderTimeoutS + 2) << "the standby took over late";
  EXPECT_TRUE(AwaitRecovery(SourceLsn(), since, 120s))
      << "the sinks did not pass the source's position after the takeover";
  std::this_thread::sleep_for(Full() ? 20s : 3s);  // load goes on under the new leader
  report_.notes = fmt::format(
      "standby streaming {:.1f} s after the leader's kill -9; the slot held {} KiB back for "
      "the lagging sink",
      takeover_s, held_back / 1024);
  EXPECT_GT(held_back, 64 * 1024) << "the lagging sink did not hold the slot back";

  const std::string log = ReadFile(standby_log_);
  EXPECT_EQ(Count(log, "not resuming from the position its destination holds"), 0u)
      << "a sink was copied again instead of resuming from its destination";
  EXPECT_GT(Count(log, "adopted existing slot"), 0u);
  auto report = Finish(Full() ? "machine lost: standby takes over (confirm: sinks)"
                              : "machine lost: standby takes over (short)");
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_GT(report.committed, 0);
  EXPECT_TRUE(standby_.running());
  // The standby resumed ClickHouse from the position stored there: at most the batch in
  // flight at the kill (batch_size 200) is inserted again.
  if (!Full()) {
    EXPECT_LE(RepeatedRows(), 200);
  }
}

// The leader is paused (SIGSTOP) past wal_sender_timeout: the server frees the slot and the
// standby takes over. SIGCONT: the old leader notices it lost the slot, becomes a standby
// and delivers nothing; a batch it had in hand is refused by the destination's position
// check (postgres_sink_test.cc). Then the new leader is killed, and the old one takes over
// again from its stale state dir: the slot is past its log (the other led meanwhile), and
// each sink resumes from its destination. Every target ends equal to the source.
TEST_F(StandbyTest, PausedLeaderIsFencedAndLaterTakesOverFromAStaleStateDir) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  ASSERT_NO_FATAL_FAILURE(StartStandby());
  StartWorkload(200);
  std::this_thread::sleep_for(Full() ? 20s : 4s);

  const std::string stopped_at = SourceLsn();
  NoteFault();
  auto since = Clock::now();
  daemon_.Kill(SIGSTOP);
  const double takeover_s =
      SecondsUntil([&] { return Count(ReadFile(standby_log_), "streaming slot") > 0; }, since, 60s);
  EXPECT_GE(takeover_s, 0) << "the standby never streamed";
  EXPECT_LE(takeover_s, kWalSenderTimeoutS + 2) << "the standby took over late";
  std::this_thread::sleep_for(2s);
  daemon_.Kill(SIGCONT);
  const double noticed_s = SecondsUntil(
      [&] { return Count(DaemonLog(), "this process lost the slot") > 0; }, Clock::now(), 30s);
  EXPECT_GE(noticed_s, 0) << "the old leader never noticed it lost the slot";
  json old = StatusOf(log_path_);
  EXPECT_EQ(old["role"], "standby") << old.dump();
  // Its sinks deliver nothing: each waits for the slot.
  ASSERT_TRUE(WaitFor(
      [&] {
        old = StatusOf(log_path_);
        if (!old.contains("sinks") || old["sinks"].empty()) return false;
        for (const auto& s : old["sinks"]) {
          const json& why = s["waiting_for"];
          if (!why.is_string() ||
              why.get<std::string>().find("another pgfanout holds it") == std::string::npos) {
            return false;
          }
        }
        return true;
      },
      30s))
      << old.dump();
  EXPECT_TRUE(AwaitRecovery(SourceLsn(), since, 120s));
  // The new leader confirms the slot past all the old one logged, once every sink (the
  // ClickHouse one too) has passed it: the old state dir is then stale.
  EXPECT_TRUE(WaitFor(
      [&] {
        return pg_->Scalar(fmt::format("SELECT confirmed_flush_lsn > '{}' FROM "
                                       "pg_replication_slots WHERE slot_name = '{}'",
                                       stopped_at, kFaultSlot)) == "t";
      },
      120s))
      << "the new leader never confirmed the slot past the old one's log";

  // The new leader is lost; the old one, on its stale state dir, takes over again.
  NoteFault();
  const size_t streams_before = Count(DaemonLog(), "streaming slot");
  since = Clock::now();
  standby_.Kill(SIGKILL);
  standby_.Wait(30s);
  const double back_s = SecondsUntil(
      [&] { return Count(DaemonLog(), "streaming slot") > streams_before; }, since, 60s);
  EXPECT_GE(back_s, 0) << "the old leader never took over again";
  EXPECT_TRUE(AwaitRecovery(SourceLsn(), since, 120s));
  EXPECT_GT(Count(DaemonLog(), "led meanwhile"), 0u)
      << "the old leader's state dir was not behind the slot: the stale path was not taken";
  std::this_thread::sleep_for(3s);
  report_.notes = fmt::format(
      "standby streaming {:.1f} s after SIGSTOP (wal_sender_timeout {} s); old leader a "
      "standby {:.1f} s after SIGCONT; back as leader {:.1f} s after the other's kill -9",
      takeover_s, kWalSenderTimeoutS, noticed_s, back_s);
  auto report = Finish(Full() ? "paused leader fenced, then takes over again (confirm: sinks)"
                              : "paused leader fenced (short)");
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_GT(report.committed, 0);
}

// Under confirm: sinks a sink that cannot write holds the slot: the server keeps the WAL
// from its position on (the trade-off the README states), and nothing is lost once it is
// back. The sinks' server is down for 15 s (full: 5 minutes) under load; the slot's
// confirmed position does not move meanwhile while the server's does.
TEST_F(StandbyTest, ASinkDownHoldsTheSlotAndLosesNothing) {
  const auto down = Full() ? std::chrono::seconds(300) : 15s;
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(200);
  std::this_thread::sleep_for(3s);
  NoteFault();
  ASSERT_TRUE(sink_pg_->Stop("immediate"));
  const auto stopped = Clock::now();
  std::this_thread::sleep_for(3s);  // what the sinks had in hand fails; the hold settles
  const std::string confirmed_at =
      pg_->Scalar(fmt::format("SELECT confirmed_flush_lsn::text FROM pg_replication_slots "
                              "WHERE slot_name = '{}'",
                              kFaultSlot));
  const int64_t behind_at_start = SlotConfirmedBehind();
  std::this_thread::sleep_for(down - (Clock::now() - stopped));
  const int64_t retained = SlotConfirmedBehind();
  EXPECT_EQ(pg_->Scalar(fmt::format("SELECT confirmed_flush_lsn::text FROM pg_replication_slots "
                                    "WHERE slot_name = '{}'",
                                    kFaultSlot)),
            confirmed_at)
      << "the slot was confirmed past what the sinks hold while they could not write";
  EXPECT_GT(retained, behind_at_start) << "the server kept no more WAL for the down sinks";
  ASSERT_TRUE(daemon_.running());
  ASSERT_TRUE(sink_pg_->StartAgain());
  const auto since = Clock::now();
  EXPECT_TRUE(AwaitRecovery(SourceLsn(), since, 180s));
  std::this_thread::sleep_for(3s);
  EXPECT_LT(SlotConfirmedBehind(), retained) << "the slot did not move on once the sinks did";
  report_.notes = fmt::format("WAL retained by the slot after {} s with the sinks down: {} MB",
                              std::chrono::duration_cast<std::chrono::seconds>(down).count(),
                              retained / (1024 * 1024));
  auto report = Finish(Full() ? "sinks down 5 min under confirm: sinks"
                              : "sinks down under confirm: sinks (short)");
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_GT(report.committed, 0);
}

}  // namespace
}  // namespace pgfanout::faults
