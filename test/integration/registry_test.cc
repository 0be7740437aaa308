// Sinks as data (issue 20): sink templates in the config, and a registry table on the source
// whose rows are sinks. Its changes travel through the same slot as the rows they govern, so
// each takes effect at its exact position in commit order: a sink registered by an INSERT
// gets its tenant's rows copied and then the stream, a DELETE stops it so that nothing
// committed after it arrives, a change of destination is a new sink, `enabled = false`
// pauses it, and changes made while the daemon is down apply on restart at their positions.
// A bad row stops only its own sink, visibly, until it is fixed.
//
// Positions are pinned with a lock: the test reads a tenant's rows and changes its registry
// row in one transaction holding SHARE on the source table, so no write of the workload
// commits between the read and the change. What the read returned is then exactly what the
// sink must hold up to the change, and nothing after it.

#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "test/integration/tailer_fixture.h"
#include "test/support/http_client.h"
#include "test/support/jsonl_checker.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

// 200 projects, as the issue asks: each registration copies its tenant's rows (20 to 60 of
// them) from a snapshot of its own; four copies run at once (backfill_concurrency), which
// keeps up with ten registrations a second or so on two cores.
constexpr int kProjects = 200;
constexpr int kWaves = 20;     // registrations come in waves of kProjects / kWaves
constexpr int kDatabases = 4;  // db0 … db3 on the target cluster; project i goes to db(i % 4)
constexpr int kRowsPerTenant = 20;
constexpr const char* kRowText =
    "id || '|' || tenant_id || '|' || coalesce(name, '-') || '|' || moved";

// The tenants the workload writes: the projects, the bad row's tenant, and five tenants no
// sink ever serves (their rows must appear in no target).
std::vector<std::string> WorkloadTenants() {
  std::vector<std::string> out;
  for (int i = 0; i < kProjects; ++i) out.push_back(fmt::format("p{}", i));
  out.push_back("q0");
  for (int i = 0; i < 5; ++i) out.push_back(fmt::format("u{}", i));
  return out;
}

// Budgets are generous: CI's machine ran this suite 1.5 times slower than a quiet one, and
// a wait that times out early proves nothing.
template <class Pred>
bool Eventually(Pred done, std::chrono::milliseconds budget = 60s) {
  const auto deadline = Clock::now() + budget;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
  return true;
}

std::string Join(const std::set<std::string>& rows, size_t at_most = 6) {
  std::string out;
  size_t n = 0;
  for (const auto& r : rows) {
    if (n++ == at_most) return out + " …";
    out += (out.empty() ? "" : ", ") + r;
  }
  return out;
}

// "" when equal, else what differs (counts and a few rows each way).
std::string SetDiff(const std::set<std::string>& want, const std::set<std::string>& got) {
  if (want == got) return "";
  std::set<std::string> missing, extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::inserter(missing, missing.end()));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(),
                      std::inserter(extra, extra.end()));
  return fmt::format("want {} rows, got {}; missing [{}]; unexpected [{}]", want.size(), got.size(),
                     Join(missing), Join(extra));
}

// One libpq connection kept across statements: for the transactions that read a tenant's rows
// and change its registry row under one lock.
class Session {
 public:
  explicit Session(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) ADD_FAILURE() << PQerrorMessage(conn_);
  }
  ~Session() { PQfinish(conn_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
      ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r);
    }
    PQclear(r);
  }
  std::set<std::string> Rows(const std::string& sql) {
    std::set<std::string> out;
    PGresult* r = PQexec(conn_, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r);
    } else {
      for (int i = 0; i < PQntuples(r); ++i) out.insert(PQgetvalue(r, i, 0));
    }
    PQclear(r);
    return out;
  }

 private:
  PGconn* conn_;
};

// The workload: its own connection, small transactions of inserts, updates, deletes and moves
// (UPDATE … SET tenant_id) over every workload tenant, until told to stop.
class Writer {
 public:
  explicit Writer(std::string dsn) : dsn_(std::move(dsn)) {}

  void Run(const std::atomic<bool>& stop) {
    PGconn* conn = PQconnectdb(dsn_.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
      error_ = PQerrorMessage(conn);
      PQfinish(conn);
      return;
    }
    const auto tenants = WorkloadTenants();
    // The seeded rows: ids 1 … rows, in tenant order.
    for (int id = 1; id <= static_cast<int>(tenants.size()) * kRowsPerTenant; ++id) {
      ids_.push_back(id);
    }
    while (!stop && error_.empty()) {
      auto tenant = [&] { return tenants[rng_() % tenants.size()]; };
      auto some = [&] { return ids_[rng_() % ids_.size()]; };
      std::string sql = "BEGIN;";
      for (int n = 1 + static_cast<int>(rng_() % 2); n > 0; --n) {
        const int id = 1'000'000 + next_++;
        ids_.push_back(id);
        sql +=
            fmt::format("INSERT INTO project_users (id, tenant_id, name) VALUES ({}, '{}', 'w{}');",
                        id, tenant(), rng_() % 1000);
      }
      const int kind = static_cast<int>(rng_() % 10);
      if (kind < 4) {
        sql += fmt::format("UPDATE project_users SET name = 'u{}' WHERE id = {};", rng_() % 1000,
                           some());
      } else if (kind < 8) {
        ++moves_;
        sql += fmt::format(
            "UPDATE project_users SET tenant_id = '{}', moved = moved + 1 WHERE id = {};", tenant(),
            some());
      } else {
        sql += fmt::format("DELETE FROM project_users WHERE id = {};", some());
      }
      sql += "COMMIT;";
      PGresult* r = PQexec(conn, sql.c_str());
      if (PQresultStatus(r) != PGRES_COMMAND_OK) error_ = PQresultErrorMessage(r);
      PQclear(r);
      ++transactions_;
      std::this_thread::sleep_for(15ms);
    }
    PQfinish(conn);
  }
  const std::string& error() const { return error_; }
  int transactions() const { return transactions_; }
  int moves() const { return moves_; }

 private:
  std::string dsn_;
  std::mt19937 rng_{20};
  std::vector<int> ids_;
  int next_ = 0;
  int transactions_ = 0;
  int moves_ = 0;
  std::string error_;
};

// A source with public.project_users (tenant column tenant_id, REPLICA IDENTITY FULL: rows
// move between tenants), a config with a Postgres template and the registry, one static
// JSONL sink of every tenant beside them (existing rows first, as inserts), and helpers to
// read targets, /status and /metrics.
class RegistryTest : public TailerTest {
 protected:
  void SetUp() override {
    TailerTest::SetUp();
    if (HasFatalFailure()) return;
    pg_->Exec(R"sql(
      CREATE TABLE project_users (id bigint PRIMARY KEY, tenant_id text NOT NULL, name text,
                                  moved int DEFAULT 0);
      ALTER TABLE project_users REPLICA IDENTITY FULL;
    )sql");
    jsonl_path_ = work_dir_ + "/out/all.jsonl";
  }

  // The config: the template `tenant-db` (a Postgres sink into schema t_<tenant> of the
  // database params.database on params.host:params.port), the registry, the static JSONL
  // sink `all-events`, and `extra` appended at the top level; `template_extra` adds keys to
  // the template (lines indented by four spaces).
  void WriteRegistryConfig(const std::string& extra = "", const std::string& template_extra = "") {
    std::ofstream(config_path_) << fmt::format(R"yaml(
source:
  dsn: "{}"
  slot: pgfanout_test
  publication: pgfanout_test
  status_interval: 1s
state_dir: {}/state
http:
  listen: "127.0.0.1:0"
  sample_interval: 500ms
log:
  retain: 24h
backfill_concurrency: 4
delivery:
  max_connections: 40
tables:
  - name: public.project_users
    tenant_column: tenant_id
sinks:
  - id: all-events
    type: jsonl
    tenants: ["*"]
    backfill: true
    path: {}
sink_templates:
  tenant-db:
    type: postgres
    dsn: "host={{host}} port={{port}} dbname={{database}} user=postgres"
    create_tables: true
{}    tables:
      - source: public.project_users
        target: "t_{{tenant}}.project_users"
sink_registry:
  table: public.pgfanout_sinks
{})yaml",
                                               pg_->Dsn(), work_dir_, jsonl_path_, template_extra,
                                               extra);
  }

  // Starts the daemon and waits for its HTTP address of this start (the log keeps the
  // earlier starts' lines).
  void Start() {
    const size_t before = Count(DaemonLog(), "http: listening on ");
    StartDaemon();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(Eventually([&] { return Count(DaemonLog(), "http: listening on ") > before; }))
        << "no new 'http: listening on' line";
    address_ = HttpAddress();
    ASSERT_FALSE(address_.empty());
  }
  void KillNineAndRestart() {
    daemon_.Kill(SIGKILL);
    ASSERT_TRUE(daemon_.Wait(30s).has_value());
    Start();
  }
  void WaitRegistryTable() {
    ASSERT_TRUE(Eventually([&] {
      return pg_->Scalar("SELECT to_regclass('public.pgfanout_sinks') IS NOT NULL") == "t";
    })) << "pgfanout did not create public.pgfanout_sinks at start";
  }

  static size_t Count(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      ++n;
    }
    return n;
  }

  // A registry row's VALUES tuple for a tenant-db sink into `database` of `target`.
  static std::string Registration(const std::string& sink_id, const std::string& tenant,
                                  const PgServer& target, const std::string& database,
                                  const std::string& tmpl = "tenant-db") {
    return fmt::format(
        "('{}', '{}', ARRAY['{}'], '{{\"host\": \"127.0.0.1\", \"port\": \"{}\", \"database\": "
        "\"{}\"}}')",
        sink_id, tmpl, tenant, target.port(), database);
  }
  void Register(const std::vector<std::string>& values) {
    std::string list;
    for (const auto& v : values) list += (list.empty() ? "" : ", ") + v;
    pg_->Exec("INSERT INTO pgfanout_sinks (sink_id, template, tenants, params) VALUES " + list);
  }

  std::set<std::string> SourceRows(const std::string& tenant) const {
    std::set<std::string> out;
    for (const auto& r : pg_->Query(fmt::format(
             "SELECT {} FROM project_users WHERE tenant_id = '{}'", kRowText, tenant))) {
      out.insert(*r[0]);
    }
    return out;
  }
  std::map<std::string, std::set<std::string>> SourceRowsByTenant() const {
    std::map<std::string, std::set<std::string>> out;
    for (const auto& r :
         pg_->Query(fmt::format("SELECT tenant_id, {} FROM project_users", kRowText))) {
      out[*r[0]].insert(*r[1]);
    }
    return out;
  }
  // t_<tenant>.project_users in `database` of `target`; nullopt while it cannot be read (no
  // table yet, or the server is busy).
  static std::optional<std::set<std::string>> TargetRows(const PgServer& target,
                                                         const std::string& database,
                                                         const std::string& tenant) {
    auto rows = target.TryQuery(fmt::format("SELECT {} FROM t_{}.project_users", kRowText, tenant),
                                database);
    if (!rows) return std::nullopt;
    std::set<std::string> out;
    for (const auto& r : *rows) out.insert(*r[0]);
    return out;
  }
  // Every t_<tenant>.project_users of `database`, by tenant; nullopt if it cannot be read.
  static std::optional<std::map<std::string, std::set<std::string>>> AllTargetRows(
      const PgServer& target, const std::string& database) {
    auto tables = target.TryQuery(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'project_users' "
        "AND table_schema LIKE 't\\_%'",
        database);
    if (!tables) return std::nullopt;
    std::map<std::string, std::set<std::string>> out;
    std::string sql;
    for (const auto& t : *tables) {
      out[t[0]->substr(2)];  // present even when empty
      sql += fmt::format("{}SELECT '{}', {} FROM {}.project_users",
                         sql.empty() ? "" : " UNION ALL ", t[0]->substr(2), kRowText, *t[0]);
    }
    if (sql.empty()) return out;
    auto rows = target.TryQuery(sql, database);
    if (!rows) return std::nullopt;
    for (const auto& r : *rows) out[*r[0]].insert(*r[1]);
    return out;
  }
  // "" once t_<tenant> in `database` equals `want()`, polled until `budget`; else the diff.
  template <class Want>
  std::string WaitTarget(const PgServer& target, const std::string& database,
                         const std::string& tenant, Want want,
                         std::chrono::milliseconds budget = 120s) {
    std::string diff;
    Eventually(
        [&] {
          auto got = TargetRows(target, database, tenant);
          diff = got ? SetDiff(want(), *got) : "target table not readable";
          return diff.empty();
        },
        budget);
    return diff;
  }

  // GET /status listing every sink (with `query` appended), parsed; null on failure.
  json Status(const std::string& query = "") {
    auto r = HttpGet(address_, "/status?per_page=10000" + query);
    if (r.status != 200) {
      ADD_FAILURE() << "/status" << query << ": " << r.status << " " << r.body;
      return nullptr;
    }
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.contains("sinks")) {
      ADD_FAILURE() << "/status is not the expected JSON: " << r.body;
      return nullptr;
    }
    return j;
  }
  // The /status entries with this id (a registry row may reuse a static sink's id).
  std::vector<json> SinkStatuses(const std::string& id) {
    std::vector<json> out;
    json s = Status();
    if (s.is_null()) return out;
    for (const auto& sink : s["sinks"]) {
      if (sink["id"] == id) out.push_back(sink);
    }
    return out;
  }
  // The /status entry of a sink, or null when it is not listed.
  json SinkStatus(const std::string& id) {
    auto all = SinkStatuses(id);
    return all.empty() ? json(nullptr) : all.front();
  }
  // Ids of the sinks /status lists in `state`, by the ?state= filter.
  std::set<std::string> SinksIn(const std::string& state) {
    std::set<std::string> out;
    json s = Status("&state=" + state);
    if (s.is_null()) return out;
    for (const auto& sink : s["sinks"]) {
      out.insert(sink["id"].get<std::string>());
      if (sink["state"] != state) {
        ADD_FAILURE() << "?state=" << state << " listed " << sink.dump();
      }
    }
    return out;
  }
  double RegistryRows(const std::string& state) {
    auto r = HttpGet(address_, "/metrics");
    EXPECT_EQ(r.status, 200) << r.body;
    return MetricValue(r.body, fmt::format("pgfanout_sink_registry_rows{{state=\"{}\"}}", state));
  }

  std::string address_;
};

// Two clusters: the source and a target cluster holding the projects' databases.
class RegistryScaleTest : public RegistryTest {
 protected:
  void SetUp() override {
    RegistryTest::SetUp();
    if (HasFatalFailure()) return;
    target_ = PgServer::Start(PgServer::Options{.settings = {"max_connections = 200"}});
    ASSERT_NE(target_, nullptr);
    for (int d = 0; d < kDatabases; ++d) target_->Exec(fmt::format("CREATE DATABASE db{}", d));
    target_->Exec("CREATE DATABASE db_moved");
    // 20 rows for every workload tenant before anything is registered: each registration
    // has rows to copy.
    const auto tenants = WorkloadTenants();
    std::string list;
    for (const auto& t : tenants) list += (list.empty() ? "'" : ", '") + t + "'";
    pg_->Exec(fmt::format(
        "INSERT INTO project_users (id, tenant_id, name) "
        "SELECT row_number() OVER (ORDER BY t.ord, g), t.tenant, 'seed' || g "
        "FROM unnest(ARRAY[{}]) WITH ORDINALITY AS t(tenant, ord), generate_series(1, {}) g",
        list, kRowsPerTenant));
    WriteRegistryConfig();
  }

  static std::string Db(int project) { return fmt::format("db{}", project % kDatabases); }

  // Reads `tenant`'s source rows and runs `change` (SQL on the registry) in one transaction
  // that holds SHARE on project_users: no workload write commits between the two, so the
  // rows returned are the tenant's rows exactly at the change's position.
  std::set<std::string> RowsAtChange(const std::string& tenant, const std::string& change) {
    Session s(pg_->Dsn());
    s.Exec("BEGIN");
    s.Exec("LOCK TABLE project_users IN SHARE MODE");
    auto rows = s.Rows(
        fmt::format("SELECT {} FROM project_users WHERE tenant_id = '{}'", kRowText, tenant));
    s.Exec(change);
    s.Exec("COMMIT");
    return rows;
  }
  // Rows the test writes for `tenant` after a change that must keep them from its sink
  // (ids from `first`), and an update of one of its rows from before the change.
  void WriteAfter(const std::string& tenant, int first) {
    pg_->Exec(fmt::format(
        "INSERT INTO project_users (id, tenant_id, name) "
        "SELECT g, '{0}', 'after-' || g FROM generate_series({1}, {1} + 4) g;"
        "UPDATE project_users SET name = 'after-update' "
        "WHERE id = (SELECT min(id) FROM project_users WHERE tenant_id = '{0}' AND id < {1})",
        tenant, first));
  }

  std::unique_ptr<PgServer> target_;
};

TEST_F(RegistryScaleTest, ProjectsRegisteredWhileRunning) {
  const auto started = Clock::now();
  Start();
  ASSERT_FALSE(HasFatalFailure());
  WaitRegistryTable();
  ASSERT_FALSE(HasFatalFailure());
  std::atomic<bool> stop = false;
  Writer writer(pg_->Dsn());
  std::thread writer_thread([&] { writer.Run(stop); });

  // Project i: sink p<i>, tenant p<i>, database db(i % 4). Waves of 10: even waves as one
  // INSERT of ten rows, odd waves as ten single-row transactions.
  const int per_wave = kProjects / kWaves;
  std::set<std::string> at_delete, at_move, at_pause;
  for (int w = 0; w < kWaves; ++w) {
    std::vector<std::string> values;
    for (int i = w * per_wave; i < (w + 1) * per_wave; ++i) {
      values.push_back(Registration(fmt::format("p{}", i), fmt::format("p{}", i), *target_, Db(i)));
    }
    if (w % 2 == 0) {
      Register(values);
    } else {
      for (const auto& v : values) Register({v});
    }
    std::this_thread::sleep_for(1s);

    if (w == 2) {
      // Delete p5 (db1) once it is caught up, at a pinned position; then write its tenant.
      ASSERT_EQ(WaitTarget(*target_, "db1", "p5", [&] { return SourceRows("p5"); }), "")
          << "p5 never caught up after its registration";
      at_delete = RowsAtChange("p5", "DELETE FROM pgfanout_sinks WHERE sink_id = 'p5'");
      WriteAfter("p5", 9'000'000);
      // Its target gets everything committed before the delete and, once the sink is gone
      // from /status, nothing more.
      EXPECT_EQ(WaitTarget(*target_, "db1", "p5", [&] { return at_delete; }), "")
          << "p5's target is not its rows as of the delete";
      EXPECT_TRUE(Eventually([&] { return SinkStatus("p5").is_null(); }))
          << "the deleted sink p5 is still listed: " << SinkStatus("p5").dump();

      // A bad row: an unknown template. Only its sink stops, visibly.
      Register({Registration("bad1", "q0", *target_, "db0", "nope")});
      json bad;
      EXPECT_TRUE(Eventually([&] {
        bad = SinkStatus("bad1");
        return !bad.is_null() && bad["state"] == "stopped";
      })) << "bad1 is not shown stopped: "
          << bad.dump();
      if (!bad.is_null() && bad["last_error"].is_string()) {
        const std::string error = bad["last_error"];
        EXPECT_EQ(error.rfind("registry: ", 0), 0u) << error;
        EXPECT_NE(error.find("bad1"), std::string::npos) << error;
        EXPECT_NE(error.find("template"), std::string::npos) << error;
      } else {
        ADD_FAILURE() << "bad1 has no last_error: " << bad.dump();
      }
      EXPECT_EQ(SinksIn("stopped"), std::set<std::string>{"bad1"});
      EXPECT_EQ(RegistryRows("error"), 1.0);
    }
    if (w == 6) {
      KillNineAndRestart();
      ASSERT_FALSE(HasFatalFailure());
    }
    if (w == 9) {
      // p6 moves from db2 to db_moved. The old database keeps what it had at the update and
      // gets nothing after; the new one gets a fresh copy (checked at the end).
      ASSERT_EQ(WaitTarget(*target_, "db2", "p6", [&] { return SourceRows("p6"); }), "")
          << "p6 never caught up after its registration";
      at_move = RowsAtChange("p6",
                             "UPDATE pgfanout_sinks SET params = params || "
                             "'{\"database\": \"db_moved\"}' WHERE sink_id = 'p6'");
      WriteAfter("p6", 9'100'000);
      EXPECT_EQ(WaitTarget(*target_, "db2", "p6", [&] { return at_move; }), "")
          << "p6's old database is not its rows as of the update";
    }
    if (w == 12) {
      // p7 (db3) paused at a pinned position; it must stay paused through a kill -9 and
      // its target must get nothing new meanwhile.
      ASSERT_EQ(WaitTarget(*target_, "db3", "p7", [&] { return SourceRows("p7"); }), "")
          << "p7 never caught up after its registration";
      at_pause =
          RowsAtChange("p7", "UPDATE pgfanout_sinks SET enabled = false WHERE sink_id = 'p7'");
      WriteAfter("p7", 9'200'000);
      EXPECT_TRUE(Eventually([&] { return SinksIn("paused") == std::set<std::string>{"p7"}; }))
          << "?state=paused does not list exactly p7: " << Join(SinksIn("paused"));
      EXPECT_EQ(SinkStatus("p7")["state"], "paused");
      EXPECT_EQ(RegistryRows("paused"), 1.0);
      EXPECT_EQ(WaitTarget(*target_, "db3", "p7", [&] { return at_pause; }), "")
          << "p7's target is not its rows as of the disable";
    }
    if (w == 13) {
      KillNineAndRestart();
      ASSERT_FALSE(HasFatalFailure());
      EXPECT_TRUE(Eventually([&] { return SinksIn("paused") == std::set<std::string>{"p7"}; }))
          << "p7 is not paused after the restart: " << SinkStatus("p7").dump();
      std::this_thread::sleep_for(2s);  // time for anything it should not deliver
      auto got = TargetRows(*target_, "db3", "p7");
      ASSERT_TRUE(got.has_value());
      EXPECT_EQ(SetDiff(at_pause, *got), "") << "p7's target changed while it was paused";
      EXPECT_EQ(SinksIn("stopped"), std::set<std::string>{"bad1"}) << "after the restart";
      pg_->Exec("UPDATE pgfanout_sinks SET enabled = true WHERE sink_id = 'p7'");
    }
    if (w == 16) {
      // Before p5 comes back: its target still holds exactly its rows as of the delete (the
      // rows written since, through two restarts, never reached it).
      auto got = TargetRows(*target_, "db1", "p5");
      ASSERT_TRUE(got.has_value());
      EXPECT_EQ(SetDiff(at_delete, *got), "") << "p5's target changed after its delete";
      auto old = TargetRows(*target_, "db2", "p6");
      ASSERT_TRUE(old.has_value());
      EXPECT_EQ(SetDiff(at_move, *old), "") << "p6's old database changed after the update";
      // One of p5's rows from before the delete is deleted now: the fresh copy must not
      // leave it in the target.
      pg_->Exec(
          "DELETE FROM project_users WHERE id = (SELECT min(id) FROM project_users "
          "WHERE tenant_id = 'p5' AND id < 9000000)");
      Register({Registration("p5", "p5", *target_, "db1")});
    }
  }
  // The bad row fixed: it becomes a live sink with its tenant's rows.
  pg_->Exec("UPDATE pgfanout_sinks SET template = 'tenant-db' WHERE sink_id = 'bad1'");
  std::this_thread::sleep_for(2s);
  stop = true;
  writer_thread.join();
  EXPECT_EQ(writer.error(), "");

  // Every project's schema (and q0's) equals its source rows, in the database its row
  // names; no schema holds another tenant's row; no tenant without a sink has a schema.
  std::map<std::string, std::string> database_of;  // tenant -> database
  for (int i = 0; i < kProjects; ++i) database_of[fmt::format("p{}", i)] = Db(i);
  database_of["p6"] = "db_moved";
  database_of["q0"] = "db0";
  std::vector<std::string> databases = {"db_moved"};
  for (int d = 0; d < kDatabases; ++d) databases.push_back(fmt::format("db{}", d));
  std::string diff;
  const auto deadline = Clock::now() + 240s;
  do {
    diff.clear();
    const auto source = SourceRowsByTenant();
    for (const auto& db : databases) {
      auto targets = AllTargetRows(*target_, db);
      if (!targets) {
        diff = db + " not readable";
        break;
      }
      for (const auto& [tenant, rows] : *targets) {
        const bool stale_p6 = tenant == "p6" && db == "db2";
        if (database_of.count(tenant) == 0 || (database_of[tenant] != db && !stale_p6)) {
          diff += fmt::format("{}: schema t_{} of a tenant that has no sink here; ", db, tenant);
        }
        for (const auto& row : rows) {
          if (row.find("|" + tenant + "|") == std::string::npos) {
            diff += fmt::format("{}: t_{} holds another tenant's row {}; ", db, tenant, row);
            break;
          }
        }
      }
      for (const auto& [tenant, want_db] : database_of) {
        if (want_db != db) continue;
        const auto s = source.find(tenant);
        const auto t = targets->find(tenant);
        const std::set<std::string> none;
        const std::string d =
            SetDiff(s == source.end() ? none : s->second, t == targets->end() ? none : t->second);
        if (!d.empty() && diff.size() < 2000) diff += fmt::format("{} in {}: {}; ", tenant, db, d);
      }
    }
    if (diff.empty()) break;
    std::this_thread::sleep_for(1s);
  } while (Clock::now() < deadline && daemon_.running());
  const auto settled = Clock::now();
  EXPECT_EQ(diff, "") << "a registered tenant's target differs from its source rows";

  // p6's old database still holds exactly its rows at the update (nothing after it).
  auto old = TargetRows(*target_, "db2", "p6");
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(SetDiff(at_move, *old), "") << "p6's old database changed after the update";
  // No sink is stopped any more, none paused; the registry gauges say so.
  EXPECT_EQ(SinksIn("stopped"), std::set<std::string>{});
  EXPECT_EQ(SinksIn("paused"), std::set<std::string>{});
  EXPECT_EQ(RegistryRows("live"), kProjects + 1.0);
  EXPECT_EQ(RegistryRows("error"), 0.0);
  EXPECT_EQ(RegistryRows("paused"), 0.0);
  // The static sink beside them rebuilds the whole table, in order.
  JsonlChecker checker(std::map<std::string, std::vector<std::string>>{
      {"public.project_users", std::vector<std::string>{"id"}}});
  std::vector<std::string> json_rows;
  for (const auto& r : pg_->Query("SELECT row_to_json(t)::text FROM project_users t")) {
    json_rows.push_back(*r[0]);
  }
  std::string jsonl_diff;
  Eventually([&] {
    checker.Load(jsonl_path_);
    jsonl_diff = JsonlChecker::Diff(checker.KeyRows("public.project_users", json_rows),
                                    checker.Rows("public.project_users"));
    return jsonl_diff.empty();
  });
  EXPECT_EQ(jsonl_diff, "") << "the static JSONL sink does not rebuild the source";
  EXPECT_EQ(checker.order_error(), "");
  // The registry is pgfanout's own input, not a tracked table: a sink of every tenant
  // never sees its rows (their params name other projects' databases).
  size_t registry_events = 0;
  for (const auto& ev : checker.events()) {
    registry_events += ev.value("table", "") == "pgfanout_sinks";
  }
  EXPECT_EQ(registry_events, 0u) << "registry rows reached the static sink all-events";

  EXPECT_GT(writer.moves(), 200) << "too few moves between tenants to prove anything";
  std::cout << fmt::format(
      "[ registry ] {} projects registered under {} workload transactions ({} moves), "
      "2 kill -9s; {} {:.0f} s after start\n",
      kProjects, writer.transactions(), writer.moves(), diff.empty() ? "equal" : "NOT equal",
      std::chrono::duration<double>(settled - started).count());
  StopDaemon();
}

// One sink for tenant a1; the daemon stops; while it is down, in this order: rows r1 for a1,
// the delete of a1's registry row (and an update of one of a1's rows), rows r2 for a1, a
// registry row for b1. On restart a1's target has r1 and not r2 (nor the update), and b1's
// target equals its source.
TEST_F(RegistryTest, RegistryChangeWhileDownAppliedAtItsPosition) {
  pg_->Exec("CREATE DATABASE tgt");
  pg_->Exec(
      "INSERT INTO project_users (id, tenant_id, name) "
      "SELECT g, CASE WHEN g % 2 = 0 THEN 'a1' ELSE 'b1' END, 'seed' || g "
      "FROM generate_series(1, 40) g");
  WriteRegistryConfig();
  Start();
  ASSERT_FALSE(HasFatalFailure());
  WaitRegistryTable();
  ASSERT_FALSE(HasFatalFailure());
  Register({Registration("sa", "a1", *pg_, "tgt")});
  ASSERT_EQ(WaitTarget(*pg_, "tgt", "a1", [&] { return SourceRows("a1"); }), "");
  StopDaemon();

  pg_->Exec(
      "INSERT INTO project_users (id, tenant_id, name) "
      "SELECT g, 'a1', 'r1-' || g FROM generate_series(1001, 1010) g");
  const auto at_delete = SourceRows("a1");
  pg_->Exec("DELETE FROM pgfanout_sinks WHERE sink_id = 'sa'");
  pg_->Exec(
      "UPDATE project_users SET name = 'after-delete' WHERE id = 2;"
      "INSERT INTO project_users (id, tenant_id, name) "
      "SELECT g, 'a1', 'r2-' || g FROM generate_series(2001, 2010) g;"
      "INSERT INTO project_users (id, tenant_id, name) VALUES (3001, 'b1', 'b-while-down')");
  Register({Registration("sb", "b1", *pg_, "tgt")});
  pg_->Exec("UPDATE project_users SET name = 'b-after-insert' WHERE id = 1");

  Start();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(WaitTarget(*pg_, "tgt", "b1", [&] { return SourceRows("b1"); }), "")
      << "b1, registered while the daemon was down, does not hold its rows";
  EXPECT_EQ(WaitTarget(*pg_, "tgt", "a1", [&] { return at_delete; }), "")
      << "a1's target is not its rows as of the delete (r1 in, r2 out)";
  std::this_thread::sleep_for(2s);  // time for anything that should not arrive
  auto got = TargetRows(*pg_, "tgt", "a1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(SetDiff(at_delete, *got), "") << "a1's target received rows after its delete";
  EXPECT_TRUE(SinkStatus("sa").is_null())
      << "the deleted sink is listed: " << SinkStatus("sa").dump();
  EXPECT_TRUE(Eventually([&] { return SinkStatus("sb")["state"] == "running"; }))
      << SinkStatus("sb").dump();
  StopDaemon();
}

// A sink deleted while its first copy still waits for a slot (backfill_concurrency: 4,
// held by four big copies) must not copy later: its copy would read a snapshot taken after
// the delete, and hand the old destination rows committed after it.
TEST_F(RegistryTest, ASinkDeletedBeforeItsCopyRunsNeverCopies) {
  pg_->Exec("CREATE DATABASE tgt");
  pg_->Exec(
      "INSERT INTO project_users (id, tenant_id, name) "
      "SELECT g, 'big' || (g % 4), repeat('x', 200) FROM generate_series(1, 400000) g");
  pg_->Exec("INSERT INTO project_users (id, tenant_id, name) VALUES (500001, 'v1', 'before')");
  WriteRegistryConfig();
  Start();
  ASSERT_FALSE(HasFatalFailure());
  WaitRegistryTable();
  ASSERT_FALSE(HasFatalFailure());
  for (int i = 0; i < 4; ++i) {
    Register({Registration(fmt::format("big{}", i), fmt::format("big{}", i), *pg_, "tgt")});
  }
  Register({Registration("victim", "v1", *pg_, "tgt")});
  pg_->Exec("DELETE FROM pgfanout_sinks WHERE sink_id = 'victim'");
  pg_->Exec("INSERT INTO project_users (id, tenant_id, name) VALUES (500002, 'v1', 'after')");
  for (int i = 0; i < 4; ++i) {
    const std::string t = fmt::format("big{}", i);
    ASSERT_EQ(WaitTarget(*pg_, "tgt", t, [&] { return SourceRows(t); }), "") << t;
  }
  std::this_thread::sleep_for(2s);  // time for a copy that should not run
  auto got = TargetRows(*pg_, "tgt", "v1");
  if (got) {
    for (const auto& row : *got) {
      EXPECT_EQ(row.find("500002"), std::string::npos)
          << "the deleted sink copied a row committed after its delete: " << row;
    }
  }
  EXPECT_TRUE(SinkStatus("victim").is_null()) << SinkStatus("victim").dump();
  StopDaemon();
}

// Bad rows of several kinds, each its own error: only that sink stops, /status names the
// sink and the column, the log says it once, /metrics counts them; the daemon and the other
// sinks go on; fixing a row makes it live.
TEST_F(RegistryTest, BadRowsStopOnlyTheirSinkUntilFixed) {
  pg_->Exec("CREATE DATABASE tgt");
  pg_->Exec(
      "INSERT INTO project_users (id, tenant_id, name) "
      "SELECT g, 'c' || (g % 3), 'seed' || g FROM generate_series(1, 30) g");
  WriteRegistryConfig();
  Start();
  ASSERT_FALSE(HasFatalFailure());
  WaitRegistryTable();
  ASSERT_FALSE(HasFatalFailure());
  const std::string port = std::to_string(pg_->port());
  Register({Registration("good", "c0", *pg_, "tgt")});
  // sink_id -> (its row's VALUES, the column its error must name)
  const std::map<std::string, std::pair<std::string, std::string>> bad = {
      {"nodb",
       {fmt::format("('nodb', 'tenant-db', ARRAY['c1'], '{{\"host\": \"127.0.0.1\", \"port\": "
                    "\"{}\"}}')",
                    port),
        "params.database"}},
      {"badvalue",
       {fmt::format("('badvalue', 'tenant-db', ARRAY['c1'], '{{\"host\": \"127.0.0.1\", "
                    "\"port\": \"{}\", \"database\": \"tgt; drop\"}}')",
                    port),
        "params.database"}},
      {"pw",
       {fmt::format("('pw', 'tenant-db', ARRAY['c1'], '{{\"host\": \"127.0.0.1\", \"port\": "
                    "\"{}\", \"database\": \"tgt\", \"db_password\": \"hunter2\"}}')",
                    port),
        "params.db_password"}},
      {"two",
       {fmt::format("('two', 'tenant-db', ARRAY['c1', 'c2'], '{{\"host\": \"127.0.0.1\", "
                    "\"port\": \"{}\", \"database\": \"tgt\"}}')",
                    port),
        "tenants"}},
  };
  for (const auto& [id, row] : bad) Register({row.first});
  // A row whose id is the static sink's: an error row too; the static sink goes on.
  Register({Registration("all-events", "c1", *pg_, "tgt")});
  pg_->Exec("INSERT INTO project_users (id, tenant_id, name) VALUES (100, 'c0', 'after-bad')");

  // Stopped: the four, and maybe an entry for the colliding row (it shares the static
  // sink's id; whether /status lists it beside the static sink is the implementation's).
  std::set<std::string> want_stopped;
  for (const auto& [id, row] : bad) want_stopped.insert(id);
  auto stopped_but_collision = [&] {
    auto ids = SinksIn("stopped");
    ids.erase("all-events");
    return ids;
  };
  EXPECT_TRUE(Eventually([&] { return stopped_but_collision() == want_stopped; }))
      << "stopped: " << Join(SinksIn("stopped"));
  const std::string log = DaemonLog();
  for (const auto& [id, row] : bad) {
    json s = SinkStatus(id);
    ASSERT_FALSE(s.is_null()) << id;
    ASSERT_TRUE(s["last_error"].is_string()) << s.dump();
    const std::string error = s["last_error"];
    EXPECT_EQ(error.rfind("registry: ", 0), 0u) << error;
    EXPECT_NE(error.find(id), std::string::npos) << error;
    EXPECT_NE(error.find(row.second), std::string::npos) << error << " (want " << row.second << ")";
    EXPECT_EQ(Count(log, error), 1u) << "log lines with \"" << error << "\"";
  }
  EXPECT_EQ(log.find("hunter2"), std::string::npos)
      << "a param value that is a password was logged";
  EXPECT_EQ(Status().dump().find("hunter2"), std::string::npos);
  EXPECT_NE(log.find("all-events"), std::string::npos);
  EXPECT_EQ(RegistryRows("error"), 5.0) << "four bad rows and the colliding id";
  EXPECT_EQ(RegistryRows("live"), 1.0);
  EXPECT_TRUE(daemon_.running());
  EXPECT_EQ(WaitTarget(*pg_, "tgt", "c0", [&] { return SourceRows("c0"); }), "")
      << "the good sink stopped following its tenant";
  bool static_running = false;
  for (const auto& s : SinkStatuses("all-events")) {
    static_running |= s["type"] == "jsonl" && s["state"] == "running";
  }
  EXPECT_TRUE(static_running) << "the static sink all-events is not running";
  EXPECT_TRUE(Eventually([&] {
    std::ifstream in(jsonl_path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str().find("after-bad") != std::string::npos;
  })) << "the static JSONL sink stopped";

  // Fixing a row makes it a live sink with its tenant's rows.
  pg_->Exec(
      "UPDATE pgfanout_sinks SET params = params || '{\"database\": \"tgt\"}' "
      "WHERE sink_id = 'nodb'");
  EXPECT_EQ(WaitTarget(*pg_, "tgt", "c1", [&] { return SourceRows("c1"); }), "")
      << "the fixed row's sink does not hold its tenant's rows";
  EXPECT_TRUE(Eventually([&] { return SinkStatus("nodb")["state"] == "running"; }))
      << SinkStatus("nodb").dump();
  EXPECT_EQ(RegistryRows("error"), 4.0);
  EXPECT_EQ(RegistryRows("live"), 2.0);
  StopDaemon();
}

// A template changed in the config (SIGHUP) restarts its sinks from their cursors: no copy
// again, nothing lost, and the rows written since arrive.
TEST_F(RegistryTest, TemplateChangeOnReloadRestartsItsSinksFromTheirCursors) {
  pg_->Exec("CREATE DATABASE tgt");
  pg_->Exec(
      "INSERT INTO project_users (id, tenant_id, name) "
      "SELECT g, 'd' || (g % 2), 'seed' || g FROM generate_series(1, 40) g");
  WriteRegistryConfig();
  Start();
  ASSERT_FALSE(HasFatalFailure());
  WaitRegistryTable();
  ASSERT_FALSE(HasFatalFailure());
  Register({Registration("d0", "d0", *pg_, "tgt"), Registration("d1", "d1", *pg_, "tgt")});
  for (const char* t : {"d0", "d1"}) {
    ASSERT_EQ(WaitTarget(*pg_, "tgt", t, [&] { return SourceRows(t); }), "") << t;
  }
  auto copies = [&] {
    const std::string log = DaemonLog();
    return Count(log, "sink d0: backfilling") + Count(log, "sink d1: backfilling");
  };
  const size_t copied = copies();
  EXPECT_EQ(copied, 2u) << "one copy per registered sink";

  // Same destination, another batch size: each of the template's sinks is a changed sink.
  WriteRegistryConfig("", "    batch_size: 7\n");
  daemon_.Kill(SIGHUP);
  EXPECT_TRUE(Eventually([&] {
    const std::string log = DaemonLog();
    return log.find("sink d0 changed: restarted from its cursor") != std::string::npos &&
           log.find("sink d1 changed: restarted from its cursor") != std::string::npos;
  })) << "the reload did not restart the template's sinks";
  pg_->Exec(
      "INSERT INTO project_users (id, tenant_id, name) "
      "SELECT g, 'd' || (g % 2), 'after-reload' || g FROM generate_series(101, 140) g;"
      "UPDATE project_users SET name = 'updated', moved = moved + 1 WHERE id IN (1, 2);"
      "DELETE FROM project_users WHERE id IN (3, 4)");
  for (const char* t : {"d0", "d1"}) {
    EXPECT_EQ(WaitTarget(*pg_, "tgt", t, [&] { return SourceRows(t); }), "") << t;
  }
  EXPECT_EQ(copies(), copied)
      << "a sink copied its rows again after the reload instead of resuming from its cursor";
  EXPECT_TRUE(daemon_.running());
  StopDaemon();
}

// Template errors are config errors: `pgfanout check` refuses the file and names
// sink_templates.<name>.<key>.
TEST_F(RegistryTest, ConfigErrorsNameTemplateAndKey) {
  const std::string good_templates = R"yaml(
sink_templates:
  tenant-ch:
    type: clickhouse
    url: "http://127.0.0.1:{port}"
    database: "{database}"
  tenant-db:
    type: postgres
    dsn: "host={host} port={port} dbname={database} user=postgres"
    tables:
      - source: public.project_users
        target: "t_{tenant}.project_users"
sink_registry:
  table: public.pgfanout_sinks
)yaml";
  auto check = [&](const std::string& config_text, std::string* output) {
    const std::string path = work_dir_ + "/check.yaml";
    std::ofstream(path) << config_text;
    output->clear();
    return RunPgfanout({"check", "--config", path}, output);
  };
  const std::string head = fmt::format(R"yaml(
source:
  dsn: "{}"
state_dir: {}/state
tables:
  - name: public.project_users
    tenant_column: tenant_id
)yaml",
                                       pg_->Dsn(), work_dir_);
  std::string out;
  // The control: the same templates without the faults pass, with no `sinks:` at all.
  EXPECT_EQ(check(head + good_templates, &out), 0) << out;

  struct Case {
    std::string what, yaml, names;
  };
  const std::vector<Case> cases = {
      {"a placeholder in a key that takes none",
       R"yaml(
sink_templates:
  tenant-ch:
    type: clickhouse
    url: "http://127.0.0.1:{port}"
    user: "{x}"
sink_registry:
  table: public.pgfanout_sinks
)yaml",
       "sink_templates.tenant-ch.user"},
      {"an unknown key",
       R"yaml(
sink_templates:
  tenant-db:
    type: postgres
    dsn: "host={host} dbname={database} user=postgres"
    colour: blue
sink_registry:
  table: public.pgfanout_sinks
)yaml",
       "sink_templates.tenant-db.colour"},
      {"tenants, which come from the registry row",
       R"yaml(
sink_templates:
  tenant-db:
    type: postgres
    dsn: "host={host} dbname={database} user=postgres"
    tenants: ["7"]
sink_registry:
  table: public.pgfanout_sinks
)yaml",
       "sink_templates.tenant-db.tenants"},
  };
  for (const auto& c : cases) {
    EXPECT_NE(check(head + c.yaml, &out), 0) << c.what << ": accepted";
    EXPECT_NE(out.find(c.names), std::string::npos) << c.what << ": " << out;
  }
}

}  // namespace
}  // namespace pgfanout::testing
