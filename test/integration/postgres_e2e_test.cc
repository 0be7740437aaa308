// The shared sink scenarios (sink_e2e_fixture.h) for the Postgres sink: one target database
// per tenant group on the source's cluster, and one with every tenant.

#include <fmt/format.h>

#include <thread>

#include "test/integration/postgres_e2e_fixture.h"

namespace pgfanout::testing {
namespace {

TEST_F(PostgresE2ETest, MixedWorkloadReachesEachSinkAsTheSourceHasIt) {
  StartDaemon();
  for (int round = 1; round <= 3; ++round) Workload(round);
  ExpectSinkEqualsSource("pg-t1", {"t1"});
  ExpectSinkEqualsSource("pg-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("pg-all", {});
  StopDaemon();
}

TEST_F(PostgresE2ETest, KillNineLoopLosesAndDuplicatesNothing) {
  StartDaemon();
  Workload(1);
  KillLoop(8, {{"pg-t1", {"t1"}}, {"pg-t23", {"t2", "t3"}}, {"pg-all", {}}});
  StopDaemon();
}

// The walsender can send a commit before the committing backend leaves the procarray: a
// synchronous commit waiting for its standby sits between the two, and on a busy primary
// the gap is brief but real (a CI run lost a row to it). A row moving in to pg-t23 with
// an unchanged TOASTed note is read from the source by key; that read must wait until the
// commit is visible, not find nothing and drop the row.
TEST_F(PostgresE2ETest, ARowMovedInByACommitNotVisibleYetIsReadOnceItIs) {
  pg_->Exec(
      "INSERT INTO accounts (tenant_id, id, name, note) VALUES ('t4', 7001, 'elsewhere', "
      "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 3200)))");
  StartDaemon();
  // Every sink past its first copy and streaming (a copy's commits would wait below too).
  ExpectSinkEqualsSource("pg-all", {});
  ExpectSinkEqualsSource("pg-t1", {"t1"});
  ExpectSinkEqualsSource("pg-t23", {"t2", "t3"});
  // No standby is named 'nobody': every commit now waits, written and sent but not visible.
  pg_->Exec("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
  pg_->Exec("SELECT pg_reload_conf()");
  std::thread mover([&] {
    pg_->Exec("UPDATE accounts SET tenant_id = 't3' WHERE tenant_id = 't4' AND id = 7001");
  });
  std::this_thread::sleep_for(std::chrono::seconds(3));  // pgfanout reads the row meanwhile
  EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM accounts WHERE tenant_id = 't3' AND id = 7001"), "0")
      << "the move must not be visible while its commit waits";
  pg_->Exec("ALTER SYSTEM RESET synchronous_standby_names");
  pg_->Exec("SELECT pg_reload_conf()");
  mover.join();
  ExpectSinkEqualsSource("pg-t23", {"t2", "t3"});
  StopDaemon();
}

// The same tables partitioned (sink_e2e_fixture.cc, kPartitionedSchema): the publication
// publishes through the roots, so the sinks see accounts and events whatever partition a
// row is in, and the first copy reads through the roots.
class PostgresPartitionedE2ETest : public PostgresE2ETest {
 protected:
  PostgresPartitionedE2ETest() { partitioned_ = true; }
};

TEST_F(PostgresPartitionedE2ETest, RowsOfEveryPartitionReachEachSinkUnderTheRootsName) {
  Workload(1);  // copied by the first snapshot, through the roots
  StartDaemon();
  Workload(2);  // rows moving to another tenant move to another partition
  // A row moving from a tenant no sink of t3 took (t4) to t3 within one partition (the
  // DEFAULT one), its TOASTed note left alone: an UPDATE whose new row lacks the note.
  // pg-t23 receives it as an insert and reads the note from the source by key, which for
  // a partitioned root must not be FROM ONLY (that finds no row, and the insert is dropped).
  pg_->Exec(
      "INSERT INTO accounts (tenant_id, id, name, note) VALUES ('t4', 7001, 'elsewhere', "
      "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 3200)))");
  pg_->Exec("UPDATE accounts SET tenant_id = 't3' WHERE tenant_id = 't4' AND id = 7001");
  ASSERT_EQ(pg_->Scalar("SELECT count(*) FROM accounts_other WHERE id = 7001"), "1");
  // A partition made while streaming, as time partitions are made ahead of their range.
  pg_->Exec(
      "CREATE TABLE events_next PARTITION OF events FOR VALUES FROM (100000) TO "
      "(1000000000); ALTER TABLE events_next REPLICA IDENTITY FULL");
  pg_->Exec(
      "INSERT INTO events SELECT 100000 + i, 't' || (1 + i % 3), 'next', NULL "
      "FROM generate_series(1, 30) i; "
      "UPDATE events SET tenant_id = 't1', kind = 'moved' WHERE id = 100002; "
      "DELETE FROM events WHERE id = 100004");
  Workload(3);
  ExpectSinkEqualsSource("pg-t1", {"t1"});
  ExpectSinkEqualsSource("pg-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("pg-all", {});
  // The new partition's rows are there (the comparison above covers them too).
  EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM events WHERE id > 100000", "everyone"), "26");
  StopDaemon();
}

// What PostgreSQL does not send for a partitioned root (a partition truncated, detached,
// or attached with rows) is repaired: the monitor sees it and every sink of the table
// copies it again, replacing, so each ends equal to the root's rows. Without the copy the
// sinks keep t1's truncated and t2's detached accounts and lack the attached events.
TEST_F(PostgresPartitionedE2ETest, PartitionChangesTheStreamDoesNotCarryAreRepairedByACopy) {
  http_yaml_ = "  sample_interval: 200ms\n";
  Workload(1);
  StartDaemon();
  Workload(2);
  ExpectSinkEqualsSource("pg-t1", {"t1"});
  ExpectSinkEqualsSource("pg-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("pg-all", {});
  ASSERT_NO_FATAL_FAILURE(ChangePartitionsUnseenByTheStream());
  ExpectSinkEqualsSource("pg-t1", {"t1"});
  ExpectSinkEqualsSource("pg-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("pg-all", {});
  const std::string log = DaemonLog();
  EXPECT_NE(log.find("partition public.events_more was attached with rows"), std::string::npos);
  EXPECT_NE(log.find("resnapshot of public.accounts asked (partition change)"), std::string::npos);
  StopDaemon();
}

TEST_F(PostgresPartitionedE2ETest, KillNineLoopLosesAndDuplicatesNothing) {
  StartDaemon();
  Workload(1);
  KillLoop(6, {{"pg-t1", {"t1"}}, {"pg-t23", {"t2", "t3"}}, {"pg-all", {}}});
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing
