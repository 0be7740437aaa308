// A sink's own row predicate (sinks[].tables[].where, src/core/predicate.h) on the Postgres
// sinks of the shared scenarios: pg-t1 takes accounts with balance >= 10 and events of
// two kinds, pg-t23 events that are not background ones, pg-all everything. Rows move in
// and out of the predicates by updates (with TOASTed values left alone, and under both
// replica identities); the first copy, a resnapshot and `pgfanout verify` apply the same
// predicate, and `resnapshot --where` copies only its own rows and removes none. The
// expected rows come from SQL written here, not from pgfanout's rendering.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "test/integration/postgres_e2e_fixture.h"
#include "test/support/daemon_process.h"
#include "test/support/http_client.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kToken = "sink-where-test-token";

class SinkWhereTest : public PostgresE2ETest {
 protected:
  void SetUp() override {
    PostgresE2ETest::SetUp();
    if (HasFatalFailure()) return;
    UseHttpToken(kToken);
    expected_where_["pg-t1"] = {{"accounts", "balance >= 10"},
                                {"events", "kind IN ('created', 'last')"}};
    expected_where_["pg-t23"] = {{"events", "kind <> 'bg'"}};
  }

  std::string SinksYaml() override {
    std::string out = PostgresE2ETest::SinksYaml();
    auto add = [&](const std::string& id, const std::string& tables) {
      const std::string head = "  - id: " + id + "\n";
      const size_t at = out.find(head);
      const size_t next = out.find("  - id: ", at + head.size());
      out.insert(next == std::string::npos ? out.size() : next, "    tables:\n" + tables);
    };
    add("pg-t1", "      - source: accounts\n        where: \"" + t1_accounts_where_ +
                     "\"\n"
                     "      - source: events\n        where: \"kind IN ('created', 'last')\"\n");
    add("pg-t23",
        "      - source: accounts\n"
        "      - source: events\n        where: \"NOT kind = 'bg'\"\n");
    return out;
  }

  std::string t1_accounts_where_ = "balance >= 10";
};

TEST_F(SinkWhereTest, EachSinkHoldsItsPredicatesRowsInTheStreamACopyAndAVerify) {
  // Before the start: the first copy applies the predicates.
  Workload(1);
  StartDaemon();
  Workload(2);
  StartBackground(20);
  // Out of pg-t1's accounts, and in again with the TOASTed note left alone (the old row is
  // not sent under the default identity: the runner reads the row from the source).
  pg_->Exec("UPDATE accounts SET balance = 0 WHERE id % 4 = 1 AND balance >= 10");
  // events are REPLICA IDENTITY FULL: the old row says whether it was pg-t1's.
  pg_->Exec("UPDATE events SET kind = 'created' WHERE kind = 'moved'");
  pg_->Exec("UPDATE events SET kind = 'archived' WHERE id % 6 = 0 AND kind = 'created'");
  Workload(3);
  pg_->Exec("UPDATE accounts SET balance = 1 WHERE length(note) > 10000");
  pg_->Exec("UPDATE accounts SET balance = 99 WHERE length(note) > 10000 AND id < 3000");
  std::this_thread::sleep_for(1s);
  StopBackground();
  EXPECT_GT(std::stoi(pg_->Scalar("SELECT count(*) FROM accounts WHERE tenant_id = 't1' AND "
                                  "balance < 10")),
            5)
      << "the scenario must keep some of pg-t1's rows out";
  for (const char* balance : {"1", "99"}) {
    EXPECT_GT(std::stoi(pg_->Scalar(fmt::format(
                  "SELECT count(*) FROM accounts WHERE tenant_id = 't1' AND balance = {} AND "
                  "length(note) > 10000",
                  balance))),
              0)
        << "the scenario must take rows with a TOASTed note out, and bring some in again: "
        << pg_->Scalar(
               "SELECT string_agg(tenant_id || ':' || id || ':' || balance, ' ') FROM "
               "accounts WHERE length(note) > 10000");
  }
  ExpectSinkEqualsSource("pg-t1", {"t1"});
  ExpectSinkEqualsSource("pg-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("pg-all", {});
  EXPECT_GT(std::stoi(pg_->Scalar("SELECT count(*) FROM events WHERE kind = 'bg'")), 0);

  // verify compares with the predicate's rows.
  std::string out;
  EXPECT_EQ(RunPgfanout({"verify", "--config", config_path_, "--sink", "pg-t1"}, &out), 0) << out;
  EXPECT_NE(out.find("sink pg-t1: in sync"), std::string::npos) << out;

  // Damage pg-t1: a row lost, and a row outside its predicate; a resnapshot copies only
  // the predicate's rows and sweeps the rest.
  pg_->Exec("DELETE FROM accounts WHERE id IN (SELECT id FROM accounts LIMIT 3)", "tenant_1");
  pg_->Exec(
      "INSERT INTO accounts (tenant_id, id, name, balance, pgfanout_version) VALUES "
      "('t1', 999999, 'outside', 1, 1)",
      "tenant_1");
  EXPECT_NE(RunPgfanout({"verify", "--config", config_path_, "--sink", "pg-t1"}, &out), 0) << out;
  ASSERT_EQ(RunPgfanout({"resnapshot", "--config", config_path_, "--sink", "pg-t1", "--address",
                         HttpAddress(1), "--wait"},
                        &out),
            0)
      << out;
  ExpectSinkEqualsSource("pg-t1", {"t1"});
  EXPECT_EQ(RunPgfanout({"verify", "--config", config_path_, "--sink", "pg-t1"}, &out), 0) << out;

  // resnapshot --where: only the rows it holds for come back, and nothing is removed.
  std::vector<std::pair<std::string, bool>> lost;  // id, whether --where covers it
  for (const auto& r : pg_->Query("DELETE FROM accounts WHERE id % 3 = 0 RETURNING id, "
                                  "balance >= 20",
                                  "tenant_1")) {
    lost.emplace_back(*r[0], *r[1] == "t");
  }
  ASSERT_GT(std::count_if(lost.begin(), lost.end(), [](auto& l) { return l.second; }), 1);
  ASSERT_GT(std::count_if(lost.begin(), lost.end(), [](auto& l) { return !l.second; }), 1);
  pg_->Exec(
      "INSERT INTO accounts (tenant_id, id, name, balance, pgfanout_version) VALUES "
      "('t1', 999998, 'stray', 30, 1)",
      "tenant_1");
  ASSERT_EQ(
      RunPgfanout({"resnapshot", "--config", config_path_, "--sink", "pg-t1", "--table", "accounts",
                   "--where", "balance >= 20", "--address", HttpAddress(1), "--wait"},
                  &out),
      0)
      << out;
  for (const auto& [id, covered] : lost) {
    EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM accounts WHERE id = " + id, "tenant_1"),
              covered ? "1" : "0")
        << "row " << id
        << (covered ? " is in the where and was not copied"
                    : " is outside the where and was copied");
  }
  EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM accounts WHERE id = 999998", "tenant_1"), "1")
      << "a copy limited by where removes nothing";
  // A where that does not fit the table: the request is dropped, and --wait says so.
  EXPECT_EQ(
      RunPgfanout({"resnapshot", "--config", config_path_, "--sink", "pg-t1", "--table", "accounts",
                   "--where", "nosuch = 1", "--address", HttpAddress(1), "--wait"},
                  &out),
      1)
      << out;
  EXPECT_NE(out.find("dropped: sink pg-t1: table public.accounts: the copy's where: no column "
                     "nosuch"),
            std::string::npos)
      << out;
  StopDaemon();
}

TEST_F(SinkWhereTest, APredicateThatDoesNotFitTheTableStopsTheSinkWithItsReason) {
  // name is text: a number is refused when the sink first sees the table, not guessed.
  t1_accounts_where_ = "name = 10";
  StartDaemon();
  Workload(1);
  const std::string reason =
      "table public.accounts: where: column name: is text; compare it with 'quoted text'";
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline &&
         DaemonLog().find(reason) == std::string::npos) {
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_NE(DaemonLog().find(reason), std::string::npos) << DaemonLog();
  // The other sinks go on.
  ExpectSinkEqualsSource("pg-all", {});
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing
