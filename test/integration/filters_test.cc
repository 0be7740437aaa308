// Filters at the source: tables[].where and tables[].columns become the publication's row
// filter and column list, so filtered-out rows and left-out columns never leave the
// primary, in the stream or in a copy. Into the JSONL sink, with rows moving in and out of
// the filter and a PII column that must appear nowhere pgfanout writes.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "test/integration/tailer_fixture.h"

namespace pgfanout::testing {
namespace {

// A 100 kB value that compresses badly: stored out of line.
constexpr const char* kBig =
    "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 3200))";

class FiltersTest : public TailerTest {
 protected:
  void SetUp() override {
    TailerTest::SetUp();
    if (HasFatalFailure()) return;
    // The filter reads status, so status is in the replica identity (PostgreSQL requires
    // it for UPDATE and DELETE); the identity leaves ssn out, so a column list can too.
    pg_->Exec(R"sql(
      DROP TABLE users;
      CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, name text,
                          status text NOT NULL DEFAULT 'active', ssn text, bio text);
      CREATE UNIQUE INDEX users_identity ON users (id, status);
      ALTER TABLE users REPLICA IDENTITY USING INDEX users_identity;
    )sql");
    SetUsers(
        "    where: \"status <> 'archived'\"\n    columns: [id, tenant_id, name, status, bio]\n");
    EditConfig("    batch_size: 500", "    batch_size: 500\n    backfill: true");
  }

  // The users entry of tables: with `extra` keys after tenant_column.
  void SetUsers(const std::string& extra) {
    std::ifstream in(config_path_);
    std::stringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    const std::string head =
        "  - name: public.users\n    tenant_column: tenant_id\n    key: [id]\n";
    const size_t at = text.find("  - name: public.users\n");
    const size_t end = text.find("  - name: public.teams\n");
    text = text.substr(0, at) + head + extra + text.substr(end);
    std::ofstream(config_path_) << text;
  }

  // What the sink must hold of users: the filtered rows, the listed columns.
  std::map<std::string, nlohmann::json> Expected() {
    std::vector<std::string> rows;
    for (const auto& r : pg_->Query("SELECT row_to_json(t)::text FROM (SELECT id, tenant_id, "
                                    "name, status, bio FROM users WHERE status <> 'archived') t")) {
      rows.push_back(*r[0]);
    }
    return checker_.KeyRows("public.users", rows);
  }

  void ExpectUsersFiltered() {
    std::string diff;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    do {
      checker_.Load(jsonl_path_);
      diff = JsonlChecker::Diff(Expected(), checker_.Rows("public.users"));
      if (diff.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    } while (std::chrono::steady_clock::now() < deadline);
    EXPECT_EQ(checker_.error(), "");
    EXPECT_EQ(checker_.order_error(), "");
    EXPECT_EQ(diff, "") << "the sink must hold exactly the filtered rows";
  }

  // Files under `dir` (recursively) that contain `needle`.
  static std::vector<std::string> FilesContaining(const std::string& dir,
                                                  const std::string& needle) {
    std::vector<std::string> out;
    for (const auto& f : std::filesystem::recursive_directory_iterator(dir)) {
      if (!f.is_regular_file()) continue;
      std::ifstream in(f.path(), std::ios::binary);
      std::stringstream s;
      s << in.rdbuf();
      if (s.str().find(needle) != std::string::npos) out.push_back(f.path().string());
    }
    return out;
  }
};

TEST_F(FiltersTest, FilteredRowsAndLeftOutColumnsNeverLeaveTheSource) {
  // Before the start: the first copy must apply the same filter and columns.
  pg_->Exec(
      fmt::format("INSERT INTO users SELECT i, 't' || (i % 3), 'n' || i, "
                  "  CASE WHEN i % 2 = 0 THEN 'active' ELSE 'archived' END, 'SSN-SECRET-' || i, "
                  "  'BIO-SHOWN-' || i FROM generate_series(1, 20) i; "
                  "UPDATE users SET bio = {} WHERE id IN (2, 3)",
                  kBig));
  StartDaemon();
  pg_->Exec(R"sql(
    INSERT INTO users SELECT i, 't1', 'n' || i, CASE WHEN i % 2 = 0 THEN 'active' ELSE 'archived' END,
      'SSN-SECRET-' || i, 'BIO-SHOWN-' || i FROM generate_series(21, 40) i;
    -- Moves in: the server sends an INSERT, whose unchanged TOASTed bio is read from the source.
    UPDATE users SET status = 'active' WHERE id IN (3, 5, 21);
    -- Moves out: the server sends a DELETE.
    UPDATE users SET status = 'archived' WHERE id IN (2, 4, 22);
    UPDATE users SET name = 'renamed', ssn = 'SSN-SECRET-changed' WHERE id IN (6, 7, 24);
    DELETE FROM users WHERE id IN (8, 9);
  )sql");
  ExpectUsersFiltered();
  EXPECT_GT(Expected().size(), 15u);
  EXPECT_EQ(pg_->Scalar("SELECT length(bio) FROM users WHERE id = 3"), "102400");
  // The column list and filter are the publication's.
  EXPECT_EQ(pg_->Scalar("SELECT array_to_string(attnames, ',') FROM pg_publication_tables "
                        "WHERE pubname = 'pgfanout_test' AND tablename = 'users'"),
            "id,tenant_id,name,status,bio");

  // The PII column reached nothing: not an event's keys, not the sink's file, not the
  // state dir, not the log. The published bio, written beside it, is found in each
  // (while the daemon runs its log's writes are not compressed yet), so the search works.
  for (const auto& ev : checker_.events()) {
    if (ev.contains("new") && ev["new"].is_object()) {
      EXPECT_FALSE(ev["new"].contains("ssn")) << ev.dump();
    }
  }
  EXPECT_EQ(FilesContaining(work_dir_, "SSN-SECRET"), std::vector<std::string>{});
  EXPECT_FALSE(FilesContaining(work_dir_ + "/state", "BIO-SHOWN").empty())
      << "the state dir should hold the published values in plain bytes";
  EXPECT_FALSE(FilesContaining(work_dir_ + "/out", "BIO-SHOWN").empty());
  StopDaemon();
  EXPECT_EQ(FilesContaining(work_dir_, "SSN-SECRET"), std::vector<std::string>{});
}

TEST_F(FiltersTest, AFilterOnAColumnOutsideTheIdentityIsRefusedAndTheApplicationKeepsWriting) {
  pg_->Exec("INSERT INTO users VALUES (1, 't1', 'a', 'active', NULL, NULL)");
  StartDaemon();
  StopDaemon();
  // name is not in the replica identity (id, status): PostgreSQL would accept this filter
  // and then fail every UPDATE and DELETE of users.
  SetUsers("    where: \"name <> 'hidden'\"\n");
  const std::string log = RunExpectingRefusal();
  EXPECT_NE(log.find("where: reads name, which the table's replica identity (id, status) does "
                     "not hold"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("REPLICA IDENTITY USING INDEX"), std::string::npos) << log;
  // The publication is as it was, and the application's writes still work.
  EXPECT_EQ(pg_->Scalar("SELECT rowfilter FROM pg_publication_tables WHERE pubname = "
                        "'pgfanout_test' AND tablename = 'users'"),
            "(status <> 'archived'::text)");
  pg_->Exec("UPDATE users SET name = 'b' WHERE id = 1; DELETE FROM users WHERE id = 1");

  // A filter that passes the checks replaces the old one, with a warning about what the
  // sinks already hold.
  SetUsers("    where: \"status <> 'deleted'\"\n    columns: [id, tenant_id, name, status]\n");
  StartDaemon();
  StopDaemon();
  EXPECT_EQ(pg_->Scalar("SELECT rowfilter || ' ' || array_to_string(attnames, ',') FROM "
                        "pg_publication_tables WHERE pubname = 'pgfanout_test' AND tablename "
                        "= 'users'"),
            "(status <> 'deleted'::text) id,tenant_id,name,status");
  EXPECT_NE(DaemonLog().find("the row filter or column list of public.users changed"),
            std::string::npos);
}

TEST_F(FiltersTest, AColumnListUnderReplicaIdentityFullIsRefusedBeforeAnythingIsPublished) {
  pg_->Exec("ALTER TABLE users REPLICA IDENTITY FULL");
  SetUsers("    columns: [id, tenant_id, name, status]\n");
  const std::string log = RunExpectingRefusal();
  EXPECT_NE(log.find("columns: leaves out ssn, bio, but the table is REPLICA IDENTITY FULL"),
            std::string::npos)
      << log;
  EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM pg_publication"), "0");
}

}  // namespace
}  // namespace pgfanout::testing
