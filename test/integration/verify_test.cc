// `pgfanout verify`: a postgres sink's targets compared with its tenants' source rows. The
// fixture's daemon brings the targets level first; the tests then tamper with a target by
// hand and check that verify names exactly what was changed.

#include <fmt/format.h>

#include <fstream>

#include <string>
#include <thread>
#include <vector>

#include "test/integration/fanout_fixture.h"

namespace pgfanout::testing {
namespace {

class VerifyTest : public FanoutTest {
 protected:
  // One round of the workload, delivered to every target; the daemon is stopped after.
  void SyncTargetsAndStop() {
    StartDaemon();
    Workload(1);
    ExpectTargetsEqualSource();
    StopDaemon();
  }

  std::string Verify(std::vector<std::string> args, int* code) const {
    args.insert(args.begin(), "verify");
    return Pgfanout(args, code);
  }

  std::string SourceCount(const std::string& table, const std::string& tenant) const {
    return pg_->Scalar(
        fmt::format("SELECT count(*) FROM {} WHERE tenant_id = '{}'", table, tenant));
  }
};

bool Has(const std::string& out, const std::string& line) {
  return out.find(line) != std::string::npos;
}

TEST_F(VerifyTest, FindsEveryTargetInSyncWhileTheDaemonRuns) {
  StartDaemon();
  Workload(1);
  ExpectTargetsEqualSource();
  // The daemon keeps running (and holding the state dir): verify needs neither.
  for (const auto& t : targets_) {
    int code = -1;
    auto out = Verify({"--sink", t.sink_id}, &code);
    EXPECT_EQ(code, 0) << out;
    EXPECT_TRUE(Has(out, "sink " + t.sink_id + ": in sync\n")) << out;
    EXPECT_TRUE(Has(out, "computed columns are not compared")) << out;
  }
  int code = -1;
  auto out = Verify({"--sink", "tenant-8"}, &code);
  EXPECT_TRUE(Has(out, fmt::format("table public.users -> public.users: source {0} rows, target "
                                   "{0} rows, 0 missing, 0 unexpected, 0 differing\n",
                                   SourceCount("users", "8"))))
      << out;
  // The analytics sink holds every tenant's rows, tenant 10's too (it has no sink of its own).
  out = Verify({"--sink", "analytics", "--table", "users"}, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(Has(out, fmt::format("source {0} rows, target {0} rows",
                                   pg_->Scalar("SELECT count(*) FROM users"))))
      << out;
  StopDaemon();
}

TEST_F(VerifyTest, ListsTheRowsDeletedChangedAndAddedByHandInATarget) {
  ASSERT_NO_FATAL_FAILURE(SyncTargetsAndStop());
  int code = -1;
  auto out = Verify({"--sink", "tenant-7"}, &code);
  ASSERT_EQ(code, 0) << out;
  ASSERT_TRUE(Has(out, "sink tenant-7: in sync\n")) << out;

  ASSERT_EQ(pg_->Scalar("SELECT string_agg(id::text, ',') FROM users WHERE tenant_id = '7'"),
            "1002");
  pg_->Exec(R"sql(
    DELETE FROM users WHERE id = 1002;
    INSERT INTO users (id, tenant_id, email, pgfanout_version)
      VALUES (9999, '8', 'ghost@example.com', 0);
    UPDATE contact_channels SET value = 'tampered' WHERE tenant_id = '7' AND id = 1001;
    UPDATE "Team Rooms" SET "Display ""Name""" = 'renamed by hand' WHERE "Room Id" = 1004;
  )sql",
            "tenant7");
  out = Verify({"--sink", "tenant-7"}, &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out,
                  "table public.users -> public.users: source 1 rows, target 1 rows, "
                  "1 missing, 1 unexpected, 0 differing\n"))
      << out;
  EXPECT_TRUE(Has(out, "  missing in target: (id)=(1002)\n")) << out;
  EXPECT_TRUE(Has(out, "  unexpected in target: (id)=(9999)\n"))
      << "another tenant's row in tenant 7's database is a ghost: " << out;
  const std::string channels = SourceCount("contact_channels", "7");
  EXPECT_TRUE(Has(out, fmt::format("table public.contact_channels -> public.contact_channels: "
                                   "source {0} rows, target {0} rows, 0 missing, 0 unexpected, "
                                   "1 differing\n",
                                   channels)))
      << out;
  EXPECT_TRUE(Has(out,
                  "  differs: (tenant_id, id)=(7, 1001): column value: source "
                  "'7-1@example.com' target 'tampered'\n"))
      << out;
  EXPECT_TRUE(Has(out,
                  "table public.\"Team Rooms\" -> public.\"Team Rooms\": source 1 rows, "
                  "target 1 rows, 0 missing, 0 unexpected, 1 differing\n"))
      << out;
  EXPECT_TRUE(Has(out,
                  "  differs: (\"Room Id\")=(1004): column \"Display \"\"Name\"\"\": source "
                  "'after truncate' target 'renamed by hand'\n"))
      << out;
  EXPECT_TRUE(Has(out, "sink tenant-7: 4 differences\n")) << out;

  // --table narrows it to one table, named as in the config.
  out = Verify({"--sink", "tenant-7", "--table", "public.\"Team Rooms\""}, &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out, "sink tenant-7: 1 difference\n")) << out;
  EXPECT_FALSE(Has(out, "table public.users")) << out;

  // Other tenants' targets were not touched.
  out = Verify({"--sink", "tenant-8"}, &code);
  EXPECT_EQ(code, 0) << out;
}

TEST_F(VerifyTest, ComparesRenamedColumnsAndCountsSoftDeletedRowsAsAbsent) {
  AddPeopleSink();
  StartDaemon();
  pg_->Exec(R"sql(
    INSERT INTO users (id, tenant_id, email, name) VALUES
      (1, '7', 'a@example.com', 'A'), (2, '7', 'b@example.com', 'B'),
      (3, '8', 'c@example.com', 'C'), (4, '7', 'd@example.com', 'D');
  )sql");
  const std::string marks =
      "SELECT string_agg(user_id || ':' || (deleted_at IS NOT NULL), ',' ORDER BY user_id) "
      "FROM crm.people";
  auto wait_for = [&](const std::string& want) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (pg_->Scalar(marks, "tenant7") != want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return pg_->Scalar(marks, "tenant7");
  };
  ASSERT_EQ(wait_for("1:false,2:false,4:false"), "1:false,2:false,4:false");
  // Deleted once the target holds it, so the sink marks it (rather than never copying it).
  pg_->Exec("DELETE FROM users WHERE id = 2");
  ASSERT_EQ(wait_for("1:false,2:true,4:false"), "1:false,2:true,4:false");
  StopDaemon();

  int code = -1;
  auto out = Verify({"--sink", "people-7"}, &code);
  EXPECT_EQ(code, 0) << "the soft-deleted row 2 is absent on both sides: " << out;
  EXPECT_TRUE(Has(out,
                  "table public.users -> crm.people: source 2 rows, target 2 rows, "
                  "0 missing, 0 unexpected, 0 differing\n"))
      << out;
  EXPECT_TRUE(Has(out, "  (computed columns, not compared: email_verified)\n")) << out;

  pg_->Exec(R"sql(
    UPDATE crm.people SET deleted_at = now() WHERE user_id = 1;
    UPDATE crm.people SET deleted_at = NULL WHERE user_id = 2;
    UPDATE crm.people SET mail = 'x@example.com' WHERE user_id = 4;
  )sql",
            "tenant7");
  out = Verify({"--sink", "people-7"}, &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(Has(out, "  missing in target: (id)=(1)\n")) << "soft-deleted by hand: " << out;
  EXPECT_TRUE(Has(out, "  unexpected in target: (id)=(2)\n")) << "undeleted by hand: " << out;
  EXPECT_TRUE(Has(out,
                  "  differs: (id)=(4): column email (target mail): source 'd@example.com' "
                  "target 'x@example.com'\n"))
      << out;
  EXPECT_TRUE(Has(out, "sink people-7: 3 differences\n")) << out;
}

TEST_F(VerifyTest, RejectsUnknownSinksAndTablesAndSinksItCannotCompare) {
  std::ofstream(work_dir_ + "/pw") << "hunter2\n";
  WriteConfig(fmt::format(R"yaml(
  - id: audit
    type: jsonl
    tenants: ["7"]
    path: {0}/audit.jsonl
  - id: locked
    type: postgres
    tenants: ["7"]
    dsn: "{1} dbname=no_such_db"
    password_file: {0}/pw
)yaml",
                          work_dir_, pg_->Dsn()));
  int code = -1;
  auto out = Verify({"--sink", "nope"}, &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_TRUE(Has(out, "no sink with id 'nope'")) << out;

  out = Verify({"--sink", "audit"}, &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_TRUE(Has(out, "verify compares postgres sinks only")) << out;

  out = Verify({"--sink", "tenant-7", "--table", "public.nope"}, &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_TRUE(Has(out, "not in the tables:")) << out;

  // A target it cannot reach: the comparison cannot run, and the password stays hidden.
  out = Verify({"--sink", "locked"}, &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_TRUE(Has(out, "no_such_db")) << out;
  EXPECT_FALSE(Has(out, "hunter2")) << out;
}

}  // namespace
}  // namespace pgfanout::testing
