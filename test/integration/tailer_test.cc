// End-to-end: a real Postgres 15, the real pgfanout binary, a JSONL sink.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "src/core/event_id.h"
#include "test/integration/tailer_fixture.h"

namespace pgfanout::testing {
namespace {

// Every scenario here runs once per decoder (pgoutput, wal2json): the same workload must
// give the same JSONL file. Where the decoders differ by nature, the test says so.
class TailerE2E : public TailerTest, public ::testing::WithParamInterface<std::string> {
 protected:
  std::string Decoder() const override { return GetParam(); }
  bool Wal2json() const { return GetParam() == "wal2json"; }
};

#define DECODERS ::testing::Values("pgoutput", "wal2json")

std::string DecoderName(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

INSTANTIATE_TEST_SUITE_P(Decoders, TailerE2E, DECODERS, DecoderName);

TEST_P(TailerE2E, DeliversCommittedChangesInCommitOrder) {
  StartDaemon();
  // One Exec is one simple-query message, which Postgres runs as one transaction: each
  // call here is its own transaction.
  pg_->Exec(R"sql(
    INSERT INTO users VALUES (1, '7', 'Ada', 1.50, true, NULL),
                             (2, '9', 'Grace', NULL, false, 'line one
line two "quoted" \ backslash	tab');
  )sql");
  pg_->Exec("INSERT INTO untracked VALUES (1, 'not delivered')");
  pg_->Exec(R"sql(
    BEGIN;
      INSERT INTO teams VALUES (10, '7', 'Core'), (11, '9', 'Ünïcødé ✓ 漢字 🚀');
      UPDATE users SET name = 'Ada L.' WHERE id = 1;
      DELETE FROM users WHERE id = 2;
    COMMIT;
  )sql");
  pg_->Exec("UPDATE users SET id = 3 WHERE id = 1");
  pg_->Exec("UPDATE teams SET title = NULL WHERE id = 11");
  ExpectSinkEqualsSource();
  const auto& events = checker_.events();
  ASSERT_EQ(events.size(), 8u);
  for (const auto& ev : events) EXPECT_NE(ev["table"], "untracked");
  // The multi-statement transaction is one commit LSN with ordinals 0..3 in statement order.
  EXPECT_EQ(events[2]["lsn"], events[5]["lsn"]);
  EXPECT_EQ(events[2]["id"].get<std::string>().substr(events[2]["lsn"].get<std::string>().size()),
            "#0");
  EXPECT_EQ(events[5]["op"], "delete");
  // Values keep their JSON kinds and tenants come from tenant_id.
  EXPECT_EQ(events[0]["new"]["active"], true);
  EXPECT_TRUE(events[0]["new"]["score"].is_number());
  EXPECT_TRUE(events[0]["new"]["bio"].is_null());
  EXPECT_EQ(events[0]["tenant"], "7");
  EXPECT_EQ(events[3]["new"]["title"], "Ünïcødé ✓ 漢字 🚀");
  // A key change carries the old key.
  EXPECT_EQ(events[6]["old"]["id"], 1);
  EXPECT_EQ(events[6]["key"]["id"], 3);
  StopDaemon();
}

TEST_P(TailerE2E, ToastedValueUnchangedByUpdateIsMarkedAndKept) {
  StartDaemon();
  // ~1.3 MB of hex: incompressible enough to be stored out of line.
  pg_->Exec(
      "INSERT INTO users (id, tenant_id, name, bio) SELECT 1, '7', 'big', "
      "string_agg(md5(i::text), '') FROM generate_series(1, 40000) i");
  pg_->Exec("UPDATE users SET name = 'still big' WHERE id = 1");
  ExpectSinkEqualsSource();
  const auto& events = checker_.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["new"]["bio"].get<std::string>().size(), 40000u * 32);
  EXPECT_FALSE(events[1]["new"].contains("bio"));
  EXPECT_EQ(events[1]["unchanged_toast"], nlohmann::json::array({"bio"}));
  StopDaemon();
}

TEST_P(TailerE2E, TruncateAndAddColumnMidStream) {
  StartDaemon();
  for (const char* sql :
       {"INSERT INTO teams VALUES (1, '7', 'a'), (2, '9', 'b')",
        "ALTER TABLE teams ADD COLUMN region text DEFAULT 'eu'",
        "INSERT INTO teams VALUES (3, '7', 'c', 'us')",
        "UPDATE teams SET region = 'ap' WHERE id = 1", "INSERT INTO users VALUES (1, '7', 'x')",
        "TRUNCATE users, teams RESTART IDENTITY CASCADE",
        "INSERT INTO teams VALUES (4, '9', 'd', 'eu')"}) {
    pg_->Exec(sql);
  }
  ExpectSinkEqualsSource();
  const auto& events = checker_.events();
  ASSERT_EQ(events.size(), 8u);
  EXPECT_FALSE(events[0]["new"].contains("region"));
  EXPECT_EQ(events[2]["new"]["region"], "us");
  EXPECT_EQ(events[5]["op"], "truncate");
  // wal2json does not report a TRUNCATE's CASCADE or RESTART IDENTITY (its T documents
  // name the table only), so under it both read false.
  EXPECT_EQ(events[5]["cascade"], !Wal2json());
  EXPECT_EQ(events[5]["restart_identity"], !Wal2json());
  EXPECT_EQ(events[5]["lsn"], events[6]["lsn"]) << "one TRUNCATE of two tables, one transaction";
  StopDaemon();
}

TEST_P(TailerE2E, RolledBackTransactionsAndSavepointsAreNotDelivered) {
  StartDaemon();
  pg_->Exec(R"sql(
    BEGIN; INSERT INTO users VALUES (100, '7', 'never'); ROLLBACK;
    BEGIN;
      INSERT INTO users VALUES (1, '7', 'kept');
      SAVEPOINT s1;
      INSERT INTO users VALUES (2, '7', 'rolled back');
      UPDATE users SET name = 'rolled back too' WHERE id = 1;
      ROLLBACK TO SAVEPOINT s1;
      INSERT INTO users VALUES (3, '7', 'kept too');
    COMMIT;
  )sql");
  ExpectSinkEqualsSource();
  EXPECT_EQ(checker_.lines(), 2u);
  StopDaemon();
}

class LargeTransactionTest : public TailerE2E {
 protected:
  std::vector<std::string> ServerSettings() const override {
    return {"logical_decoding_work_mem = 64kB"};
  }
};

INSTANTIATE_TEST_SUITE_P(Decoders, LargeTransactionTest, DECODERS, DecoderName);

TEST_P(LargeTransactionTest, StreamsLargeTransactionsAndDropsAbortedSubtransactions) {
  StartDaemon();
  pg_->Exec(R"sql(
    BEGIN;
      INSERT INTO users (id, tenant_id, name)
        SELECT i, (i % 3)::text, 'u' || i FROM generate_series(1, 100000) i;
      SAVEPOINT s1;
      INSERT INTO users (id, tenant_id, name)
        SELECT i, '1', 'aborted' FROM generate_series(100001, 120000) i;
      ROLLBACK TO SAVEPOINT s1;
      INSERT INTO users (id, tenant_id, name)
        SELECT i, (i % 3)::text, 'v' || i FROM generate_series(100001, 200000) i;
    COMMIT;
    BEGIN;
      INSERT INTO teams SELECT i, '1', 'aborted' FROM generate_series(1, 50000) i;
    ROLLBACK;
    INSERT INTO teams VALUES (1, '7', 'after');
  )sql");
  ExpectSinkEqualsSource(std::chrono::seconds(120));
  EXPECT_EQ(checker_.lines(), 200001u);
  auto streamed = pg_->Scalar(
      "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 'pgfanout_test'");
  if (!Wal2json()) {
    EXPECT_GT(std::stoll(streamed.empty() ? "0" : streamed), 0)
        << "the large transaction should have been streamed (protocol v2)";
  } else {
    // wal2json cannot stream an open transaction: the server spills it and sends it at
    // commit. The reader hands it on as a streamed one once it passes
    // logical_decoding_work_mem, so the assembler spills it instead of holding 200k rows.
    EXPECT_EQ(streamed.empty() ? "0" : streamed, "0");
    EXPECT_NE(DaemonLog().find("events moved into the log"), std::string::npos)
        << "the 200k-row transaction should have gone through the spill";
  }
  StopDaemon();
}

// After kill -9 at a named point and a restart, the file still rebuilds the source with
// strictly increasing ids: nothing lost, no line written twice.
// With wal2json, source.mid_stream is the reader's segment boundary inside a large
// transaction it hands on as streamed (the server itself never streams to wal2json).
class KillTest : public TailerTest,
                 public ::testing::WithParamInterface<std::tuple<const char*, const char*>> {
 protected:
  std::vector<std::string> ServerSettings() const override {
    return {"logical_decoding_work_mem = 64kB"};
  }
  std::string Decoder() const override { return std::get<1>(GetParam()); }
};

TEST_P(KillTest, ResumesAfterKillWithoutLossOrDuplicate) {
  StartDaemon({{"PGFANOUT_FAILPOINTS", std::get<0>(GetParam())}});
  pg_->Exec(R"sql(
    INSERT INTO users (id, tenant_id, name) SELECT i, '7', 'a' FROM generate_series(1, 50) i;
    INSERT INTO teams VALUES (1, '7', 't1');
    UPDATE users SET name = 'b' WHERE id <= 25;
    INSERT INTO users (id, tenant_id, name)
      SELECT i, '9', 'big' FROM generate_series(1000, 31000) i;
    DELETE FROM users WHERE id BETWEEN 1000 AND 1100;
  )sql");
  for (int i = 0; i < 40; ++i) {
    pg_->Exec(fmt::format("INSERT INTO teams VALUES ({}, '9', 'small')", 100 + i));
  }
  auto code = WaitDaemonExit(std::chrono::seconds(60));
  ASSERT_TRUE(code.has_value()) << "the failpoint never fired";
  EXPECT_EQ(*code, -SIGKILL);
  pg_->Exec("UPDATE teams SET title = 'after restart' WHERE id = 1");
  StartDaemon();
  ExpectSinkEqualsSource(std::chrono::seconds(90));
  std::set<std::string> ids;
  for (const auto& ev : checker_.events()) {
    EXPECT_TRUE(ids.insert(ev["id"].get<std::string>()).second) << "duplicate " << ev["id"];
  }
  StopDaemon();
}

INSTANTIATE_TEST_SUITE_P(
    Failpoints, KillTest,
    ::testing::Combine(::testing::Values("source.mid_stream=kill@2", "log.after_commit=kill@4",
                                         "sink.mid_write=kill@3", "sink.after_write=kill@3"),
                       DECODERS),
    [](const auto& info) {
      std::string name = std::string(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
      return std::regex_replace(name, std::regex("[^A-Za-z0-9]"), "_");
    });

TEST_P(TailerE2E, ReplayFromStoredLsnReproducesTheSameLines) {
  StartDaemon();
  for (int i = 1; i <= 20; ++i) {
    pg_->Exec(fmt::format("INSERT INTO users (id, tenant_id, name) VALUES ({}, '7', 'n{}')", i, i));
  }
  ExpectSinkEqualsSource();
  StopDaemon();
  std::vector<std::string> before;
  {
    std::ifstream in(jsonl_path_);
    for (std::string line; std::getline(in, line);) before.push_back(line);
  }
  ASSERT_EQ(before.size(), 20u);
  const std::string from = checker_.events()[12]["lsn"];
  std::string out;
  ASSERT_EQ(
      RunPgfanout({"replay", "--config", config_path_, "--sink", "all-events", "--from-lsn", from},
                  &out),
      0)
      << out;
  std::vector<std::string> after;
  {
    std::ifstream in(jsonl_path_);
    for (std::string line; std::getline(in, line);) after.push_back(line);
  }
  ASSERT_EQ(after.size(), 28u) << out;
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(after[20 + i], before[12 + i]);

  // An LSN past the log's end is refused with a message saying why.
  out.clear();
  EXPECT_NE(
      RunPgfanout(
          {"replay", "--config", config_path_, "--sink", "all-events", "--from-lsn", "FF/0"}, &out),
      0);
  EXPECT_NE(out.find("no event at or after"), std::string::npos) << out;
}

TEST_P(TailerE2E, SlotIsNeverConfirmedPastTheDurableLog) {
  std::regex durable_re(R"(durable to ([0-9A-F]+/[0-9A-F]+))");
  for (int round = 0; round < 4; ++round) {
    StartDaemon();
    for (int i = 0; i < 30; ++i) {
      pg_->Exec(fmt::format("INSERT INTO teams VALUES ({}, '7', 'r{}')", round * 100 + i, round));
      if (i == 10 + round * 5) daemon_.Kill(SIGKILL);
    }
    daemon_.Wait(std::chrono::seconds(10));
    std::smatch m;
    std::string out = Durable();
    ASSERT_TRUE(std::regex_search(out, m, durable_re)) << out;
    auto durable = Lsn::Parse(m[1].str());
    auto confirmed = Lsn::Parse(pg_->Scalar(
        "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name='pgfanout_test'"));
    ASSERT_TRUE(durable && confirmed);
    EXPECT_LE(*confirmed, *durable) << "slot confirmed " << confirmed->ToString()
                                    << " past the durable log " << durable->ToString();
  }
  StartDaemon();
  ExpectSinkEqualsSource();
  StopDaemon();
}

class QuietTablesTest : public TailerE2E {
 protected:
  // Keepalives come every wal_sender_timeout / 2.
  std::vector<std::string> ServerSettings() const override { return {"wal_sender_timeout = 2s"}; }
};

INSTANTIATE_TEST_SUITE_P(Decoders, QuietTablesTest, DECODERS, DecoderName);

// Only an untracked table is written: pgoutput sends nothing for those transactions (and
// wal2json an empty B ... C, which the reader drops), yet the slot must advance (from
// keepalives), or the primary would keep WAL without bound.
TEST_P(QuietTablesTest, SlotAdvancesWhileTrackedTablesAreQuiet) {
  StartDaemon();
  const std::string slot_lsn_sql =
      "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'pgfanout_test'";
  auto start = Lsn::Parse(pg_->Scalar(slot_lsn_sql));
  ASSERT_TRUE(start.has_value());
  pg_->Exec("INSERT INTO untracked SELECT i, repeat('x', 200) FROM generate_series(1, 20000) i");
  auto written = Lsn::Parse(pg_->Scalar("SELECT pg_current_wal_lsn()"));
  ASSERT_TRUE(written.has_value());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::optional<Lsn> confirmed;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    confirmed = Lsn::Parse(pg_->Scalar(slot_lsn_sql));
  } while (confirmed && *confirmed < *written && std::chrono::steady_clock::now() < deadline);
  ASSERT_TRUE(confirmed.has_value());
  EXPECT_GE(*confirmed, *written) << "the slot stayed at " << confirmed->ToString()
                                  << " while the server wrote up to " << written->ToString();
  StopDaemon();
  // What was confirmed is what the log holds: the next start resumes there without error.
  std::regex durable_re(R"(durable to ([0-9A-F]+/[0-9A-F]+))");
  std::smatch m;
  std::string out = Durable();
  ASSERT_TRUE(std::regex_search(out, m, durable_re)) << out;
  EXPECT_GE(*Lsn::Parse(m[1].str()), *confirmed);
  pg_->Exec("INSERT INTO teams VALUES (1, '7', 'after the quiet spell')");
  StartDaemon();
  ExpectSinkEqualsSource();
  EXPECT_EQ(checker_.lines(), 1u);
  StopDaemon();
}

TEST_P(TailerE2E, RefusesToRecreateADroppedSlot) {
  StartDaemon();
  pg_->Exec("INSERT INTO teams VALUES (1, '7', 'x')");
  ExpectSinkEqualsSource();
  StopDaemon();
  pg_->Exec("SELECT pg_drop_replication_slot('pgfanout_test')");
  StartDaemon({}, /*wait=*/false);
  auto code = WaitDaemonExit(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "pgfanout should stop on a missing slot";
  EXPECT_EQ(*code, 1);
  EXPECT_NE(DaemonLog().find("will not create a new slot silently"), std::string::npos);
  EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM pg_replication_slots"), "0");
}

TEST_P(TailerE2E, RefusesAnotherClusterForTheSameStateDir) {
  StartDaemon();
  pg_->Exec("INSERT INTO teams VALUES (1, '7', 'x')");
  ExpectSinkEqualsSource();
  StopDaemon();
  // A second cluster on a new port, pointed at by the same config and state dir.
  auto other = PgServer::Start(PgServer::Options{.own_identity = true});
  ASSERT_NE(other, nullptr);
  other->Exec(
      "CREATE TABLE users (id int PRIMARY KEY, tenant_id text, name text, score numeric,"
      " active boolean, bio text); CREATE TABLE teams (id int PRIMARY KEY, tenant_id"
      " text, title text);");
  std::string text;
  {
    std::ifstream in(config_path_);
    std::stringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  text = std::regex_replace(text, std::regex("port=[0-9]+"), fmt::format("port={}", other->port()));
  std::ofstream(config_path_) << text;
  StartDaemon({}, /*wait=*/false);
  auto code = WaitDaemonExit(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1);
  EXPECT_NE(DaemonLog().find("system identifier"), std::string::npos) << DaemonLog();
  EXPECT_EQ(other->Scalar("SELECT count(*) FROM pg_replication_slots"), "0");
}

TEST_P(TailerE2E, ShutdownOnSigtermIsCleanAndResumes) {
  StartDaemon();
  pg_->Exec("INSERT INTO teams SELECT i, '7', 'x' FROM generate_series(1, 1000) i");
  ExpectSinkEqualsSource();
  StopDaemon();
  pg_->Exec("UPDATE teams SET title = 'y' WHERE id % 2 = 0; DELETE FROM teams WHERE id > 900");
  StartDaemon();
  ExpectSinkEqualsSource();
  EXPECT_EQ(checker_.lines(), 1000u + 500u + 100u);
  StopDaemon();
  std::string out;
  EXPECT_EQ(RunPgfanout({"status", "--config", config_path_}, &out), 0) << out;
  EXPECT_NE(out.find("sink all-events (jsonl)"), std::string::npos) << out;
  EXPECT_NE(out.find(", 0 events behind"), std::string::npos) << out;

  // An unreachable source: status says so and names the (redacted) DSN.
  {
    std::ifstream in(config_path_);
    std::stringstream s;
    s << in.rdbuf();
    std::ofstream(config_path_) << std::regex_replace(s.str(), std::regex("port=[0-9]+"),
                                                      fmt::format("port={}", FreePort()));
  }
  out.clear();
  RunPgfanout({"status", "--config", config_path_}, &out);
  EXPECT_NE(out.find("unreachable"), std::string::npos) << out;
}

}  // namespace
}  // namespace pgfanout::testing
