// Where each sink resumes, and what it holds when it does: a destination's own position
// is trusted only by the event log that wrote it (a new state dir copies the rows again),
// `pgfanout backfill` copies whatever the target holds, a sink retention dropped comes
// back with a backfill, and a moved row keeps a TOASTed value through a later key change.

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "test/integration/fanout_fixture.h"

namespace pgfanout::testing {
namespace {

using std::chrono::seconds;

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The repro of the review: the targets hold rows and positions of an earlier state dir;
// the slot is dropped, the source changes, and pgfanout starts on a new state dir. The
// positions the targets hold name another event log: not trusted, so every sink copies
// its tenants' rows again, replacing what its target holds (the deleted row goes too).
TEST_F(FanoutTest, ANewStateDirCopiesEveryTenantAgainInsteadOfTrustingTheTargets) {
  StartDaemon();
  Workload(1);
  ExpectTargetsEqualSource();
  StopDaemon();
  pg_->Exec("SELECT pg_drop_replication_slot('pgfanout_test')");
  // Changes no event log will ever see.
  pg_->Exec(R"sql(
    INSERT INTO users (id, tenant_id, name) VALUES (90001, '7', 'new 7'), (90002, '9', 'new 9'),
                                                   (90003, '8', 'new 8');
    UPDATE users SET name = 'changed while no log ran' WHERE id = 1002;
    DELETE FROM users WHERE id = 1050;
    DELETE FROM contact_channels WHERE tenant_id = '9';
  )sql");
  std::filesystem::remove_all(work_dir_ + "/state");
  StartDaemon();
  ExpectTargetsEqualSource();
  const std::string log = DaemonLog();
  EXPECT_EQ(Count(log, "not resuming from the position its destination holds"), targets_.size())
      << "each sink says why, once:\n"
      << log;
  EXPECT_NE(log.find("it was written by another event log"), std::string::npos) << log;
  // And it streams on from there.
  Workload(2);
  ExpectTargetsEqualSource();
  StopDaemon();
}

// Asked for, a backfill copies: whatever the target holds is replaced by the source's
// rows of the sink's tenants (rows changed or added by hand included), and the stream goes
// on after it with nothing applied twice.
TEST_F(FanoutTest, BackfillCommandCopiesWhateverTheTargetHolds) {
  StartDaemon();
  Workload(1);
  ExpectTargetsEqualSource();
  StopDaemon();
  pg_->Exec(R"sql(
    UPDATE users SET name = 'tampered', pgfanout_version = pgfanout_version + 1000000;
    DELETE FROM contact_channels WHERE id = 1002;
    INSERT INTO users (id, tenant_id, name, pgfanout_version) VALUES (99999, '8', 'stray', 1);
  )sql",
            "tenant8");
  ASSERT_NE(Diff(targets_[1]), "");
  int code = -1;
  auto out = Pgfanout({"backfill", "--sink", "tenant-8"}, &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(Diff(targets_[1]), "") << out;
  StartDaemon();
  Workload(2);
  ExpectTargetsEqualSource();
  StopDaemon();
}

// log.lagging_sinks: drop trims events a dead sink never took; the sink stops and says it
// needs a fresh snapshot. `pgfanout backfill --sink` is that snapshot: it moves the
// sink's cursor to the snapshot's point, past what was trimmed, so the sink runs again.
TEST_F(FanoutTest, ASinkRetentionDroppedComesBackWithABackfill) {
  log_section_ = "  retain: 1s\n  lagging_sinks: drop\n";
  WriteConfig();
  StartDaemon();
  Workload(1);
  ExpectTargetsEqualSource();
  ASSERT_TRUE(other_pg_->Stop("fast"));  // tenant 9's database goes away
  Workload(2);
  ExpectTargetsEqualSource(seconds(90), {"tenant-9"});
  const auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (DaemonLog().find("sink tenant-9 was") == std::string::npos) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "retention never trimmed past tenant-9:\n"
        << DaemonLog();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  StopDaemon();
  ASSERT_TRUE(other_pg_->StartAgain());
  int code = -1;
  auto out = Pgfanout({"backfill", "--sink", "tenant-9"}, &code);
  ASSERT_EQ(code, 0) << out;
  StartDaemon();
  Workload(3);
  ExpectTargetsEqualSource();
  const std::string log = DaemonLog();
  EXPECT_EQ(Count(log, "fell behind the event log's retention"), 0u) << log;
  StopDaemon();
}

// A per-tenant sink never receives a table without a tenant column; asked to backfill one,
// pgfanout refuses, and the sink's target gets none of its rows (every tenant's).
TEST_F(FanoutTest, BackfillRefusesATableWithoutTenantsForAPerTenantSink) {
  StartDaemon();
  ExpectTargetsEqualSource();
  StopDaemon();
  pg_->Exec(R"sql(
    CREATE TABLE regions (id int PRIMARY KEY, owner text);
    INSERT INTO regions VALUES (1, 'tenant 7 only'), (2, 'tenant 8 only');
  )sql");
  std::string config;
  {
    std::ifstream in(config_path_);
    config.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto at = config.find("tables:\n");
  ASSERT_NE(at, std::string::npos) << config;
  config.insert(at + 8, "  - name: regions\n");
  std::ofstream(config_path_) << config;
  int code = -1;
  auto out = Pgfanout({"backfill", "--sink", "tenant-8", "--table", "regions"}, &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("receives no table regions"), std::string::npos) << out;
  EXPECT_EQ(targets_[1].server->Scalar("SELECT to_regclass('public.regions') IS NULL", targets_[1].db),
            "t")
      << "another tenant's rows were copied into tenant-8's target:\n"
      << out;
}

// A change-log sink cannot take back what it delivered: a backfill of every table it maps
// keeps its cursor, so a delete committed while pgfanout was stopped still reaches it after
// the copy (moving the cursor to the snapshot would leave the consumer with the row).
TEST_F(FanoutTest, BackfillOfAChangeLogSinkStillDeliversTheChangesBeforeTheSnapshot) {
  const std::string path = work_dir_ + "/all.jsonl";
  WriteConfig(fmt::format(R"yaml(
  - id: all
    type: jsonl
    tenants: ["*"]
    path: {}
)yaml",
                          path));
  // A JSONL sink reports no copy of its own: wait for the Postgres sinks only.
  StartDaemon({}, /*wait_backfill=*/false);
  Workload(1);
  ExpectTargetsEqualSource();
  StopDaemon();
  pg_->Exec("DELETE FROM users WHERE id = 1050");
  int code = -1;
  auto out = Pgfanout({"backfill", "--sink", "all"}, &code);
  ASSERT_EQ(code, 0) << out;
  StartDaemon({}, /*wait_backfill=*/false);
  Workload(2);
  ExpectTargetsEqualSource();
  StopDaemon();
  std::ifstream in(path);
  bool deleted = false;
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"table\":\"users\"") != std::string::npos &&
        line.find("\"op\":\"delete\"") != std::string::npos &&
        line.find("\"key\":{\"id\":1050}") != std::string::npos) {
      deleted = true;
    }
  }
  EXPECT_TRUE(deleted) << "the JSONL sink never got the delete of users 1050";
}

// A row moves into tenant 9 (default replica identity: only the old key is sent, its big
// value arrives as "unchanged TOAST") and its key changes before tenant 9's sink reads the
// move. The move's insert finds no row at its key on the source and is dropped; the key
// change, which left the value unchanged too, is read at its new key, so tenant 9's target
// gets the value rather than NULL.
TEST_F(FanoutTest, AKeyChangeRightAfterAMoveKeepsTheUnchangedToastedValue) {
  StartDaemon();
  ExpectTargetsEqualSource();
  StopDaemon();
  pg_->Exec(R"sql(
    INSERT INTO contact_channels (tenant_id, id, kind, value)
      SELECT '7', 700, 'note', string_agg(md5(i::text), '') FROM generate_series(1, 20000) i;
    UPDATE contact_channels SET tenant_id = '9' WHERE tenant_id = '7' AND id = 700;
    UPDATE contact_channels SET id = 701 WHERE tenant_id = '9' AND id = 700;
  )sql");
  StartDaemon();
  ExpectTargetsEqualSource();
  EXPECT_EQ(other_pg_->Scalar("SELECT length(value) FROM contact_channels WHERE id = 701",
                              "tenant9"),
            "640000");
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing
