// `pgfanout resnapshot` (POST /resnapshot) on the Postgres sinks of the shared scenarios:
// one sink's rows copied again while every sink, that one included, keeps streaming.

#include <fmt/format.h>
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "test/integration/postgres_e2e_fixture.h"
#include "test/support/daemon_process.h"
#include "test/support/http_client.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kToken = "resnapshot-test-token";

class ResnapshotTest : public PostgresE2ETest {
 protected:
  void SetUp() override {
    PostgresE2ETest::SetUp();
    if (HasFatalFailure()) return;
    UseHttpToken(kToken);
    // Small chunks and a round per chunk: the copy below takes many rounds.
    extra_yaml_ = "delivery:\n  copy_chunk_rows: 500\n  copy_round: 1ms\n";
  }

  HttpReply Post(const std::string& address, const std::string& query) {
    return HttpSend(address, "POST", "/resnapshot?" + query,
                    {{"Authorization", std::string("Bearer ") + kToken}});
  }

  // /status of one sink; null when it cannot be read.
  nlohmann::json SinkStatus(const std::string& address, const std::string& id) {
    auto r = HttpGet(address, "/status?sink=" + id,
                     {{"Authorization", std::string("Bearer ") + kToken}});
    if (r.status != 200) return nullptr;
    auto doc = nlohmann::json::parse(r.body, nullptr, false);
    if (doc.is_discarded() || doc["sinks"].empty()) return nullptr;
    return doc["sinks"][0];
  }
};

// pg-t1's target is damaged (rows lost, rows changed, a row the source never had), then
// its accounts are copied again under the background workload, many rounds of one chunk.
// While the copy runs, pg-t1's own cursor moves (its stream goes on between rounds); the
// daemon is killed -9 in the middle and the copy resumes at the next start. At the end
// every sink equals the source, pg-t1 included.
TEST_F(ResnapshotTest, ACopyAskedWhileStreamingRepairsASinkThroughAKill) {
  pg_->Exec(
      "INSERT INTO accounts (tenant_id, id, name, balance, active) "
      "SELECT 't1', 200000 + i, 'bulk ' || i, i, true FROM generate_series(1, 20000) i");
  StartDaemon();
  Workload(1);
  ExpectSinkEqualsSource("pg-t1", {"t1"}, 180s);
  ExpectSinkEqualsSource("pg-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("pg-all", {});
  pg_->Exec("DELETE FROM accounts WHERE id BETWEEN 200001 AND 200050", "tenant_1");
  pg_->Exec("UPDATE accounts SET name = 'damaged' WHERE id BETWEEN 210001 AND 210050", "tenant_1");
  pg_->Exec(
      "INSERT INTO accounts (tenant_id, id, name, pgfanout_version) VALUES ('t1', 999999, 'stray', "
      "1)",
      "tenant_1");
  const std::string address = HttpAddress(1);
  ASSERT_FALSE(address.empty());

  EXPECT_EQ(HttpSend(address, "POST", "/resnapshot?sink=pg-t1").status, 401);
  EXPECT_EQ(Post(address, "sink=nope").status, 404);
  auto unknown = Post(address, "sink=pg-t1&table=public.nope");
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  EXPECT_EQ(HttpGet(address, "/resnapshot?sink=pg-t1",
                    {{"Authorization", std::string("Bearer ") + kToken}})
                .status,
            405);

  StartBackground(20);
  auto asked = Post(address, "sink=pg-t1&table=accounts");
  ASSERT_EQ(asked.status, 202) << asked.body;
  EXPECT_NE(asked.body.find("public.accounts"), std::string::npos) << asked.body;
  auto again = Post(address, "sink=pg-t1");
  EXPECT_EQ(again.status, 409) << again.body;

  // Watch pg-t1 while its copy runs: its cursor must move between rounds.
  std::set<std::string> cursors_while_copying;
  uint64_t rounds = 0;
  for (auto deadline = std::chrono::steady_clock::now() + 120s;
       std::chrono::steady_clock::now() < deadline && rounds < 8;
       std::this_thread::sleep_for(50ms)) {
    auto st = SinkStatus(address, "pg-t1");
    if (st.is_null() || st["resnapshot"].is_null()) continue;
    rounds = st["resnapshot"]["rounds"].get<uint64_t>();
    if (rounds > 0 && st["cursor"].is_string()) {
      cursors_while_copying.insert(st["cursor"].get<std::string>());
    }
  }
  ASSERT_GE(rounds, 8u) << "the copy ended before the kill (too few rounds to see it run)";
  EXPECT_GE(cursors_while_copying.size(), 2u)
      << "pg-t1's cursor did not move while its copy ran: its stream waited for the copy";

  KillDaemon();
  StartDaemon();
  const std::string after = HttpAddress(2);
  ASSERT_FALSE(after.empty());
  bool done = false;
  for (auto deadline = std::chrono::steady_clock::now() + 180s;
       std::chrono::steady_clock::now() < deadline && !done; std::this_thread::sleep_for(200ms)) {
    auto st = SinkStatus(after, "pg-t1");
    done = !st.is_null() && st["resnapshot"].is_null();
  }
  ASSERT_TRUE(done) << "the resnapshot never finished after the restart";
  EXPECT_NE(DaemonLog().find("resnapshot of public.accounts done"), std::string::npos);

  // The command line, with --wait, on another sink.
  std::string output;
  EXPECT_EQ(RunPgfanout({"resnapshot", "--config", config_path_, "--sink", "pg-t23", "--address",
                         after, "--wait"},
                        &output),
            0)
      << output;
  EXPECT_NE(output.find("done: sink pg-t23"), std::string::npos) << output;

  StopBackground();
  ExpectSinkEqualsSource("pg-t1", {"t1"});
  ExpectSinkEqualsSource("pg-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("pg-all", {});
  StopDaemon();
}

// The signal table: rows inserted in one transaction ask for copies, which are taken in
// commit order (pg-t1's accounts before its events), survive a kill -9 once they are in
// the log but not yet handed to the sinks (the server does not send them again), and
// repair what the stream alone never would (rows deleted from the targets). A row naming
// no sink is dropped with a log line, and holds up no other request.
TEST_F(ResnapshotTest, SignalRowsAskForCopiesInCommitOrderThroughAKill) {
  source_yaml_ = "  signal_table: public.pgfanout_signals\n";
  daemon_env_ = {{"PGFANOUT_FAILPOINTS", "signals.before_pump=kill"}};
  StartDaemon();
  Workload(1);
  ExpectSinkEqualsSource("pg-t1", {"t1"});
  ExpectSinkEqualsSource("pg-t23", {"t2", "t3"});
  pg_->Exec("DELETE FROM accounts", "tenant_1");
  pg_->Exec("DELETE FROM events", "tenant_1");
  pg_->Exec("UPDATE accounts SET name = 'damaged'", "tenants_23");
  pg_->Exec(
      "INSERT INTO pgfanout_signals (sink_id, table_name) VALUES ('pg-t1', 'public.accounts'), "
      "('nope', NULL), ('pg-t1', 'events'), ('pg-t23', NULL)");
  EXPECT_EQ(daemon_.Wait(30s), -SIGKILL) << "the failpoint did not fire";
  daemon_env_.clear();
  StartDaemon();
  Workload(2);
  ExpectSinkEqualsSource("pg-t1", {"t1"});
  ExpectSinkEqualsSource("pg-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("pg-all", {});
  const std::string log = DaemonLog();
  EXPECT_NE(log.find("no sink nope"), std::string::npos) << "the bad row was not reported";
  const size_t accounts = log.find("sink pg-t1: resnapshot of public.accounts asked (signal");
  const size_t events = log.find("sink pg-t1: resnapshot of public.events asked (signal");
  ASSERT_NE(accounts, std::string::npos);
  ASSERT_NE(events, std::string::npos);
  EXPECT_LT(accounts, events) << "pg-t1's requests were not taken in commit order";
  EXPECT_NE(log.find("sink pg-t23: resnapshot of public.accounts, public.events asked (signal"),
            std::string::npos);
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing
