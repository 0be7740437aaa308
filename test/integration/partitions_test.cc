// Partitioned source tables: tracked by their root, with the publication publishing
// through it (publish_via_partition_root), into the JSONL sink; and the setups pgfanout
// must refuse before it publishes anything, because their changes would reach the sinks
// wrong or not at all.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "test/integration/tailer_fixture.h"
#include "test/support/http_client.h"

namespace pgfanout::testing {
namespace {

class PartitionsTest : public TailerTest {
 protected:
  void SetUp() override {
    TailerTest::SetUp();
    if (HasFatalFailure()) return;
    // users by RANGE of its key, teams by LIST of its tenant (the tenant in the key, as a
    // partition key must be).
    pg_->Exec(R"sql(
      DROP TABLE users, teams;
      CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, name text,
                          score numeric, active boolean, bio text) PARTITION BY RANGE (id);
      CREATE TABLE users_low PARTITION OF users FOR VALUES FROM (MINVALUE) TO (1000);
      CREATE TABLE users_high PARTITION OF users FOR VALUES FROM (1000) TO (MAXVALUE);
      CREATE TABLE teams (id int, tenant_id text NOT NULL, title text,
                          PRIMARY KEY (id, tenant_id)) PARTITION BY LIST (tenant_id);
      CREATE TABLE teams_a PARTITION OF teams FOR VALUES IN ('a');
      CREATE TABLE teams_rest PARTITION OF teams DEFAULT;
    )sql");
  }

  // Expects a refusal before any slot, and before any publication but `publications`
  // made by the test; returns the log.
  std::string RunExpectingRefusal(const std::string& publications = "0") {
    std::string log = TailerTest::RunExpectingRefusal();
    EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM pg_publication"), publications)
        << "nothing may be published before the checks pass";
    EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM pg_replication_slots"), "0");
    return log;
  }

  // Changes in every partition, rows moving between partitions, a root TRUNCATE.
  void Workload() {
    pg_->Exec(R"sql(
      INSERT INTO users SELECT i, 't' || (i % 3), 'u' || i, i * 0.5, i % 2 = 0, NULL
        FROM generate_series(1, 40) i;
      INSERT INTO users SELECT 1000 + i, 't1', 'high', 1, true, 'x' FROM generate_series(1, 20) i;
      INSERT INTO teams SELECT i, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END, 'team ' || i
        FROM generate_series(1, 30) i;
      UPDATE users SET id = id + 2000, name = 'moved up' WHERE id IN (3, 4, 5);
      UPDATE users SET id = id - 500 WHERE id IN (1011, 1012);
      UPDATE users SET score = score + 1 WHERE id > 1000;
      UPDATE teams SET tenant_id = 'a', title = 'moved in' WHERE id IN (1, 3);
      UPDATE teams SET tenant_id = 'c' WHERE id = 2;
      DELETE FROM users WHERE id % 7 = 0;
      DELETE FROM teams WHERE id = 4;
    )sql");
  }
};

TEST_F(PartitionsTest, ChangesInEveryPartitionArriveUnderTheRootsName) {
  StartDaemon();
  Workload();
  ExpectSinkEqualsSource();
  EXPECT_EQ(pg_->Scalar("SELECT pubviaroot FROM pg_publication WHERE pubname = 'pgfanout_test'"),
            "t");
  // A TRUNCATE of the root is sent, as the root's.
  pg_->Exec("TRUNCATE teams");
  pg_->Exec("INSERT INTO teams VALUES (100, 'a', 'after'), (101, 'z', 'after')");
  ExpectSinkEqualsSource();
  StopDaemon();
  checker_.Load(jsonl_path_);
  for (const char* leaf : {"users_low", "users_high", "teams_a", "teams_rest"}) {
    EXPECT_EQ(checker_.Rows(std::string("public.") + leaf).size(), 0u)
        << "no event may name a partition";
  }
}

TEST_F(PartitionsTest, RefusesARootWhosePartitionsReplicaIdentityDiffers) {
  // REPLICA IDENTITY FULL on the root does not reach the partitions; PostgreSQL would send
  // their key-only old rows flagged as whole rows.
  pg_->Exec("ALTER TABLE users REPLICA IDENTITY FULL");
  std::string log = RunExpectingRefusal();
  EXPECT_NE(log.find("ALTER TABLE \"public\".\"users_low\" REPLICA IDENTITY FULL;"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("\"public\".\"users_high\""), std::string::npos) << log;
  pg_->Exec(
      "ALTER TABLE users_low REPLICA IDENTITY FULL; "
      "ALTER TABLE users_high REPLICA IDENTITY FULL");
  StartDaemon();
  Workload();
  ExpectSinkEqualsSource();
  StopDaemon();
}

TEST_F(PartitionsTest, RefusesARootTrackedWithOneOfItsPartitions) {
  EditConfig("name: public.teams", "name: public.users_high");
  std::string log = RunExpectingRefusal();
  EXPECT_NE(log.find("lists both public.users and its partition public.users_high"),
            std::string::npos)
      << log;
}

TEST_F(PartitionsTest, RefusesAPublicationWithoutPublishViaPartitionRootAndNamesTheFix) {
  // A DBA made the publication the way that suits plain tables.
  pg_->Exec("CREATE PUBLICATION pgfanout_test FOR TABLE users, teams");
  std::string log = RunExpectingRefusal("1");
  EXPECT_NE(log.find("ALTER PUBLICATION \"pgfanout_test\" SET (publish_via_partition_root = "
                     "true);"),
            std::string::npos)
      << log;
  pg_->Exec("ALTER PUBLICATION pgfanout_test SET (publish_via_partition_root = true)");
  StartDaemon();
  Workload();
  ExpectSinkEqualsSource();
  StopDaemon();
}

TEST_F(PartitionsTest, RefusesAPartitionedTableUnderWal2Json) {
  EditConfig("decoder: pgoutput", "decoder: wal2json");
  std::string log = RunExpectingRefusal();
  EXPECT_NE(log.find("table public.users is partitioned, which source.decoder wal2json cannot "
                     "follow"),
            std::string::npos)
      << log;
}

// PostgreSQL sends nothing for these, so the sinks may differ from the root afterwards:
// each must be reported in the log with the fix, counted and shown in /status.
TEST_F(PartitionsTest, PartitionChangesTheStreamDoesNotCarryAreReportedWithTheFix) {
  EditConfig("listen: \"127.0.0.1:0\"", "listen: \"127.0.0.1:0\"\n  sample_interval: 200ms");
  StartDaemon();
  const std::string address = HttpAddress();
  Workload();
  ExpectSinkEqualsSource();
  auto changes = [&] {
    auto body = nlohmann::json::parse(HttpGet(address, "/status").body, nullptr, false);
    std::set<std::string> out;
    if (body.is_discarded()) return out;
    for (const auto& c : body["partition_changes"]) {
      out.insert(c["partition"].get<std::string>() + " " + c["change"].get<std::string>());
    }
    return out;
  };
  auto wait_for = [&](const std::string& change) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!changes().count(change) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return changes().count(change) == 1;
  };
  // The samples before any change report none (a plain table is not watched at all).
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_TRUE(changes().empty()) << HttpGet(address, "/status").body;

  pg_->Exec("ALTER TABLE users DETACH PARTITION users_high");
  EXPECT_TRUE(wait_for("public.users_high removed")) << HttpGet(address, "/status").body;
  pg_->Exec("TRUNCATE teams_a");
  EXPECT_TRUE(wait_for("public.teams_a truncated or rewritten"))
      << HttpGet(address, "/status").body;
  pg_->Exec("ALTER TABLE users ATTACH PARTITION users_high FOR VALUES FROM (1000) TO (MAXVALUE)");
  EXPECT_TRUE(wait_for("public.users_high added")) << HttpGet(address, "/status").body;
  // A partition made with another replica identity than its root's.
  pg_->Exec(
      "BEGIN; CREATE TABLE teams_b PARTITION OF teams FOR VALUES IN ('b2'); "
      "ALTER TABLE teams_b REPLICA IDENTITY FULL; COMMIT");
  EXPECT_TRUE(wait_for("public.teams_b identity")) << HttpGet(address, "/status").body;

  const std::string log = DaemonLog();
  EXPECT_NE(log.find("partition public.users_high was detached or dropped"), std::string::npos)
      << log;
  EXPECT_NE(log.find("partition public.teams_a was truncated or rewritten"), std::string::npos)
      << log;
  EXPECT_NE(log.find("pgfanout copies public.users again for every sink that receives it"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("new partition public.teams_b"), std::string::npos) << log;
  const auto metrics = HttpGet(address, "/metrics").body;
  EXPECT_EQ(MetricValue(metrics,
                        "pgfanout_partition_changes_total{table=\"public.users\","
                        "change=\"removed\"}"),
            1)
      << metrics;
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing
