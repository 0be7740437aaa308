// Per-tenant routing into real Postgres targets: every target ends equal to its tenant's
// source rows, through crashes, a dead target, replays and mappings.

#include <fmt/format.h>
#include <signal.h>

#include <functional>
#include <thread>

#include "test/integration/fanout_fixture.h"

namespace pgfanout::testing {
namespace {

using std::chrono::seconds;

TEST_F(FanoutTest, MixedWorkloadReachesEachTenantsDatabaseAndNoOther) {
  StartDaemon();
  Workload(1);
  Workload(2);
  ExpectTargetsEqualSource();
  // The equality above is per tenant; spell out the isolation and the moves anyway.
  EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM users WHERE tenant_id <> '7'", "tenant7"), "0");
  EXPECT_EQ(
      other_pg_->Scalar("SELECT tenant_id || ':' || name FROM users WHERE id = 1001", "tenant9"),
      "9:Ada L.")
      << "the row that moved from tenant 7 to 9 arrives with its latest values";
  EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM users WHERE id = 1001", "tenant7"), "0")
      << "and is gone from tenant 7";
  EXPECT_EQ(pg_->Scalar("SELECT length(bio) FROM users WHERE id = 1050", "tenant8"), "1280000")
      << "the TOASTed value survives updates that did not send it";
  EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM users", "analytics"),
            pg_->Scalar("SELECT count(*) FROM users"));

  auto status = Pgfanout({"status"});
  EXPECT_NE(status.find("sink tenant-7 (postgres) tenants [7]: applied"), std::string::npos)
      << status;
  EXPECT_NE(status.find("sink analytics (postgres) tenants [*]"), std::string::npos) << status;
  EXPECT_EQ(status.find("last error"), std::string::npos) << status;
  StopDaemon();
}

TEST_F(FanoutTest, DeadTargetHoldsBackOnlyItsOwnSinkAndCatchesUp) {
  StartDaemon();
  Workload(1);
  ExpectTargetsEqualSource();
  ASSERT_TRUE(other_pg_->Stop("fast"));  // tenant 9's database goes away
  Workload(2);
  ExpectTargetsEqualSource(seconds(90), {"tenant-9"});
  // The dead sink says what is wrong and when it tries again.
  std::string status;
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  do {
    status = Pgfanout({"status"});
    if (status.find("last error") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  auto at = status.find("sink tenant-9");
  ASSERT_NE(at, std::string::npos) << status;
  auto block = status.substr(at, status.find("sink analytics", at) - at);
  EXPECT_NE(block.find("last error: "), std::string::npos) << status;
  EXPECT_NE(block.find("retrying"), std::string::npos) << status;
  EXPECT_EQ(block.find(", 0 events behind"), std::string::npos)
      << "it is behind while its database is down: " << block;
  ASSERT_TRUE(other_pg_->Restart());
  ExpectTargetsEqualSource();
  StopDaemon();
}

TEST_F(FanoutTest, KillDuringSinkTransactionsLosesAndDuplicatesNothing) {
  StartDaemon({{"PGFANOUT_FAILPOINTS", "sink.mid_write=kill@3"}}, /*wait_backfill=*/false);
  Workload(1);
  int kills = 0;
  for (int round = 0; round < 4; ++round) {
    auto code = daemon_.Wait(seconds(60));
    if (!code) {
      daemon_.Kill(SIGKILL);  // nothing left to write: it never reached the failpoint
      daemon_.Wait(seconds(10));
    } else {
      EXPECT_EQ(*code, -SIGKILL) << "the failpoint kills the daemon inside a sink transaction";
      ++kills;
    }
    if (round == 1) Workload(2);  // more work lands while it is down
    ASSERT_TRUE(daemon_.Start({"run", "--config", config_path_}, log_path_,
                              {{"PGFANOUT_FAILPOINTS", "sink.mid_write=kill@2"}}));
  }
  EXPECT_GE(kills, 3) << "the failpoint must actually interrupt sink transactions";
  daemon_.Kill(SIGKILL);
  daemon_.Wait(seconds(10));
  StartDaemon();
  ExpectTargetsEqualSource();
  // One more change to every tenant's rows, the newest of all: each target's recorded
  // position is then that change, the newest version it holds.
  pg_->Exec("UPDATE users SET counter = coalesce(counter, 0) + 1");
  ExpectTargetsEqualSource();
  for (const auto& t : targets_) {
    EXPECT_EQ(t.server->Scalar("SELECT (commit_lsn - '0/0')::bigint FROM pgfanout_sink_state "
                               "WHERE sink_id = '" +
                                   t.sink_id + "'",
                               t.db),
              t.server->Scalar("SELECT max(pgfanout_version) FROM users", t.db))
        << t.sink_id;
  }
  StopDaemon();
}

TEST_F(FanoutTest, ReplayRebuildsAnEmptiedTargetTable) {
  StartDaemon();
  Workload(1);
  ExpectTargetsEqualSource();
  StopDaemon();
  pg_->Exec("DELETE FROM users; DELETE FROM contact_channels", "tenant7");
  ASSERT_NE(Diff(targets_[0]), "") << "the emptied target must differ before the replay";
  // From the oldest event the log retains.
  auto checkpoint = Pgfanout({"checkpoint"});
  auto at = checkpoint.find("oldest retained ");
  ASSERT_NE(at, std::string::npos) << checkpoint;
  auto from = checkpoint.substr(at + 16, checkpoint.find('#', at) - at - 16);
  int code = -1;
  auto out = Pgfanout({"replay", "--sink", "tenant-7", "--from-lsn", from}, &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(Diff(targets_[0]), "") << out;
  EXPECT_EQ(Diff(targets_[1]), "") << "other sinks are untouched";
  // The daemon resumes normally afterwards.
  StartDaemon();
  Workload(2);
  ExpectTargetsEqualSource();
  StopDaemon();
}

TEST_F(FanoutTest, MappingRenamesSubsetsComputesAndSoftDeletes) {
  AddPeopleSink();
  StartDaemon();
  pg_->Exec(R"sql(
    INSERT INTO users (id, tenant_id, email, name) VALUES
      (1, '7', 'a@example.com', 'A'), (2, '7', 'b@example.com', 'B'),
      (3, '8', 'c@example.com', 'C');
    UPDATE users SET email_confirmed_at = now(), email = 'a2@example.com' WHERE id = 1;
    DELETE FROM users WHERE id = 2;
  )sql");
  const std::string query =
      "SELECT user_id, tenant_id, mail, email_verified, deleted_at IS NOT NULL "
      "FROM crm.people ORDER BY user_id";
  const std::vector<Row> want = {{"1", "7", "a2@example.com", "t", "f"},
                                 {"2", "7", "b@example.com", "f", "t"}};
  std::vector<Row> got;
  auto deadline = std::chrono::steady_clock::now() + seconds(60);
  do {
    got = pg_->Query(query, "tenant7");
    if (got == want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(got, want) << "renamed, subset, computed, soft-deleted; tenant 8's row absent";
  // A row deleted softly comes back when it is inserted again.
  pg_->Exec("INSERT INTO users (id, tenant_id, email) VALUES (2, '7', 'b3@example.com')");
  deadline = std::chrono::steady_clock::now() + seconds(60);
  do {
    got = pg_->Query(query, "tenant7");
    if (got.size() == 2 && got[1][4] == "f") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1], (Row{"2", "7", "b3@example.com", "f", "f"}));
  StopDaemon();
}

TEST_F(FanoutTest, SchemaChangesFlowToCreatedTablesAndAnUnfollowableOneStopsOnlyItsSink) {
  StartDaemon();
  pg_->Exec(R"sql(
    INSERT INTO contact_channels VALUES ('7', 1, 'email', 'a@x'), ('8', 1, 'email', 'b@x');
    ALTER TABLE users ADD COLUMN nickname text;
    INSERT INTO users (id, tenant_id, nickname) VALUES (1, '7', 'ace'), (2, '8', 'bee');
  )sql");
  auto eventually = [&](const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + seconds(60);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return done();
  };
  const std::string nickname = "SELECT nickname FROM users WHERE id = 1";
  EXPECT_TRUE(eventually([&] {
    auto rows = pg_->TryQuery(nickname, "tenant7");
    return rows && rows->size() == 1 && (*rows)[0][0] == "ace";
  })) << "ADD COLUMN reaches a sink that creates its tables";
  pg_->Exec("ALTER TABLE users DROP COLUMN nickname; UPDATE users SET email = 'x' WHERE id = 1");
  EXPECT_TRUE(eventually([&] {
    return pg_->Scalar(
               "SELECT count(*) FROM information_schema.columns WHERE table_name = "
               "'users' AND column_name = 'nickname'",
               "tenant7") == "0";
  })) << "DROP COLUMN too";

  // A type change the target cannot follow where it holds a value that does not convert
  // ('email' is no integer); tenant 8's table holds no row then, so it can.
  pg_->Exec(R"sql(
    DELETE FROM contact_channels WHERE tenant_id = '8';
    ALTER TABLE contact_channels ALTER COLUMN kind TYPE int USING length(kind);
    INSERT INTO contact_channels VALUES ('7', 2, 7, 'c@x'), ('8', 2, 8, 'd@x');
  )sql");
  EXPECT_TRUE(eventually([&] {
    return pg_->Scalar("SELECT kind::text FROM contact_channels WHERE id = 2", "tenant8") == "8";
  })) << "tenant 8's sink follows and goes on";
  std::string status;
  EXPECT_TRUE(eventually([&] {
    status = Pgfanout({"status"});
    return status.find("stopped: needs a person") != std::string::npos;
  })) << status;
  auto at = status.find("sink tenant-7");
  ASSERT_NE(at, std::string::npos) << status;
  auto block = status.substr(at, status.find("sink tenant-8", at) - at);
  EXPECT_NE(block.find("column kind changed type"), std::string::npos) << block;
  EXPECT_NE(block.find("stopped: needs a person"), std::string::npos) << block;
  // The others keep delivering.
  pg_->Exec("INSERT INTO users (id, tenant_id, name) VALUES (3, '8', 'after')");
  EXPECT_TRUE(eventually(
      [&] { return pg_->Scalar("SELECT name FROM users WHERE id = 3", "tenant8") == "after"; }));
  StopDaemon();
}

struct BadMapping {
  const char* name;
  const char* mapping;
  const char* message;
};

class FanoutConfigTest : public FanoutTest, public ::testing::WithParamInterface<BadMapping> {};

TEST_P(FanoutConfigTest, InvalidMappingStopsAtStartWithAClearError) {
  WriteConfig(fmt::format(R"yaml(
  - id: people-7
    type: postgres
    tenants: ["7"]
    dsn: "{}"
    tables:
      - source: users
{})yaml",
                          pg_->Dsn("tenant7"), GetParam().mapping));
  ASSERT_TRUE(daemon_.Start({"run", "--config", config_path_}, log_path_));
  auto code = daemon_.Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "pgfanout kept running with an invalid mapping";
  EXPECT_EQ(*code, 1);
  EXPECT_NE(DaemonLog().find(GetParam().message), std::string::npos) << DaemonLog();
}

INSTANTIATE_TEST_SUITE_P(
    Mappings, FanoutConfigTest,
    ::testing::Values(
        BadMapping{"UnknownColumn", "        columns: [id, tenant_id, emial]\n",
                   "sink people-7, table public.users, column emial: no such column on the "
                   "source"},
        BadMapping{"KeyLeftOut", "        columns: [tenant_id, email]\n",
                   "sink people-7, table public.users, column id: is part of the row's key"},
        BadMapping{"UnknownRename", "        rename: {mail: email}\n",
                   "column mail: rename: no such column on the source"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(FanoutTest, TenantColumnOutsideReplicaIdentityIsRefusedWithTheFix) {
  pg_->Exec("ALTER TABLE users REPLICA IDENTITY DEFAULT");
  ASSERT_TRUE(daemon_.Start({"run", "--config", config_path_}, log_path_));
  auto code = daemon_.Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "pgfanout kept running";
  EXPECT_EQ(*code, 1);
  EXPECT_NE(DaemonLog().find("its tenant column tenant_id is not in the replica identity"),
            std::string::npos)
      << DaemonLog();
  EXPECT_NE(DaemonLog().find("ALTER TABLE \"public\".\"users\" REPLICA IDENTITY FULL;"),
            std::string::npos)
      << DaemonLog();
}

}  // namespace
}  // namespace pgfanout::testing
