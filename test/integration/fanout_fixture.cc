#include "test/integration/fanout_fixture.h"

#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace pgfanout::testing {
namespace {

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::string Show(const std::vector<Row>& rows, size_t limit = 5) {
  std::string out;
  for (size_t i = 0; i < rows.size() && i < limit; ++i) {
    out += "  (";
    for (size_t j = 0; j < rows[i].size(); ++j) {
      out += (j ? ", " : "") + (rows[i][j] ? rows[i][j]->substr(0, 60) : std::string("NULL"));
    }
    out += ")\n";
  }
  if (rows.size() > limit) out += fmt::format("  … {} rows in all\n", rows.size());
  return out;
}

}  // namespace

void FanoutTest::SetUp() {
  pg_ = PgServer::Start();
  ASSERT_NE(pg_, nullptr);
  other_pg_ = PgServer::Start();
  ASSERT_NE(other_pg_, nullptr);
  pg_->Exec(R"sql(
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, email text, name text,
      score numeric, active boolean, created_at timestamptz, email_confirmed_at timestamptz,
      profile jsonb, tags text[], avatar bytea, uid uuid, mood mood, counter bigint, bio text);
    ALTER TABLE users REPLICA IDENTITY FULL;
    CREATE TABLE contact_channels (tenant_id text, id bigint, kind text, value text,
      PRIMARY KEY (tenant_id, id));
    CREATE TABLE "Team Rooms" ("Room Id" int PRIMARY KEY, tenant_id text NOT NULL,
      "Display ""Name""" text);
    ALTER TABLE "Team Rooms" REPLICA IDENTITY FULL;
  )sql");
  for (const char* db : {"tenant7", "tenant8", "analytics"}) {
    pg_->Exec(fmt::format("CREATE DATABASE {}", db));
  }
  other_pg_->Exec("CREATE DATABASE tenant9");
  targets_ = {{"tenant-7", "7", pg_.get(), "tenant7"},
              {"tenant-8", "8", pg_.get(), "tenant8"},
              {"tenant-9", "9", other_pg_.get(), "tenant9"},
              {"analytics", "*", pg_.get(), "analytics"}};
  tables_ = {
      {"users",
       "id::text, tenant_id, email, name, score::text, active::text, created_at::text, "
       "email_confirmed_at::text, profile::text, tags::text, encode(avatar, 'hex'), uid::text, "
       "mood::text, counter::text, md5(bio), length(bio)",
       "id"},
      {"contact_channels", "tenant_id, id::text, kind, value", "tenant_id, id"},
      {"\"Team Rooms\"", "\"Room Id\"::text, tenant_id, \"Display \"\"Name\"\"\"", "\"Room Id\""},
  };
  char tmpl[] = "/tmp/pgfanout-fanout-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  work_dir_ = tmpl;
  log_path_ = work_dir_ + "/pgfanout.log";
  config_path_ = work_dir_ + "/pgfanout.yaml";
  WriteConfig();
}

void FanoutTest::TearDown() {
  if (daemon_.running()) {
    daemon_.Kill(SIGKILL);
    daemon_.Wait(std::chrono::seconds(10));
  }
  if (HasFailure()) {
    std::string log = DaemonLog();
    std::cerr << "---- pgfanout log (" << log_path_ << ", last 20000 bytes) ----\n"
              << log.substr(log.size() > 20000 ? log.size() - 20000 : 0);
  }
  pg_.reset();
  other_pg_.reset();
  if (!HasFailure() && getenv("PGFANOUT_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(work_dir_, ec);
  }
}

void FanoutTest::WriteConfig(const std::string& extra_yaml) {
  std::string sinks;
  for (const auto& t : targets_) {
    sinks += fmt::format(R"yaml(
  - id: {}
    type: postgres
    tenants: ["{}"]
    dsn: "{}"
    create_tables: true
    batch_size: 200
)yaml",
                         t.sink_id, t.tenant, t.server->Dsn(t.db));
  }
  std::ofstream out(config_path_);
  out << fmt::format(R"yaml(
source:
  dsn: "{}"
  slot: pgfanout_test
  publication: pgfanout_test
  status_interval: 1s
state_dir: {}/state
http:
  listen: "127.0.0.1:0"
log:
{}tables:
  - name: users
    tenant_column: tenant_id
  - name: public.contact_channels
    tenant_column: tenant_id
  - name: 'public."Team Rooms"'
    tenant_column: tenant_id
sinks:{}{}
)yaml",
                     pg_->Dsn(), work_dir_, log_section_, sinks, extra_yaml);
}

void FanoutTest::AddPeopleSink() {
  pg_->Exec(R"sql(
    CREATE SCHEMA crm;
    CREATE TABLE crm.people (user_id int PRIMARY KEY, tenant_id text NOT NULL, mail text,
      email_verified boolean, deleted_at timestamptz, pgfanout_version bigint NOT NULL);
  )sql",
            "tenant7");
  WriteConfig(fmt::format(R"yaml(
  - id: people-7
    type: postgres
    tenants: ["7"]
    dsn: "{}"
    schema: crm
    tables:
      - source: users
        target: people
        columns: [id, tenant_id, email]
        rename: {{id: user_id, email: mail}}
        computed: {{email_verified: "email_confirmed_at IS NOT NULL"}}
        delete: soft
        soft_delete_column: deleted_at
)yaml",
                          pg_->Dsn("tenant7")));
}

void FanoutTest::StartDaemon(const std::map<std::string, std::string>& env, bool wait_backfill) {
  ASSERT_EQ(::access(PgfanoutBinary().c_str(), X_OK), 0)
      << "set PGFANOUT_BIN to the pgfanout binary (meson test does)";
  ASSERT_TRUE(daemon_.Start({"run", "--config", config_path_}, log_path_, env));
  WaitStreaming();
  if (!wait_backfill) return;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (true) {
    auto status = Pgfanout({"status"});
    size_t sinks = 0, done = 0;
    for (size_t at = status.find("\nsink "); at != std::string::npos;
         at = status.find("\nsink ", at + 1)) {
      ++sinks;
      auto next = status.find("\nsink ", at + 1);
      auto block = status.substr(at, next == std::string::npos ? next : next - at);
      if (block.find("backfill done") != std::string::npos) ++done;
    }
    if (sinks > 0 && done == sinks) return;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "the sinks never finished copying existing rows:\n"
        << status;
    ASSERT_TRUE(daemon_.running()) << "pgfanout exited";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void FanoutTest::WaitStreaming() { WaitSlotActive(*pg_, daemon_, "pgfanout_test"); }

void FanoutTest::StopDaemon() { StopCleanly(daemon_); }

void FanoutTest::Workload(int round) {
  const std::string b = std::to_string(round * 1000);
  auto sql = [&](const std::string& text) { pg_->Exec(Replace(text, "{B}", b)); };
  // The value matrix, one multi-row transaction over four tenants (10 has no own sink).
  sql(R"sql(
    INSERT INTO users (id, tenant_id, email, name, score, active, created_at,
                       email_confirmed_at, profile, tags, avatar, uid, mood, counter, bio)
    VALUES
     ({B}+1, '7', 'ada@example.com', E'it''s a \\ back\nslash\ttab "q" ü 日本 😀',
      12345678901234567890.123456789, true, '2026-01-02 03:04:05.123456+00', NULL,
      '{"a": [1, 2, {"b": null}], "s": "x\"y"}', ARRAY['x', 'y z', 'q"t', NULL, E'b\\s'],
      '\x00ff10'::bytea, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
      9223372036854775807, 'short bio'),
     ({B}+2, '7', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
     ({B}+3, '8', 'b@example.com', 'Bo', 'NaN', false, '2026-06-01 12:00:00+05:30',
      '2026-06-02 00:00:00+00', '[]', '{}', '\x'::bytea,
      '00000000-0000-0000-0000-000000000000', 'sad', -9223372036854775808, ''),
     ({B}+4, '9', 'c@example.com', 'Cy', -0.5, true, 'infinity', '-infinity', '"str"',
      ARRAY['{', '}', ','], decode(repeat('00', 300), 'hex'), gen_random_uuid(), 'ok', 0,
      E'line1\r\nline2'),
     ({B}+5, '10', 'd@example.com', 'Di', 1e-20, NULL, now(), now(), '{"deep": {"er": 1}}',
      ARRAY['only ten'], '\xdeadbeef', gen_random_uuid(), 'ok', 42, 'ten')
  )sql");
  // A multi-row transaction mixing tables, updates and a delete.
  sql(R"sql(
    BEGIN;
    INSERT INTO contact_channels (tenant_id, id, kind, value)
      SELECT t, {B} + i, 'email', t || '-' || i || '@example.com'
      FROM unnest(ARRAY['7', '8', '9', '10']) t, generate_series(1, 4) i;
    UPDATE users SET name = 'Ada L.', email_confirmed_at = '2026-02-03 04:05:06+01'
      WHERE id = {B}+1;
    DELETE FROM contact_channels WHERE tenant_id = '7' AND id = {B}+4;
    INSERT INTO "Team Rooms" ("Room Id", tenant_id, "Display ""Name""")
      VALUES ({B}+1, '7', 'Room "A"'), ({B}+2, '8', 'b'), ({B}+3, '9', 'c');
    COMMIT;
  )sql");
  // A key update: the sinks must delete the old key, not keep both rows.
  sql("UPDATE contact_channels SET id = id + 500 WHERE tenant_id = '8' AND id = {B}+1");
  // Rows moving between tenants: 7 -> 9 (full row), 8 -> 7 (tenant in the key; 7's row with
  // that id was deleted above), 8 -> 10.
  sql("UPDATE users SET tenant_id = '9' WHERE id = {B}+1");
  sql("UPDATE contact_channels SET tenant_id = '7' WHERE tenant_id = '8' AND id = {B}+4");
  sql("UPDATE users SET tenant_id = '10' WHERE id = {B}+3");
  // A >1 MB value stored out of line, then updates that leave it unchanged (pgoutput sends
  // it as "unchanged TOAST"), including a move to another tenant.
  sql(R"sql(
    INSERT INTO users (id, tenant_id, name, bio)
      SELECT {B}+50, '7', 'big', string_agg(md5(i::text), '') FROM generate_series(1, 40000) i;
    UPDATE users SET name = 'big, renamed' WHERE id = {B}+50;
    UPDATE users SET tenant_id = '8' WHERE id = {B}+50;
    UPDATE users SET score = 1 WHERE id = {B}+50;
  )sql");
  // The same under the default replica identity (tenant in the key): the server sends only
  // the old key, so neither the event nor tenant 9's target has the unchanged value; the
  // sink must still end up with it (read from the source). 8 -> 9, then 9 -> 7 and deleted
  // at once, so the second move finds no row at its new key.
  sql(R"sql(
    INSERT INTO contact_channels (tenant_id, id, kind, value)
      SELECT '8', {B}+60, 'note', string_agg(md5(i::text), '') FROM generate_series(1, 20000) i;
    UPDATE contact_channels SET tenant_id = '9', kind = 'moved note'
      WHERE tenant_id = '8' AND id = {B}+60;
    INSERT INTO contact_channels (tenant_id, id, kind, value)
      SELECT '9', {B}+61, 'note', string_agg(md5(i::text), '') FROM generate_series(1, 20000) i;
    BEGIN;
    UPDATE contact_channels SET tenant_id = '7' WHERE tenant_id = '9' AND id = {B}+61;
    COMMIT;
    DELETE FROM contact_channels WHERE tenant_id = '7' AND id = {B}+61;
  )sql");
  sql("DELETE FROM users WHERE id = {B}+4");
  sql("DELETE FROM contact_channels WHERE tenant_id = '9' AND id = {B}+3");
  // TRUNCATE of a shared table: every tenant's rows go, on the source and in each target.
  sql(R"sql(
    TRUNCATE "Team Rooms";
    INSERT INTO "Team Rooms" ("Room Id", tenant_id, "Display ""Name""")
      VALUES ({B}+4, '7', 'after truncate'), ({B}+5, '9', E'x\ty');
  )sql");
  // Last: one transaction touching every tenant, so each sink's last event is an upsert.
  sql("UPDATE users SET counter = coalesce(counter, 0) % 1000 + 1");
}

std::string FanoutTest::Diff(const Target& target) const {
  std::string diff;
  for (const auto& table : tables_) {
    std::string where = target.tenant == "*" ? "" : " WHERE tenant_id = '" + target.tenant + "'";
    auto source = pg_->Query(fmt::format("SELECT {} FROM {}{} ORDER BY {}", table.columns,
                                         table.name, where, table.key));
    std::string error;
    auto rows = target.server->TryQuery(
        fmt::format("SELECT {} FROM {} ORDER BY {}", table.columns, table.name, table.key),
        target.db, &error);
    if (!rows) {
      // A table the sink has not needed yet is not created yet.
      if (source.empty() && error.find("does not exist") != std::string::npos) continue;
      diff += fmt::format("{} {}: {}\n", target.sink_id, table.name, error);
      continue;
    }
    if (*rows != source) {
      diff += fmt::format("{} {}: source has\n{}target has\n{}", target.sink_id, table.name,
                          Show(source), Show(*rows));
    }
  }
  return diff;
}

void FanoutTest::ExpectTargetsEqualSource(std::chrono::seconds timeout,
                                          const std::vector<std::string>& skip) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string diff;
  do {
    diff.clear();
    for (const auto& t : targets_) {
      if (std::find(skip.begin(), skip.end(), t.sink_id) == skip.end()) diff += Diff(t);
    }
    if (diff.empty()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  } while (std::chrono::steady_clock::now() < deadline);
  ADD_FAILURE() << "targets differ from the source after " << timeout.count() << " s:\n" << diff;
}

std::string FanoutTest::DaemonLog() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string FanoutTest::Pgfanout(const std::vector<std::string>& args, int* code) const {
  std::string out;
  std::vector<std::string> full = args;
  full.push_back("--config");
  full.push_back(config_path_);
  int rc = RunPgfanout(full, &out);
  if (code) *code = rc;
  return out;
}

}  // namespace pgfanout::testing
