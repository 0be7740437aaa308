// What pgfanout checks about its source before and while it streams, against real
// servers: tenant values written as the source writes them (and compared in that one form
// everywhere), the timeline after a failover (a promoted standby), and errors that a
// reconnect cannot heal.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "test/support/daemon_process.h"
#include "test/support/pg_server.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

template <class Pred>
bool Eventually(Pred done, std::chrono::milliseconds budget = 30s) {
  auto deadline = Clock::now() + budget;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class SourceChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = PgServer::Start();
    ASSERT_NE(pg_, nullptr);
    char tmpl[] = "/tmp/pgfanout-source-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_ = dir_ + "/pgfanout.yaml";
    log_ = dir_ + "/pgfanout.log";
  }
  void TearDown() override {
    if (daemon_.running()) {
      daemon_.Kill(SIGKILL);
      daemon_.Wait(10s);
    }
    if (HasFailure()) std::cerr << "---- pgfanout log ----\n" << Log();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // One table `t` (tenant column `tenant_id`) and the given sinks, read from `server`.
  void WriteConfig(const PgServer& server, const std::string& sinks) {
    std::ofstream(config_) << fmt::format(R"yaml(
source:
  dsn: "{}"
  slot: pgfanout_src
  publication: pgfanout_src
  status_interval: 1s
state_dir: {}/state
http:
  listen: "off"
tables:
  - name: t
    tenant_column: tenant_id
sinks:{}
)yaml",
                                          server.Dsn(), dir_, sinks);
  }
  std::string JsonlSink(const std::string& tenants) const {
    return fmt::format(R"yaml(
  - id: out
    type: jsonl
    tenants: [{}]
    path: {}/out.jsonl
)yaml",
                       tenants, dir_);
  }
  size_t Lines() const {
    std::ifstream in(dir_ + "/out.jsonl");
    size_t n = 0;
    for (std::string l; std::getline(in, l);) ++n;
    return n;
  }
  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  void Start() { ASSERT_TRUE(daemon_.Start({"run", "--config", config_}, log_)); }
  // Runs pgfanout until it exits; its exit code (nullopt: still running after `budget`).
  std::optional<int> RunToExit(std::chrono::seconds budget) {
    Start();
    auto code = daemon_.Wait(budget);
    if (!code) {
      daemon_.Kill(SIGKILL);
      daemon_.Wait(10s);
    }
    return code;
  }

  // Before a failover: table `t` streamed to a JSONL sink of every tenant, `rows` rows
  // (ids 1..rows) delivered, then more rows (ids from 100), each after a checkpoint, until
  // the slot's restart_lsn is a snapshot the server's decoding saved, as on a primary that
  // has streamed a while (a checkpoint logs the running transactions; decoding saves a
  // snapshot there, and the restart point moves to it once pgfanout confirms past it).
  // Then the daemon and the server stop. `delivered`: the lines written.
  void StreamSettleAndStop(int rows, size_t& delivered) {
    pg_->Exec("CREATE TABLE t (id int PRIMARY KEY, tenant_id text)");
    WriteConfig(*pg_, JsonlSink("\"*\""));
    Start();
    WaitSlotActive(*pg_, daemon_, "pgfanout_src");
    pg_->Exec(
        fmt::format("INSERT INTO t SELECT g, (6 + g)::text FROM generate_series(1, {}) g", rows));
    ASSERT_TRUE(Eventually([&] { return Lines() == static_cast<size_t>(rows); })) << Lines();
    delivered = rows;
    const auto deadline = Clock::now() + 60s;
    while (!SlotRestartsFromSavedSnapshot(*pg_, "pgfanout_src") && Clock::now() < deadline) {
      pg_->Exec("CHECKPOINT");
      pg_->Exec(fmt::format("INSERT INTO t VALUES ({}, '7')", 100 + delivered));
      ++delivered;
      Eventually([&] { return Lines() == delivered; });
    }
    ASSERT_TRUE(SlotRestartsFromSavedSnapshot(*pg_, "pgfanout_src"))
        << "the slot's restart point never reached a saved snapshot";
    ASSERT_EQ(Lines(), delivered);
    StopCleanly(daemon_);
    ASSERT_TRUE(pg_->Stop("fast"));
  }

  std::unique_ptr<PgServer> pg_;
  std::string dir_, config_, log_;
  DaemonProcess daemon_;
};

// A configured tenant value must be written as the source writes the tenant column's
// values (its type's output text: what the stream carries). "07" for an integer column
// used to copy tenant 7's rows in the backfill (SQL compared the value) while the stream
// never matched them (the router compares the text): refused, with the form to write.
TEST_F(SourceChecksTest, TenantValuesAreRefusedUnlessWrittenAsTheSourceWritesThem) {
  struct Case {
    std::string type, configured, message;
  };
  const std::vector<Case> cases = {
      {"integer", "07", "write \"7\""},
      {"uuid", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
       "write \"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\""},
      {"character(4)", "ab", "write \"ab  \""},
      {"integer", "seven", "is not a value of public.t.tenant_id (integer)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.type + " " + c.configured);
    pg_->Exec(
        fmt::format("DROP TABLE IF EXISTS t; CREATE TABLE t (id int PRIMARY KEY, tenant_id "
                    "{}); ALTER TABLE t REPLICA IDENTITY FULL",
                    c.type));
    std::filesystem::remove_all(dir_ + "/state");
    std::filesystem::remove(log_);
    WriteConfig(*pg_, JsonlSink("\"" + c.configured + "\""));
    auto code = RunToExit(30s);
    ASSERT_EQ(code, std::optional<int>(1)) << Log();
    EXPECT_NE(Log().find(c.message), std::string::npos) << Log();
  }
}

// citext and a case-insensitive collation compare 'ACME' and 'acme' equal in SQL; the
// stream carries the text as written. Backfill, the stream, deletes and verify all compare
// that text, so sink "ACME" gets exactly the rows whose tenant reads ACME, and no other.
TEST_F(SourceChecksTest, CaseInsensitiveTenantColumnsAreComparedAsWrittenEverywhere) {
  pg_->Exec("CREATE DATABASE acme");
  pg_->Exec(R"sql(
    CREATE EXTENSION citext;
    CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
    CREATE TABLE t (id int PRIMARY KEY, tenant_id citext NOT NULL, note text);
    ALTER TABLE t REPLICA IDENTITY FULL;
    CREATE TABLE k (id int PRIMARY KEY, tenant_id text COLLATE ci NOT NULL, note text);
    ALTER TABLE k REPLICA IDENTITY FULL;
    INSERT INTO t VALUES (1, 'ACME', 'a'), (2, 'acme', 'b'), (3, 'Acme', 'c');
    INSERT INTO k VALUES (1, 'ACME', 'a'), (2, 'acme', 'b');
  )sql");
  pg_->Exec(R"sql(
    CREATE TABLE t (id int PRIMARY KEY, tenant_id text, note text, pgfanout_version bigint NOT NULL);
    CREATE TABLE k (id int PRIMARY KEY, tenant_id text, note text, pgfanout_version bigint NOT NULL);
  )sql",
            "acme");
  WriteConfig(*pg_, fmt::format(R"yaml(
  - id: acme-db
    type: postgres
    tenants: ["ACME"]
    dsn: "{}"
)yaml",
                                pg_->Dsn("acme")));
  {  // both tables
    std::ifstream in(config_);
    std::stringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    text.replace(text.find("sinks:"), 6, "  - name: k\n    tenant_column: tenant_id\nsinks:");
    std::ofstream(config_) << text;
  }
  Start();
  WaitSlotActive(*pg_, daemon_, "pgfanout_src");
  pg_->Exec(R"sql(
    INSERT INTO t VALUES (4, 'acme', 'd'), (5, 'ACME', 'e');
    UPDATE t SET note = note || '!' WHERE id IN (1, 2);
    DELETE FROM t WHERE id = 5;
    INSERT INTO k VALUES (3, 'Acme', 'c'), (4, 'ACME', 'd');
    UPDATE k SET note = 'moved' WHERE id = 2;
  )sql");
  const std::string want_t =
      "SELECT string_agg(id || ':' || tenant_id || ':' || note, ',' ORDER BY id) FROM t "
      "WHERE tenant_id::text = 'ACME'";
  const std::string want_k =
      "SELECT string_agg(id || ':' || tenant_id || ':' || note, ',' ORDER BY id) FROM k "
      "WHERE tenant_id COLLATE \"C\" = 'ACME'";
  const std::string have_t =
      "SELECT string_agg(id || ':' || tenant_id || ':' || note, ',' ORDER BY id) FROM t";
  const std::string have_k =
      "SELECT string_agg(id || ':' || tenant_id || ':' || note, ',' ORDER BY id) FROM k";
  EXPECT_TRUE(Eventually([&] {
    return pg_->Scalar(have_t, "acme") == pg_->Scalar(want_t) &&
           pg_->Scalar(have_k, "acme") == pg_->Scalar(want_k);
  })) << "t: "
      << pg_->Scalar(have_t, "acme") << " want " << pg_->Scalar(want_t)
      << "\nk: " << pg_->Scalar(have_k, "acme") << " want " << pg_->Scalar(want_k);
  EXPECT_EQ(pg_->Scalar(want_t), "1:ACME:a!");
  EXPECT_NE(Log().find("compares case-insensitively on the source"), std::string::npos) << Log();
  std::string out;
  EXPECT_EQ(RunPgfanout({"verify", "--sink", "acme-db", "--config", config_}, &out), 0) << out;
  EXPECT_NE(out.find("in sync"), std::string::npos) << out;
  StopCleanly(daemon_);
}

// A failover whose new primary has everything the event log holds: the standby was a copy
// taken after the last change pgfanout logged (with the slot, as Patroni's permanent slots
// keep it). The old timeline ended after the log's position: pgfanout goes on.
TEST_F(SourceChecksTest, ATimelineSwitchAfterTheLogsPositionIsFollowed) {
  size_t delivered = 0;
  ASSERT_NO_FATAL_FAILURE(StreamSettleAndStop(3, delivered));
  auto promoted = pg_->CopyStopped();
  ASSERT_NE(promoted, nullptr);
  ASSERT_TRUE(promoted->StartAsStandbyAndPromote());
  ASSERT_EQ(promoted->Scalar("SELECT timeline_id FROM pg_control_checkpoint()"), "2");
  promoted->Exec("INSERT INTO t VALUES (4, '7'), (5, '8')");
  WriteConfig(*promoted, JsonlSink("\"*\""));
  Start();
  EXPECT_TRUE(Eventually([&] { return Lines() == delivered + 2; })) << Lines();
  EXPECT_NE(Log().find("the source moved from timeline 1 to 2"), std::string::npos) << Log();
  StopCleanly(daemon_);
}

// The same failover, but the new primary's slot is a copy of the state file alone, as
// Patroni makes on a replica: its pg_logical/snapshots lacks the snapshot saved at the
// slot's restart point (removed here from the standby's files). Decoding it would rebuild
// one and skip, silently, what commits meanwhile: pgfanout stops with exit 1 and says
// why, delivers nothing from the new timeline, and stops again at the next start (the
// new timeline is not recorded until the slot passes).
TEST_F(SourceChecksTest, ASlotCopyWithoutItsSavedSnapshotStopsPgfanoutAfterAFailover) {
  size_t delivered = 0;
  ASSERT_NO_FATAL_FAILURE(StreamSettleAndStop(1, delivered));
  auto promoted = pg_->CopyStopped();
  ASSERT_NE(promoted, nullptr);
  const std::string snapshots = promoted->dir() + "/data/pg_logical/snapshots";
  size_t removed = 0;
  for (const auto& f : std::filesystem::directory_iterator(snapshots)) {
    removed += std::filesystem::remove(f.path()) ? 1 : 0;
  }
  ASSERT_GT(removed, 0u) << "the copy had no saved snapshot to remove";
  ASSERT_TRUE(promoted->StartAsStandbyAndPromote());
  ASSERT_FALSE(SlotRestartsFromSavedSnapshot(*promoted, "pgfanout_src"));
  promoted->Exec("INSERT INTO t VALUES (2, '7'), (3, '8')");
  WriteConfig(*promoted, JsonlSink("\"*\""));
  for (int start = 0; start < 2; ++start) {
    EXPECT_EQ(RunToExit(30s), std::optional<int>(1)) << Log();
    EXPECT_EQ(Count(Log(), "has no saved snapshot at its restart point"),
              static_cast<size_t>(start + 1))
        << Log();
    EXPECT_EQ(Lines(), delivered) << "rows of the new timeline were delivered";
  }
}

// The promoted standby stopped short of what pgfanout logged (an asynchronous standby
// behind at the failover): the old timeline ended before the log's position, so the log
// holds transactions this server never had. pgfanout stops with exit 1 and says so, and
// delivers nothing from the new timeline.
TEST_F(SourceChecksTest, ATimelineSwitchBeforeTheLogsPositionStopsPgfanout) {
  pg_->Exec("CREATE TABLE t (id int PRIMARY KEY, tenant_id text)");
  WriteConfig(*pg_, JsonlSink("\"*\""));
  Start();
  WaitSlotActive(*pg_, daemon_, "pgfanout_src");
  pg_->Exec("INSERT INTO t VALUES (1, '7')");
  ASSERT_TRUE(Eventually([&] { return Lines() == 1; }));
  StopCleanly(daemon_);
  // The standby's copy, slot included, as of now; the primary goes on without it.
  ASSERT_TRUE(pg_->Stop("fast"));
  auto behind = pg_->CopyStopped();
  ASSERT_NE(behind, nullptr);
  ASSERT_TRUE(pg_->StartAgain());
  Start();
  WaitSlotActive(*pg_, daemon_, "pgfanout_src");
  pg_->Exec("INSERT INTO t VALUES (2, '7'), (3, '8')");
  ASSERT_TRUE(Eventually([&] { return Lines() == 3; }));
  StopCleanly(daemon_);
  ASSERT_TRUE(pg_->Stop("fast"));
  ASSERT_TRUE(behind->StartAsStandbyAndPromote());
  behind->Exec("INSERT INTO t VALUES (2, 'diverged')");
  WriteConfig(*behind, JsonlSink("\"*\""));
  auto code = RunToExit(30s);
  EXPECT_EQ(code, std::optional<int>(1)) << Log();
  EXPECT_NE(Log().find("the source switched from timeline 1 to 2"), std::string::npos) << Log();
  EXPECT_EQ(Lines(), 3u) << "nothing of the new timeline was delivered";
}

// A slot made before the publication, as Patroni makes its permanent slots when the
// cluster bootstraps: pgfanout adopts it for a new state dir, makes the publication, and
// moves the slot past it (pg_replication_slot_advance). Streaming works; the row written
// before comes by the backfill, one written after by the stream; nothing is retried.
TEST_F(SourceChecksTest, ASlotMadeBeforeThePublicationIsAdoptedAndMovedPastIt) {
  pg_->Exec("CREATE TABLE t (id int PRIMARY KEY, tenant_id text)");
  const std::string made =
      pg_->Scalar("SELECT lsn FROM pg_create_logical_replication_slot('pgfanout_src', 'pgoutput')");
  pg_->Exec("INSERT INTO t VALUES (1, '7')");
  WriteConfig(*pg_, JsonlSink("\"*\"") + "    backfill: true\n");
  Start();
  ASSERT_TRUE(Eventually([&] { return Log().find("advanced it to") != std::string::npos; }))
      << Log();
  pg_->Exec("INSERT INTO t VALUES (2, '7')");
  EXPECT_TRUE(Eventually([&] { return Lines() == 2; })) << Lines() << " lines\n" << Log();
  EXPECT_TRUE(daemon_.running());
  const std::string log = Log();
  EXPECT_EQ(Count(log, "pg_replication_slot_advance"), 1u) << log;
  EXPECT_EQ(Count(log, "reconnecting in"), 0u) << log;
  EXPECT_EQ(
      pg_->Scalar(fmt::format("SELECT confirmed_flush_lsn > '{}' FROM pg_replication_slots", made)),
      "t");
}

// The publication dropped and made again while pgfanout is down, with a change between:
// the state dir holds events, so the slot is not moved (that would skip the change); the
// walsender fails every stream on it, and pgfanout stops at once and says what to do,
// rather than reconnecting a few times a second forever.
TEST_F(SourceChecksTest, APublicationMadeAgainAfterAChangeStopsPgfanoutWithWhatToDo) {
  pg_->Exec("CREATE TABLE t (id int PRIMARY KEY, tenant_id text)");
  WriteConfig(*pg_, JsonlSink("\"*\""));
  Start();
  ASSERT_TRUE(Eventually([&] { return Log().find("streaming slot") != std::string::npos; }));
  pg_->Exec("INSERT INTO t VALUES (1, '7')");
  ASSERT_TRUE(Eventually([&] { return Lines() == 1; })) << Log();
  daemon_.Kill(SIGTERM);
  ASSERT_TRUE(daemon_.Wait(30s).has_value());
  pg_->Exec("DROP PUBLICATION pgfanout_src");
  pg_->Exec("INSERT INTO t VALUES (2, '7')");
  auto code = RunToExit(30s);
  EXPECT_EQ(code, std::optional<int>(1)) << Log();
  const std::string log = Log();
  EXPECT_NE(log.find("publication \"pgfanout_src\" does not exist"), std::string::npos) << log;
  EXPECT_NE(log.find("pg_replication_slot_advance"), std::string::npos) << log;
  EXPECT_LE(Count(log, "reconnecting in"), 1u) << log;
  EXPECT_EQ(Lines(), 1u) << "nothing after the publication's gap was delivered";
}

// Every stream ends right after it starts (here: an administrator ends the walsender each
// time it appears). Each reconnect succeeds, but the backoff must keep growing rather than
// start over at every connect: a handful of reconnects in 10 s, not dozens.
TEST_F(SourceChecksTest, ReconnectsBackOffWhenEveryStreamEndsAtOnce) {
  pg_->Exec("CREATE TABLE t (id int PRIMARY KEY, tenant_id text)");
  WriteConfig(*pg_, JsonlSink("\"*\""));
  Start();
  WaitSlotActive(*pg_, daemon_, "pgfanout_src");
  const auto until = Clock::now() + 10s;
  while (Clock::now() < until) {
    pg_->Exec(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
        "WHERE slot_name = 'pgfanout_src' AND active_pid IS NOT NULL");
    std::this_thread::sleep_for(20ms);
  }
  const size_t reconnects = Count(Log(), "reconnecting in");
  EXPECT_GE(reconnects, 3u) << Log();
  EXPECT_LE(reconnects, 8u) << Log();
  WaitSlotActive(*pg_, daemon_, "pgfanout_src");  // and it streams again once left alone
  pg_->Exec("INSERT INTO t VALUES (1, '7')");
  EXPECT_TRUE(Eventually([&] { return Lines() == 1; }));
  StopCleanly(daemon_);
}

// The other side of the backoff: a stream that logged transactions was healthy, however
// soon it ended. Connections reset every second under load are each retried at the
// backoff's first step, not an ever longer wait while the slot retains WAL.
TEST_F(SourceChecksTest, ResetsUnderLoadReconnectAtOnceBecauseEachStreamMadeProgress) {
  pg_->Exec("CREATE TABLE t (id int PRIMARY KEY, tenant_id text)");
  WriteConfig(*pg_, JsonlSink("\"*\""));
  Start();
  WaitSlotActive(*pg_, daemon_, "pgfanout_src");
  int id = 0;
  for (int reset = 0; reset < 5; ++reset) {
    for (int i = 0; i < 20; ++i) {
      pg_->Exec(fmt::format("INSERT INTO t VALUES ({}, '7')", ++id));
      std::this_thread::sleep_for(50ms);
    }
    pg_->Exec(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
        "WHERE slot_name = 'pgfanout_src' AND active_pid IS NOT NULL");
  }
  EXPECT_TRUE(Eventually([&] { return Lines() == static_cast<size_t>(id); })) << Log();
  const std::string log = Log();
  const std::regex waited("reconnecting in ([0-9]+) ms");
  size_t reconnects = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), waited); it != std::sregex_iterator();
       ++it) {
    ++reconnects;
    EXPECT_LE(std::stoi((*it)[1].str()), 500) << "a wait beyond the backoff's first step:\n" << log;
  }
  EXPECT_GE(reconnects, 4u) << log;
  StopCleanly(daemon_);
}

}  // namespace
}  // namespace pgfanout::testing
