#include "test/integration/sink_e2e_fixture.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSchema = R"sql(
  CREATE TABLE accounts (tenant_id text NOT NULL, id int NOT NULL, name text,
                         balance numeric(12,2), note text, active boolean,
                         updated_at timestamptz, PRIMARY KEY (tenant_id, id));
  CREATE TABLE events (id bigint PRIMARY KEY, tenant_id text NOT NULL, kind text, payload jsonb);
  ALTER TABLE events REPLICA IDENTITY FULL;
  CREATE SEQUENCE background_ids START 1000000000;
)sql";

// The same tables partitioned: accounts by LIST of its tenant (a row moving to another
// tenant moves to another partition: a DELETE and an INSERT of the root), events by RANGE
// of its id (the background workload's ids in a partition of their own; ids 100000 to
// 1000000000 have none until a test makes one). REPLICA IDENTITY is per partition, so
// events sets it on each.
constexpr const char* kPartitionedSchema = R"sql(
  CREATE TABLE accounts (tenant_id text NOT NULL, id int NOT NULL, name text,
                         balance numeric(12,2), note text, active boolean,
                         updated_at timestamptz, PRIMARY KEY (tenant_id, id))
    PARTITION BY LIST (tenant_id);
  CREATE TABLE accounts_t1 PARTITION OF accounts FOR VALUES IN ('t1');
  CREATE TABLE accounts_t2 PARTITION OF accounts FOR VALUES IN ('t2');
  CREATE TABLE accounts_other PARTITION OF accounts DEFAULT;
  CREATE TABLE events (id bigint NOT NULL, tenant_id text NOT NULL, kind text, payload jsonb,
                       PRIMARY KEY (id))
    PARTITION BY RANGE (id);
  CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (MINVALUE) TO (2500);
  CREATE TABLE events_high PARTITION OF events FOR VALUES FROM (2500) TO (100000);
  CREATE TABLE events_bg PARTITION OF events FOR VALUES FROM (1000000000) TO (MAXVALUE);
  ALTER TABLE events REPLICA IDENTITY FULL;
  ALTER TABLE events_low REPLICA IDENTITY FULL;
  ALTER TABLE events_high REPLICA IDENTITY FULL;
  ALTER TABLE events_bg REPLICA IDENTITY FULL;
  CREATE SEQUENCE background_ids START 1000000000;
)sql";

// A 100 kB value that compresses badly: stored out of line.
constexpr const char* kBig =
    "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 3200))";

}  // namespace

const std::vector<std::string>& SinkE2ETest::Tables() {
  static const std::vector<std::string> tables = {"accounts", "events"};
  return tables;
}

const std::vector<std::string>& SinkE2ETest::Columns(const std::string& table) {
  static const std::vector<std::string> accounts = {"tenant_id", "id",     "name",      "balance",
                                                    "note",      "active", "updated_at"};
  static const std::vector<std::string> events = {"id", "tenant_id", "kind", "payload"};
  return table == "accounts" ? accounts : events;
}

void SinkE2ETest::SetUp() {
  pg_ = PgServer::Start();
  ASSERT_NE(pg_, nullptr);
  pg_->Exec(partitioned_ ? kPartitionedSchema : kSchema);
  char tmpl[] = "/tmp/pgfanout-sink-e2e-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  work_dir_ = tmpl;
  config_path_ = work_dir_ + "/pgfanout.yaml";
  log_path_ = work_dir_ + "/pgfanout.log";
}

void SinkE2ETest::TearDown() {
  StopBackground();
  if (daemon_.running()) {
    daemon_.Kill(SIGKILL);
    daemon_.Wait(10s);
  }
  if (HasFailure()) {
    std::string log = DaemonLog();
    std::cerr << "---- pgfanout log (" << log_path_ << "), last 20000 bytes ----\n"
              << log.substr(log.size() > 20000 ? log.size() - 20000 : 0);
  }
  pg_.reset();
  if (!HasFailure() && getenv("PGFANOUT_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(work_dir_, ec);
  }
}

void SinkE2ETest::WriteConfig() {
  std::ofstream(config_path_) << fmt::format(R"yaml(
source:
  dsn: "{}"
  slot: pgfanout_e2e
  publication: pgfanout_e2e
  status_interval: 1s
{}state_dir: {}/state
http:
  listen: "127.0.0.1:0"
{}log:
  retain: 24h
{}tables:
  - name: public.accounts
    tenant_column: tenant_id
  - name: public.events
    tenant_column: tenant_id
sinks:
{})yaml",
                                             pg_->Dsn(), source_yaml_, work_dir_, http_yaml_,
                                             extra_yaml_, SinksYaml());
}

void SinkE2ETest::UseHttpToken(const std::string& token) {
  const std::string file = work_dir_ + "/token";
  std::ofstream(file) << token << "\n";
  ::chmod(file.c_str(), 0600);
  http_yaml_ = "  token_file: " + file + "\n";
}

std::string SinkE2ETest::HttpAddress(size_t nth) {
  const std::regex re("http: listening on ([0-9.:]+)");
  for (auto deadline = std::chrono::steady_clock::now() + 30s;
       std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(50ms)) {
    const std::string log = DaemonLog();
    size_t seen = 0;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it) {
      if (++seen == nth) return (*it)[1];
    }
  }
  ADD_FAILURE() << "no 'http: listening on' line number " << nth;
  return "";
}

void SinkE2ETest::StartDaemon(bool wait) {
  WriteConfig();
  ASSERT_TRUE(daemon_.Start({"run", "--config", config_path_}, log_path_, daemon_env_));
  if (wait) WaitSlotActive(*pg_, daemon_, "pgfanout_e2e");
}

void SinkE2ETest::StopDaemon() { StopCleanly(daemon_); }

void SinkE2ETest::KillDaemon() {
  daemon_.Kill(SIGKILL);
  daemon_.Wait(10s);
}

std::string SinkE2ETest::DaemonLog() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

SinkE2ETest::Rows SinkE2ETest::SourceRows(const std::string& table,
                                          const std::set<std::string>& tenants,
                                          const std::string& condition) {
  std::string select, in;
  for (const auto& c : Columns(table)) select += (select.empty() ? "" : ", ") + c + "::text";
  for (const auto& t : tenants) in += (in.empty() ? "'" : ", '") + t + "'";
  std::string where = in.empty() ? "true" : "tenant_id IN (" + in + ")";
  if (!condition.empty()) where += " AND (" + condition + ")";
  Rows out;
  const bool accounts = table == "accounts";
  for (auto& r : pg_->Query(fmt::format("SELECT {} FROM {} WHERE {}", select, table, where))) {
    std::string key = accounts ? *r[0] + "/" + *r[1] : *r[0];
    out[key] = std::move(r);
  }
  return out;
}

std::string DiffRows(const SinkE2ETest::Rows& want, const SinkE2ETest::Rows& got, size_t limit) {
  auto text = [](const SinkE2ETest::Row& r) {
    std::string s;
    for (const auto& v : r) {
      std::string one = v ? *v : "NULL";
      if (one.size() > 40) one = one.substr(0, 16) + "…(" + std::to_string(one.size()) + " bytes)";
      s += (s.empty() ? "" : " | ") + one;
    }
    return s;
  };
  std::string out;
  size_t n = 0;
  for (const auto& [k, row] : want) {
    auto it = got.find(k);
    if (it == got.end()) {
      if (n++ < limit) out += "  missing " + k + ": " + text(row) + "\n";
    } else if (it->second != row) {
      if (n++ < limit) out += "  differs " + k + ":\n    want " + text(row) + "\n    got  " + text(it->second) + "\n";
    }
  }
  for (const auto& [k, row] : got) {
    if (!want.count(k) && n++ < limit) out += "  unexpected " + k + ": " + text(row) + "\n";
  }
  if (n > limit) out += fmt::format("  … {} differences in all\n", n);
  return out;
}

void SinkE2ETest::ExpectSinkEqualsSource(const std::string& sink_id,
                                         const std::set<std::string>& tenants,
                                         std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string diff;
  while (true) {
    diff.clear();
    for (const auto& table : Tables()) {
      std::string condition;
      if (auto w = expected_where_.find(sink_id); w != expected_where_.end()) {
        if (auto c = w->second.find(table); c != w->second.end()) condition = c->second;
      }
      auto want = SourceRows(table, tenants, condition);
      auto got = TargetRows(sink_id, table, tenants);
      if (!got) {
        diff += table + ": cannot read the target yet\n";
        continue;
      }
      std::string d = DiffRows(want, *got);
      if (!d.empty()) diff += table + fmt::format(" ({} rows at the source, {} in the sink):\n", want.size(), got->size()) + d;
    }
    if (diff.empty() || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_EQ(diff, "") << "sink " << sink_id << " differs from the source after "
                      << timeout.count() << " s:\n"
                      << diff;
}

void SinkE2ETest::Workload(int round) {
  const int b = round * 1000;
  auto sql = [&](const std::string& text) { pg_->Exec(fmt::format(fmt::runtime(text), fmt::arg("B", b), fmt::arg("BIG", kBig))); };
  // Many rows in one transaction, three tenants, some with a TOASTed note.
  sql(R"sql(
    INSERT INTO accounts (tenant_id, id, name, balance, note, active, updated_at)
      SELECT t, {B} + i, 'acct ' || i || E' "q" \\ ü', i * 1.25,
             CASE WHEN i % 5 = 0 THEN {BIG} ELSE 'short ' || i END,
             i % 2 = 0, '2026-01-01 00:00:00+00'::timestamptz + i * interval '1 minute'
      FROM unnest(ARRAY['t1', 't2', 't3']) t, generate_series(1, 20) i;
    INSERT INTO events (id, tenant_id, kind, payload)
      SELECT {B} + i, (ARRAY['t1', 't2', 't3'])[1 + i % 3], 'created',
             jsonb_build_object('i', i, 's', 'x"y', 'a', jsonb_build_array(1, null, true))
      FROM generate_series(1, 30) i;
  )sql");
  // Single-row transactions.
  for (int i = 21; i <= 25; ++i) {
    sql(fmt::format("INSERT INTO accounts VALUES ('t{}', {{B}} + {}, 'single', 0, NULL, NULL, NULL)",
                    1 + i % 3, i));
  }
  // Updates, the TOASTed note left alone, then changed for some.
  sql("UPDATE accounts SET balance = balance + 1, updated_at = now() WHERE id > {B} AND id % 3 = 0");
  sql("UPDATE accounts SET note = 'rewritten' WHERE id > {B} AND id % 10 = 0");
  // A key change within a tenant, and moves to another tenant (the tenant is in the key;
  // one of them keeps a TOASTed note the update does not touch).
  sql("UPDATE accounts SET id = id + 500 WHERE tenant_id = 't2' AND id = {B} + 1");
  sql("UPDATE accounts SET tenant_id = 't3', id = id + 700, name = 'moved' "
      "WHERE tenant_id = 't1' AND id = {B} + 5");
  sql("UPDATE accounts SET tenant_id = 't1', id = id + 700 WHERE tenant_id = 't2' AND id = {B} + 2");
  // events move under REPLICA IDENTITY FULL, change payload, go away.
  sql("UPDATE events SET tenant_id = 't2', kind = 'moved' WHERE id = {B} + 3");
  sql("UPDATE events SET payload = payload || '{{\"v\": 2}}' WHERE id > {B} AND id % 4 = 0");
  sql(R"sql(
    BEGIN;
    DELETE FROM accounts WHERE id > {B} AND id % 7 = 0;
    DELETE FROM events WHERE id > {B} AND id % 9 = 0;
    INSERT INTO events VALUES ({B} + 99, 't1', 'last', NULL);
    COMMIT;
  )sql");
}

void SinkE2ETest::ChangePartitionsUnseenByTheStream() {
  ASSERT_TRUE(partitioned_);
  pg_->Exec("TRUNCATE accounts_t1");
  pg_->Exec("ALTER TABLE accounts DETACH PARTITION accounts_t2");
  pg_->Exec(
      "CREATE TABLE events_more (LIKE events INCLUDING ALL); "
      "ALTER TABLE events_more REPLICA IDENTITY FULL; "
      "INSERT INTO events_more SELECT 200000 + i, 't' || (1 + i % 3), 'attached', NULL "
      "FROM generate_series(1, 30) i; "
      "ALTER TABLE events ATTACH PARTITION events_more FOR VALUES FROM (100000) TO "
      "(1000000000)");
  ASSERT_EQ(pg_->Scalar("SELECT count(*) FROM accounts WHERE tenant_id IN ('t1', 't2')"), "0");
}

void SinkE2ETest::StartBackground(double rate) {
  background_stop_ = false;
  background_ = std::thread([this, rate] {
    PGconn* c = nullptr;
    std::mt19937_64 rng(42);
    const auto period = std::chrono::duration<double>(1.0 / rate);
    auto next = std::chrono::steady_clock::now();
    for (int64_t i = 0; !background_stop_; ++i) {
      if (c == nullptr || PQstatus(c) != CONNECTION_OK) {
        if (c) PQfinish(c);
        c = PQconnectdb(pg_->Dsn().c_str());
      }
      const char* tenant = (rng() % 3 == 0) ? "t1" : (rng() % 2 ? "t2" : "t3");
      std::string sql = fmt::format(
          "BEGIN; INSERT INTO events SELECT nextval('background_ids'), '{0}', 'bg', "
          "jsonb_build_object('n', {1}); "
          "UPDATE accounts SET balance = balance + 1 WHERE tenant_id = '{0}' AND id = "
          "(SELECT min(id) FROM accounts WHERE tenant_id = '{0}'); {2}COMMIT;",
          tenant, i,
          i % 5 == 0 ? "DELETE FROM events WHERE id = (SELECT min(id) FROM events WHERE kind "
                       "= 'bg'); "
                     : "");
      PQclear(PQexec(c, sql.c_str()));
      next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
      std::this_thread::sleep_until(next);
    }
    if (c) PQfinish(c);
  });
}

void SinkE2ETest::StopBackground() {
  background_stop_ = true;
  if (background_.joinable()) background_.join();
}

void SinkE2ETest::KillLoop(int kills, const std::map<std::string, std::set<std::string>>& sinks) {
  const char* seed_env = std::getenv("PGFANOUT_E2E_SEED");
  const uint64_t seed = seed_env ? std::strtoull(seed_env, nullptr, 10) : std::random_device{}();
  std::cout << "kill loop seed " << seed << " (repeat with PGFANOUT_E2E_SEED=" << seed << ")\n";
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> wait(0.5, 2.0);
  StartBackground(100);
  for (int i = 0; i < kills; ++i) {
    std::this_thread::sleep_for(std::chrono::duration<double>(wait(rng)));
    ASSERT_TRUE(daemon_.running()) << "pgfanout exited by itself before kill " << i;
    KillDaemon();
    ASSERT_NO_FATAL_FAILURE(StartDaemon(/*wait=*/false));
  }
  std::this_thread::sleep_for(1s);
  StopBackground();
  for (const auto& [id, tenants] : sinks) ExpectSinkEqualsSource(id, tenants, std::chrono::seconds(120));
}

}  // namespace pgfanout::testing
