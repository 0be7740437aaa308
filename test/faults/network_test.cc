// Network faults between the daemon and the source: connections reset or silenced under it
// (through a TcpProxy), and the daemon frozen for longer than the server's wal_sender_timeout.

#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <random>

#include "test/faults/fault_fixture.h"
#include "test/faults/tcp_proxy.h"

namespace pgfanout::faults {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Transactions of 2 x 1000 ledger rows of tenant a, with negative op ids the workload never
// uses, each held open for 0.2-1 s and then rolled back, one after another. Past
// logical_decoding_work_mem the server streams such a transaction while it runs, so the
// daemon is inside half a transaction most of the time and a reset cuts one. None of their
// rows may reach a sink: the checker counts any that does as unexpected.
class RolledBackStreams {
 public:
  RolledBackStreams(std::string dsn, uint64_t seed) : dsn_(std::move(dsn)), rng_(seed) {
    thread_ = std::thread([this] { Run(); });
  }
  ~RolledBackStreams() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool in_flight() const { return in_flight_; }
  int64_t rolled_back() const { return rolled_back_; }

 private:
  struct ConnCloser {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  using Conn = std::unique_ptr<PGconn, ConnCloser>;

  void Run() {
    std::uniform_real_distribution<double> hold(0.2, 1.0);
    Conn conn;
    while (!stop_) {
      if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
        conn.reset(PQconnectdb(dsn_.c_str()));
        if (PQstatus(conn.get()) != CONNECTION_OK) {
          std::this_thread::sleep_for(100ms);
          continue;
        }
      }
      const std::string sql = fmt::format(
          "BEGIN; {0}; SELECT pg_sleep({1}); {0}",
          "INSERT INTO ledger SELECT 'a', -nextval('big_rollback'), 1, 1, repeat('x', 200) "
          "FROM generate_series(1, 1000)",
          hold(rng_));
      in_flight_ = true;
      PQclear(PQexec(conn.get(), sql.c_str()));
      PQclear(PQexec(conn.get(), "ROLLBACK"));
      in_flight_ = false;
      if (PQstatus(conn.get()) == CONNECTION_OK) ++rolled_back_;
    }
  }

  const std::string dsn_;
  std::mt19937_64 rng_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> in_flight_{false};
  std::atomic<int64_t> rolled_back_{0};
  std::thread thread_;
};

// The daemon reaches the source through a TcpProxy. The source gives up on a silent
// walsender client after 2 s, and streams any transaction past 64 kB while it still runs.
class NetworkTest : public FaultTest {
 protected:
  std::vector<std::string> ServerSettings() const override {
    return {"wal_sender_timeout = 2s", "logical_decoding_work_mem = 64kB"};
  }

  void SetUp() override {
    FaultTest::SetUp();
    if (HasFatalFailure()) return;
    proxy_ = TcpProxy::Start(pg_->port());
    ASSERT_NE(proxy_, nullptr);
    WriteConfig();  // again, now naming the proxy
  }

  std::string SourceDsnForDaemon() const override {
    if (!proxy_) return FaultTest::SourceDsnForDaemon();
    return fmt::format("host=127.0.0.1 port={} user=postgres dbname=postgres", proxy_->port());
  }

  // Waits until the daemon streams from the slot again, through the proxy.
  bool AwaitStreaming(Clock::duration budget) {
    auto deadline = Clock::now() + budget;
    while (Clock::now() < deadline) {
      if (proxy_->connections() > 0 &&
          pg_->Scalar("SELECT count(*) FROM pg_replication_slots WHERE active") == "1") {
        return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  std::unique_ptr<TcpProxy> proxy_;
};

// Every 1-3 s under load, with a big transaction being streamed most of the time, every
// connection between daemon and source is reset (RST); the daemon reconnects by itself and
// converges, and no row of a transaction cut in half and later rolled back reaches a sink.
// Short: 5 resets; full: 50.
TEST_F(NetworkTest, ReconnectsAfterResetMidTransaction) {
  const int resets = Full() ? 50 : 5;
  std::mt19937_64 rng(Seed());
  std::uniform_real_distribution<double> interval(1.0, 3.0);
  pg_->Exec("CREATE SEQUENCE big_rollback");
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(300);
  RolledBackStreams big(pg_->Dsn(), Seed());
  int cut_in_half = 0;
  std::optional<std::pair<std::string, Clock::time_point>> pending;
  for (int i = 0; i < resets; ++i) {
    auto wait =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval(rng)));
    auto until = Clock::now() + wait;
    if (pending) AwaitRecovery(pending->first, pending->second, wait);
    std::this_thread::sleep_until(until);
    ASSERT_TRUE(daemon_.running()) << "pgfanout exited after reset " << i;
    ASSERT_TRUE(AwaitStreaming(60s)) << "pgfanout did not stream again after reset " << i;
    const bool in_flight = big.in_flight();
    auto lsn = NoteFault();
    EXPECT_GT(proxy_->ResetAll(), 0) << "reset " << i << " found no connection to cut";
    pending = {lsn, Clock::now()};
    cut_in_half += in_flight;
  }
  AwaitRecovery(pending->first, pending->second, 60s);
  big.Stop();
  ASSERT_TRUE(daemon_.running()) << "pgfanout exited after the last reset";
  report_.notes = fmt::format(
      "{} of {} resets came while a big transaction was being streamed; {} big transactions "
      "rolled back",
      cut_in_half, resets, big.rolled_back());
  auto report = Finish(Full() ? "connection reset, 50 times" : "connection reset (short)");
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_GT(report.committed, 0);
}

// The daemon is frozen (SIGSTOP) for 6 s, three times wal_sender_timeout, so the server
// ends its walsender. Woken (SIGCONT), the daemon must notice the dead connection,
// reconnect and converge without a restart. Short: 2 rounds; full: 10.
TEST_F(NetworkTest, ReconnectsAfterStopPastWalSenderTimeout) {
  const int rounds = Full() ? 10 : 2;
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(300);
  for (int i = 0; i < rounds; ++i) {
    std::this_thread::sleep_for(2s);
    ASSERT_TRUE(daemon_.running()) << "pgfanout exited before round " << i;
    NoteFault();
    ::kill(daemon_.pid(), SIGSTOP);
    std::this_thread::sleep_for(6s);
    const bool ended = pg_->Scalar("SELECT count(*) FROM pg_replication_slots WHERE active") == "0";
    ::kill(daemon_.pid(), SIGCONT);
    auto since = Clock::now();
    EXPECT_TRUE(ended) << "the server kept the walsender of a client silent for 6 s";
    EXPECT_TRUE(AwaitRecovery(SourceLsn(), since, 60s)) << "no recovery in round " << i;
    ASSERT_TRUE(daemon_.running()) << "pgfanout exited after SIGCONT in round " << i;
  }
  auto report = Finish(Full() ? "SIGSTOP past wal_sender_timeout, 10 times"
                              : "SIGSTOP past wal_sender_timeout (short)");
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_GT(report.committed, 0);
}

// Every connection between daemon and source goes silent for 6 s, three times
// wal_sender_timeout: neither end is told, nothing crosses, not even a close, while a new
// connection would pass. The server ends its walsender. pgfanout has no receive timeout of
// its own, so it learns that its connection is dead only once the path heals (the held
// bytes arrive, then the server's close); it must then reconnect and converge. Recovery is
// measured from the heal. Short: 2 rounds; full: 10.
TEST_F(NetworkTest, ReconnectsAfterSilencePastWalSenderTimeout) {
  const int rounds = Full() ? 10 : 2;
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(300);
  for (int i = 0; i < rounds; ++i) {
    std::this_thread::sleep_for(2s);
    ASSERT_TRUE(daemon_.running()) << "pgfanout exited before round " << i;
    ASSERT_TRUE(AwaitStreaming(60s)) << "pgfanout did not stream again before round " << i;
    NoteFault();
    proxy_->SetBlackhole(true);
    std::this_thread::sleep_for(6s);
    const bool ended = pg_->Scalar("SELECT count(*) FROM pg_replication_slots WHERE active") == "0";
    proxy_->SetBlackhole(false);
    auto since = Clock::now();
    EXPECT_TRUE(ended) << "the server kept the walsender of a client silent for 6 s";
    EXPECT_TRUE(AwaitRecovery(SourceLsn(), since, 60s)) << "no recovery in round " << i;
    ASSERT_TRUE(daemon_.running()) << "pgfanout exited after the path healed, round " << i;
  }
  auto report = Finish(Full() ? "silent connection past wal_sender_timeout, 10 times"
                              : "silent connection past wal_sender_timeout (short)");
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_GT(report.committed, 0);
}

}  // namespace
}  // namespace pgfanout::faults
