// The wal2json decoder end to end (a real Postgres 15 with wal2json 2.5, the real binary):
// the same workload through both decoders gives the same JSONL lines, byte for byte; and
// what only the wal2json path does (no publication, add-tables with awkward names, the
// slot's plugin, bytea_output). The scenarios shared with pgoutput run in
// test/integration/tailer_test.cc, once per decoder.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "test/integration/tailer_fixture.h"

namespace pgfanout::testing {
namespace {

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One server, one workload, two daemons: one per decoder, each with its own slot, state
// dir and JSONL file, both slots made before the workload.
class DecoderParityTest : public ::testing::Test {
 protected:
  struct Side {
    std::string decoder;
    std::string dir;
    DaemonProcess daemon;
    std::string config() const { return dir + "/pgfanout.yaml"; }
    std::string jsonl() const { return dir + "/events.jsonl"; }
    std::string log() const { return dir + "/pgfanout.log"; }
    std::string slot() const { return "parity_" + decoder; }
  };

  void SetUp() override {
    // Small enough that pgoutput streams the large transaction and the wal2json reader
    // hands it on as streamed: both spill paths meet the same WAL.
    pg_ = PgServer::Start(PgServer::Options{.settings = {"logical_decoding_work_mem = 64kB"}});
    ASSERT_NE(pg_, nullptr);
    pg_->Exec(R"sql(
      CREATE TYPE mood AS ENUM ('sad', 'happy');
      CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, name text,
                          score numeric, active boolean, bio text);
      CREATE TABLE teams (id int PRIMARY KEY, tenant_id text NOT NULL, title text);
      CREATE TABLE kinds (id int PRIMARY KEY, i8 int8, f8 float8, n numeric(12, 4), b bool,
                          by bytea, j json, jb jsonb, u uuid, ts timestamptz, iv interval,
                          arr text[], vc varchar(8), m mood, ip inet);
      CREATE TABLE untracked (id int PRIMARY KEY, v text);
    )sql");
    char tmpl[] = "/tmp/pgfanout-test-parity-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    for (Side* side : {&pgoutput_, &wal2json_}) {
      side->dir = root_ + "/" + side->decoder;
      std::filesystem::create_directories(side->dir);
      std::ofstream(side->config())
          << fmt::format(R"yaml(
source:
  dsn: "{}"
  slot: {}
  publication: parity
  decoder: {}
  status_interval: 1s
state_dir: {}/state
http:
  listen: "127.0.0.1:0"
tables:
  - name: public.users
    tenant_column: tenant_id
  - name: public.teams
    tenant_column: tenant_id
  - name: public.kinds
sinks:
  - id: all
    type: jsonl
    tenants: ["*"]
    path: {}
)yaml",
                         pg_->Dsn(), side->slot(), side->decoder, side->dir, side->jsonl());
    }
  }

  void TearDown() override {
    for (Side* side : {&pgoutput_, &wal2json_}) {
      if (side->daemon.running()) side->daemon.Kill(SIGKILL);
      if (HasFailure()) std::cerr << "---- " << side->log() << " ----\n" << ReadFile(side->log());
    }
    pg_.reset();
    if (!HasFailure() && getenv("PGFANOUT_KEEP_TEST_DIRS") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(root_, ec);
    }
  }

  void Start(Side& side) {
    ASSERT_TRUE(side.daemon.Start({"run", "--config", side.config()}, side.log()));
    WaitSlotActive(*pg_, side.daemon, side.slot());
  }

  // Waits until the file's last line is the marker row's insert.
  void WaitForMarker(const Side& side) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      auto lines = Lines(side.jsonl());
      if (!lines.empty() && lines.back().find("\"end marker\"") != std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << side.decoder << ": the marker never reached " << side.jsonl();
  }

  std::unique_ptr<PgServer> pg_;
  std::string root_;
  Side pgoutput_{.decoder = "pgoutput"};
  Side wal2json_{.decoder = "wal2json"};
};

TEST_F(DecoderParityTest, SameWorkloadGivesTheSameIdsAndLinesUnderBothDecoders) {
  // Each daemon makes its slot, then stops: the workload runs with both slots in place.
  for (Side* side : {&pgoutput_, &wal2json_}) {
    Start(*side);
    StopCleanly(side->daemon);
  }
  for (const char* sql : {
           R"sql(INSERT INTO users VALUES (1, '7', 'Ada', 1.50, true, NULL),
                   (2, '9', 'Grace', NULL, false, 'line one
line two "quoted" \ backslash	tab'))sql",
           "INSERT INTO untracked VALUES (1, 'not delivered')",
           R"sql(BEGIN;
             INSERT INTO teams VALUES (10, '7', 'Core'), (11, '9', 'Ünïcødé ✓ 漢字 🚀');
             UPDATE users SET name = 'Ada L.' WHERE id = 1;
             SELECT pg_logical_emit_message(true, 'audit', 'in a transaction');
             DELETE FROM users WHERE id = 2;
           COMMIT;)sql",
           "UPDATE users SET id = 3 WHERE id = 1",
           "UPDATE users SET id = id, score = -0.5 WHERE id = 3",
           "INSERT INTO users (id, tenant_id, name, bio) SELECT 4, '7', 'big', "
           "string_agg(md5(i::text), '') FROM generate_series(1, 20000) i",
           "UPDATE users SET name = 'still big' WHERE id = 4",
           R"sql(INSERT INTO kinds VALUES (1, -9223372036854775808, -0, 12345678.1230, true,
                   '\x00ff', '{"b": 1,  "a" : [1, 2]}', '{"b": 1, "a": [1, 2]}',
                   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-01-02 03:04:05.678901+00',
                   '1 year 2 mons 3 days 04:05:06.789', '{"a b","c\"d",NULL}', 'short',
                   'happy', '192.168.0.1/24'))sql",
           "INSERT INTO kinds (id, f8, b) VALUES (2, 1e-300, false)",
           "UPDATE kinds SET vc = 'changed', by = NULL WHERE id = 1",
           "ALTER TABLE teams ADD COLUMN region text DEFAULT 'eu'",
           "UPDATE teams SET region = 'ap' WHERE id = 10",
           "INSERT INTO teams VALUES (12, '7', 'c', 'us')",
           "ALTER TABLE users REPLICA IDENTITY FULL",
           "UPDATE users SET name = 'full' WHERE id = 3",
           "UPDATE users SET tenant_id = '9' WHERE id = 4",
           "DELETE FROM users WHERE id = 3",
           "ALTER TABLE users REPLICA IDENTITY DEFAULT",
           R"sql(BEGIN;
             INSERT INTO users VALUES (5, '7', 'kept');
             SAVEPOINT s1;
             INSERT INTO users VALUES (6, '7', 'rolled back');
             ROLLBACK TO SAVEPOINT s1;
           COMMIT;)sql",
           R"sql(BEGIN;
             INSERT INTO teams SELECT i, (i % 3)::text, 'bulk ' || i
               FROM generate_series(1000, 21000) i;
             UPDATE teams SET title = 'bulk updated' WHERE id BETWEEN 1000 AND 1100;
             DELETE FROM teams WHERE id BETWEEN 2000 AND 2100;
           COMMIT;)sql",
           "BEGIN; INSERT INTO teams VALUES (99, '1', 'aborted'); ROLLBACK;",
           "TRUNCATE teams",
           "INSERT INTO users VALUES (999999, '1', 'end marker')",
       }) {
    pg_->Exec(sql);
  }
  for (Side* side : {&pgoutput_, &wal2json_}) Start(*side);
  WaitForMarker(pgoutput_);
  WaitForMarker(wal2json_);
  for (Side* side : {&pgoutput_, &wal2json_}) StopCleanly(side->daemon);
  auto want = Lines(pgoutput_.jsonl());
  auto got = Lines(wal2json_.jsonl());
  ASSERT_GT(want.size(), 20000u);
  EXPECT_EQ(got.size(), want.size());
  size_t shown = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()) && shown < 5; ++i) {
    if (got[i] == want[i]) continue;
    ++shown;
    ADD_FAILURE() << "line " << i + 1 << " differs\n  pgoutput: " << want[i].substr(0, 600)
                  << "\n  wal2json: " << got[i].substr(0, 600);
  }
  EXPECT_NE(ReadFile(pgoutput_.log()).find("streamed transaction"), std::string::npos);
  EXPECT_NE(ReadFile(wal2json_.log()).find("streamed transaction"), std::string::npos)
      << "the 20k-row transaction should have gone through the reader's streamed path";
}

class Wal2jsonTest : public TailerTest {
 protected:
  std::string Decoder() const override { return "wal2json"; }

  std::string RunExpectingExit1() {
    StartDaemon({}, /*wait=*/false);
    auto code = WaitDaemonExit(std::chrono::seconds(30));
    EXPECT_TRUE(code.has_value()) << "pgfanout should refuse and exit";
    if (code) {
      EXPECT_EQ(*code, 1);
    }
    return DaemonLog();
  }
};

// add-tables is a list with its own escaping (',' '.' '*' '\' and spaces); a table whose
// name needs all of it is tracked, its untracked namesake is not, and nothing is published.
TEST_F(Wal2jsonTest, NeedsNoPublicationAndTracksTablesWithAwkwardNames) {
  pg_->Exec(R"sql(
    CREATE SCHEMA "My Schema";
    CREATE TABLE "My Schema"."Odd, name.*\x" (id int PRIMARY KEY, v text);
    CREATE TABLE "My Schema"."Odd" (id int PRIMARY KEY, v text);
  )sql");
  {
    std::string text = ReadFile(config_path_);
    text = std::regex_replace(text, std::regex("tables:\n"),
                              "tables:\n  - name: '\"My Schema\".\"Odd, name.*\\x\"'\n");
    std::ofstream(config_path_) << text;
  }
  StartDaemon();
  pg_->Exec(R"sql(INSERT INTO "My Schema"."Odd, name.*\x" VALUES (1, 'tracked'))sql");
  pg_->Exec(R"sql(INSERT INTO "My Schema"."Odd" VALUES (1, 'not tracked'))sql");
  pg_->Exec("INSERT INTO users VALUES (1, '7', 'nan', 'NaN', true, NULL)");
  pg_->Exec("INSERT INTO teams VALUES (1, '7', 'last')");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  do {
    checker_.Load(jsonl_path_);
    if (checker_.lines() >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  StopDaemon();
  const auto& events = checker_.events();
  ASSERT_EQ(events.size(), 3u) << ReadFile(jsonl_path_);
  EXPECT_EQ(events[0]["schema"], "My Schema");
  EXPECT_EQ(events[0]["table"], "Odd, name.*\\x");
  EXPECT_EQ(events[0]["new"]["v"], "tracked");
  // wal2json prints NaN as null; the log says so at start.
  EXPECT_TRUE(events[1]["new"]["score"].is_null());
  EXPECT_NE(DaemonLog().find("table public.users has float or numeric columns (score)"),
            std::string::npos)
      << DaemonLog();
  EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM pg_publication"), "0");
  EXPECT_EQ(pg_->Scalar("SELECT plugin FROM pg_replication_slots"), "wal2json");
}

TEST_F(Wal2jsonTest, RefusesASlotMadeForTheOtherPlugin) {
  pg_->Exec("SELECT pg_create_logical_replication_slot('pgfanout_test', 'pgoutput')");
  std::string log = RunExpectingExit1();
  EXPECT_NE(log.find("slot pgfanout_test exists but is not a logical wal2json slot (plugin "
                     "'pgoutput')"),
            std::string::npos)
      << log;
}

TEST_F(Wal2jsonTest, RefusesByteaOutputOtherThanHex) {
  pg_->Exec("ALTER ROLE postgres SET bytea_output = 'escape'");
  std::string log = RunExpectingExit1();
  EXPECT_NE(log.find("source.decoder wal2json needs bytea_output = hex"), std::string::npos) << log;
  EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM pg_replication_slots"), "0");
}

}  // namespace
}  // namespace pgfanout::testing
