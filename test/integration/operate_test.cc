// Operating the daemon: the HTTP endpoint (health, readiness, status, metrics, the lag page
// in a real browser), the bearer token, SIGHUP reloads, a shutdown bounded in time.

#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>

#include "test/integration/tailer_fixture.h"
#include "test/support/http_client.h"

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

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class OperateTest : public TailerTest {
 protected:
  // Replaces the config's http block (the fixture's listens on a free port).
  void SetHttp(const std::string& block) {
    const std::string text = std::regex_replace(
        ReadFile(config_path_), std::regex("http:\n  listen: \"127.0.0.1:0\"\n"), block);
    std::ofstream(config_path_) << text;
  }

  // First value of `sql` in database `db`, or "" while it cannot be read (no table yet).
  std::string Poll(const std::string& sql, const std::string& db) {
    auto rows = pg_->TryQuery(sql, db);
    return rows && !rows->empty() && (*rows)[0][0] ? *(*rows)[0][0] : "";
  }

  nlohmann::json Status(const std::string& address, const std::string& query = "") {
    auto r = HttpGet(address, "/status" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }
};

TEST_F(OperateTest, EndpointsShowHealthReadinessStatusAndMetrics) {
  SetHttp("http:\n  listen: \"127.0.0.1:0\"\n  sample_interval: 200ms\n");
  StartDaemon();
  const std::string address = HttpAddress();
  ASSERT_FALSE(address.empty());
  EXPECT_EQ(HttpGet(address, "/healthz").status, 200);
  EXPECT_TRUE(Eventually([&] { return HttpGet(address, "/readyz").status == 200; }))
      << HttpGet(address, "/readyz").body;

  pg_->Exec("INSERT INTO teams SELECT i, '7', 'x' FROM generate_series(1, 300) i");
  ExpectSinkEqualsSource();
  const std::string lsn = pg_->Scalar("SELECT pg_current_wal_lsn()::text");
  nlohmann::json s;
  ASSERT_TRUE(Eventually([&] {
    s = Status(address);
    return s["slot"].value("exists", false) && !s["sinks"].empty() &&
           s["sinks"][0].contains("events_behind") && s["sinks"][0]["events_behind"] == 0 &&
           s["sinks"][0]["events_delivered"] == 300;
  })) << s.dump(2);
  std::cout << "GET /status:\n" << s.dump(2) << "\n";
  EXPECT_EQ(s["state"], "streaming");
  EXPECT_EQ(s["ready"], true);
  EXPECT_EQ(s["source"]["slot"], "pgfanout_test");
  EXPECT_EQ(s["source"]["system_id"],
            pg_->Scalar("SELECT system_identifier::text FROM pg_control_system()"));
  EXPECT_EQ(s["slot"]["wal_status"], "reserved");
  EXPECT_GE(s["slot"]["retained_wal_bytes"].get<int64_t>(), 0);
  EXPECT_GT(s["log"]["size_bytes"].get<int64_t>(), 0);
  const auto& sink = s["sinks"][0];
  EXPECT_EQ(sink["id"], "all-events");
  EXPECT_EQ(sink["type"], "jsonl");
  EXPECT_EQ(sink["state"], "running");
  EXPECT_EQ(sink["tenants"], nlohmann::json::array({"*"}));
  EXPECT_TRUE(sink["last_error"].is_null());
  EXPECT_EQ(s["sink_states"],
            (nlohmann::json{
                {"running", 1}, {"waiting", 0}, {"retrying", 0}, {"stopped", 0}, {"paused", 0}}));
  // One sink by id, sinks by state; a query it does not know is refused with the key.
  EXPECT_EQ(Status(address, "?sink=all-events")["sinks"].size(), 1u);
  EXPECT_TRUE(Status(address, "?state=stopped")["sinks"].empty());
  auto refused = HttpGet(address, "/status?state=sleeping");
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("state: expected stopped, retrying, waiting, paused or running"),
            std::string::npos)
      << refused.body;

  auto m = HttpGet(address, "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.content_type.find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_EQ(MetricValue(m.body, "pgfanout_sink_events_delivered_total{sink=\"all-events\"}"), 300);
  EXPECT_EQ(MetricValue(m.body, "pgfanout_changes_decoded_total"), 300);
  EXPECT_EQ(MetricValue(m.body, "pgfanout_source_streaming"), 1);
  EXPECT_EQ(MetricValue(m.body, "pgfanout_sink_up{sink=\"all-events\"}"), 1);
  EXPECT_GE(MetricValue(m.body, "pgfanout_transactions_logged_total"), 1);
  EXPECT_NE(m.body.find("# TYPE pgfanout_sink_apply_seconds histogram"), std::string::npos);
  EXPECT_NE(m.body.find("pgfanout_sink_apply_seconds_bucket{sink=\"all-events\",le=\"+Inf\"}"),
            std::string::npos);
  EXPECT_GE(MetricValue(m.body, "pgfanout_sink_lag_events{sink=\"all-events\"}"), 0);
  EXPECT_GE(MetricValue(m.body, "pgfanout_slot_retained_wal_bytes"), 0);
  std::cout << "metrics:";
  for (std::smatch t; std::regex_search(m.body, t, std::regex("# TYPE (\\S+) (\\S+)"));) {
    std::cout << " " << t[1] << " (" << t[2] << ")";
    m.body = t.suffix();
  }
  std::cout << "\n";
  EXPECT_EQ(HttpGet(address, "/nope").status, 404);
  auto page = HttpGet(address, "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<title>pgfanout</title>"), std::string::npos);
  StopDaemon();
}

TEST_F(OperateTest, BearerTokenGuardsEverythingButTheProbes) {
  const std::string token = "tok-" + std::to_string(::getpid()) + "-never-logged";
  std::ofstream(work_dir_ + "/token") << token << "\n";
  SetHttp(fmt::format("http:\n  listen: \"127.0.0.1:0\"\n  token_file: {}/token\n", work_dir_));
  StartDaemon();
  const std::string address = HttpAddress();
  ASSERT_FALSE(address.empty());
  EXPECT_EQ(HttpGet(address, "/healthz").status, 200) << "liveness probes need no token";
  EXPECT_TRUE(Eventually([&] { return HttpGet(address, "/readyz").status == 200; }));
  for (const char* path : {"/status", "/metrics", "/lag.json"}) {
    EXPECT_EQ(HttpGet(address, path).status, 401) << path;
    EXPECT_EQ(HttpGet(address, path, {{"Authorization", "Bearer wrong"}}).status, 401) << path;
    EXPECT_EQ(HttpGet(address, path, {{"Authorization", "Bearer " + token}}).status, 200) << path;
  }
  EXPECT_EQ(HttpGet(address, "/status?access_token=" + token).status, 401)
      << "a token in a URL reaches access logs and browser history: refused";
  for (const char* path : {"/", "/lag.js", "/lag.css"}) {
    EXPECT_EQ(HttpGet(address, path).status, 200) << path << ": the page holds no data";
  }
  StopDaemon();
  EXPECT_EQ(DaemonLog().find(token), std::string::npos) << "the token reached the log";
}

TEST_F(OperateTest, ReadinessSaysWhyWhileTheSourceIsDown) {
  SetHttp("http:\n  listen: \"127.0.0.1:0\"\n  sample_interval: 200ms\n");
  StartDaemon();
  const std::string address = HttpAddress();
  ASSERT_FALSE(address.empty());
  ASSERT_TRUE(Eventually([&] { return HttpGet(address, "/readyz").status == 200; }));
  ASSERT_TRUE(pg_->Stop("fast"));
  HttpReply r;
  EXPECT_TRUE(Eventually([&] {
    r = HttpGet(address, "/readyz");
    return r.status == 503;
  })) << r.body;
  std::cout << "GET /readyz with the source down: " << r.status << " " << r.body;
  // Open to anyone: the state only. The reason names the source's host, port, database
  // and user (and the server's words): /status has it, behind the token when there is one.
  EXPECT_EQ(r.body.rfind("not ready: ", 0), 0u) << r.body;
  EXPECT_EQ(r.body.find("host="), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("cannot connect"), std::string::npos) << r.body;
  auto s = Status(address);
  EXPECT_EQ(s["ready"], false);
  EXPECT_GE(s["source"]["reconnects"].get<int>(), 1);
  EXPECT_FALSE(s["source"]["last_error"].is_null());
  EXPECT_EQ(HttpGet(address, "/healthz").status, 200) << "alive while it retries";
  ASSERT_TRUE(pg_->StartAgain());
  EXPECT_TRUE(Eventually([&] { return HttpGet(address, "/readyz").status == 200; }, 60s))
      << HttpGet(address, "/readyz").body;
  StopDaemon();
}

// The lag page in headless Chromium: the script must fetch /status and /lag.json and
// draw one line per sink. The screenshot is kept (path printed) for a person to look at.
TEST_F(OperateTest, LagPageRendersInHeadlessChromium) {
  const char* chromium = "/usr/bin/chromium";
  if (::access(chromium, X_OK) != 0) {
    GTEST_SKIP() << "chromium is not installed (apt-get install chromium; ./dev test does)";
  }
  // With a token: the page passes it from its URL's fragment in an Authorization header.
  const std::string token = "page-token-" + std::to_string(::getpid());
  std::ofstream(work_dir_ + "/token") << token << "\n";
  SetHttp(fmt::format(
      "http:\n  listen: \"127.0.0.1:0\"\n  sample_interval: 200ms\n  token_file: {}/token\n",
      work_dir_));
  StartDaemon();
  const std::string address = HttpAddress();
  ASSERT_FALSE(address.empty());
  pg_->Exec("INSERT INTO teams SELECT i, '7', 'x' FROM generate_series(1, 100) i");
  ExpectSinkEqualsSource();
  std::this_thread::sleep_for(1s);  // a few lag samples for the chart
  const char* artifacts = std::getenv("PGFANOUT_TEST_ARTIFACTS");
  const std::string dir = artifacts ? artifacts : work_dir_;
  std::filesystem::create_directories(dir);
  const std::string png = dir + "/lag-page.png";
  const std::string flags =
      "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--hide-scrollbars --virtual-time-budget=8000 --window-size=1100,800 --user-data-dir=" +
      work_dir_ + "/chromium";
  const std::string url = "http://" + address + "/#token=" + token;
  const std::string dom_path = work_dir_ + "/dom.html";
  ASSERT_EQ(RunCommand(fmt::format("{} {} --dump-dom '{}' >{} 2>{}/chromium.log", chromium, flags,
                                   url, dom_path, work_dir_)),
            0)
      << ReadFile(work_dir_ + "/chromium.log");
  const std::string dom = ReadFile(dom_path);
  EXPECT_NE(dom.find("data-rendered=\"yes\""), std::string::npos)
      << "the page's script did not finish rendering:\n"
      << dom.substr(0, 4000);
  EXPECT_NE(dom.find("class=\"lag\" data-sink=\"all-events\""), std::string::npos)
      << "no lag line for the sink";
  EXPECT_NE(dom.find("<td>all-events</td>"), std::string::npos) << "no table row for the sink";
  EXPECT_NE(dom.find(">streaming<"), std::string::npos) << "the state badge";
  ASSERT_EQ(RunCommand(fmt::format("{} {} --screenshot={} '{}' >>{}/chromium.log 2>&1", chromium,
                                   flags, png, url, work_dir_)),
            0)
      << ReadFile(work_dir_ + "/chromium.log");
  ASSERT_TRUE(std::filesystem::exists(png));
  EXPECT_GT(std::filesystem::file_size(png), 10'000u) << "a blank screenshot";
  std::cout << "lag page screenshot: " << png << "\n";
  // What the page was drawn from, kept beside it for a person to read.
  for (const char* route : {"/status", "/metrics"}) {
    auto r = HttpGet(address, route, {{"Authorization", "Bearer " + token}});
    EXPECT_EQ(r.status, 200) << route;
    std::ofstream(dir + route + (route[1] == 's' ? ".json" : ".txt")) << r.body;
  }
  StopDaemon();
}

// SIGHUP: a sink added to the file starts (being new, it reads its tenants' events from the
// start of the retained log), a changed sink restarts with its new settings from its
// cursor, a removed one stops; a change to the source is reported and left alone.
// A flood of connections to the endpoint, from a process allowed few file descriptors:
// past the endpoint's share each new connection is closed at once, so the replication
// connection still finds descriptors when it has to connect again (here: the walsender is
// ended during the flood), the rows keep arriving, nothing floods the log, and /readyz
// answers as soon as the flood stops.
TEST_F(OperateTest, AConnectionFloodNeverTakesTheDescriptorsReplicationNeeds) {
  SetHttp("http:\n  listen: \"127.0.0.1:0\"\n");
  ASSERT_TRUE(daemon_.Start(
      {"-c", fmt::format("ulimit -n 128 && exec {} run --config {}", PgfanoutBinary(), config_path_)},
      log_path_, {}, "/bin/sh"));
  WaitStreaming();
  const std::string address = HttpAddress();
  ASSERT_FALSE(address.empty());
  const auto colon = address.rfind(':');
  boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address(address.substr(0, colon)),
                                          static_cast<unsigned short>(std::stoi(address.substr(colon + 1))));
  std::atomic<bool> stop{false};
  std::atomic<int> opened{0};
  std::thread flood([&] {
    boost::asio::io_context io;
    std::vector<std::unique_ptr<boost::asio::ip::tcp::socket>> held;
    while (!stop) {
      held.clear();  // close, and open 200 more: idle, never a byte sent
      for (int i = 0; i < 200 && !stop; ++i) {
        auto s = std::make_unique<boost::asio::ip::tcp::socket>(io);
        boost::system::error_code ec;
        s->connect(endpoint, ec);
        if (!ec) ++opened;
        held.push_back(std::move(s));
      }
      std::this_thread::sleep_for(200ms);
    }
  });
  std::this_thread::sleep_for(1s);
  // The walsender goes away: the daemon must open two new connections to the source.
  pg_->Exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
            "WHERE slot_name = 'pgfanout_test' AND active_pid IS NOT NULL");
  pg_->Exec("INSERT INTO teams SELECT i, '7', 'flood' FROM generate_series(1, 100) i");
  ExpectSinkEqualsSource(30s);
  stop = true;
  flood.join();
  EXPECT_GT(opened.load(), 1000) << "the flood opened connections";
  EXPECT_TRUE(Eventually([&] { return HttpGet(address, "/readyz").status == 200; }, 10s));
  StopDaemon();
  const std::string log = DaemonLog();
  EXPECT_EQ(log.find("Too many open files"), std::string::npos) << log.substr(0, 4000);
  EXPECT_LE(std::count(log.begin(), log.end(), '\n'), 60) << "the log was flooded too";
}

TEST_F(OperateTest, SighupAddsChangesAndRemovesSinks) {
  SetHttp("http:\n  listen: \"127.0.0.1:0\"\n  sample_interval: 200ms\n");
  StartDaemon();
  const std::string address = HttpAddress();
  pg_->Exec("INSERT INTO teams SELECT i, '7', 'x' FROM generate_series(1, 10) i");
  ExpectSinkEqualsSource();

  const std::string second = work_dir_ + "/out/seven.jsonl";
  std::string text = ReadFile(config_path_);
  text += fmt::format(
      "  - id: seven\n    type: jsonl\n    tenants: [\"7\"]\n    path: {}\n", second);
  text = std::regex_replace(text, std::regex("status_interval: 1s"), "status_interval: 2s");
  std::ofstream(config_path_) << text;
  daemon_.Kill(SIGHUP);
  ASSERT_TRUE(Eventually([&] { return DaemonLog().find("sink seven added") != std::string::npos; }))
      << DaemonLog();
  EXPECT_NE(DaemonLog().find("changes to source need a restart"), std::string::npos);
  pg_->Exec("INSERT INTO teams VALUES (100, '7', 'for seven'), (101, '8', 'not for seven')");
  EXPECT_TRUE(Eventually([&] { return ReadFile(second).find("for seven") != std::string::npos; }))
      << "the added sink got nothing";
  EXPECT_EQ(ReadFile(second).find("not for seven"), std::string::npos);

  // Drop all-events, restrict seven's batch size (a change: it restarts from its cursor).
  text = std::regex_replace(
      ReadFile(config_path_),
      std::regex("  - id: all-events\n    type: jsonl\n    tenants: \\[\"\\*\"\\]\n    path: "
                 "[^\n]*\n    batch_size: 500\n"),
      "");
  std::ofstream(config_path_) << text << "    batch_size: 7\n";
  daemon_.Kill(SIGHUP);
  ASSERT_TRUE(Eventually([&] {
    return DaemonLog().find("sink all-events removed") != std::string::npos &&
           DaemonLog().find("sink seven changed") != std::string::npos;
  })) << DaemonLog();
  pg_->Exec("INSERT INTO teams VALUES (102, '7', 'after the change')");
  EXPECT_TRUE(
      Eventually([&] { return ReadFile(second).find("after the change") != std::string::npos; }));
  auto s = Status(address);
  ASSERT_EQ(s["sinks"].size(), 1u) << s.dump(2);
  EXPECT_EQ(s["sinks"][0]["id"], "seven");
  // The restarted sink resumed from its cursor: no line twice.
  std::istringstream lines(ReadFile(second));
  std::set<std::string> ids;
  size_t n = 0;
  for (std::string l; std::getline(lines, l); ++n) ids.insert(nlohmann::json::parse(l)["id"]);
  EXPECT_EQ(ids.size(), n) << "a line was written twice";
  EXPECT_EQ(n, 12u) << "tenant 7's 10 retained inserts, then the two made after the reloads";
  StopDaemon();
}

// A sink stuck on its target (a lock it waits for) must not keep SIGTERM from ending the
// process: after shutdown_timeout it exits 0 anyway, saying so; what was durable is.
TEST_F(OperateTest, SigtermExitsWithinShutdownTimeoutWhileASinkIsStuck) {
  pg_->Exec("CREATE DATABASE stuck");
  std::string text = ReadFile(config_path_) +
                     fmt::format("  - id: stuck-db\n    type: postgres\n    tenants: [\"*\"]\n"
                                 "    dsn: \"{}\"\n    create_tables: true\n",
                                 pg_->Dsn("stuck"));
  std::ofstream(config_path_) << "shutdown_timeout: 3s\n" << text;
  StartDaemon();
  pg_->Exec("INSERT INTO teams VALUES (1, '7', 'a')");
  ASSERT_TRUE(Eventually([&] { return Poll("SELECT count(*) FROM teams", "stuck") == "1"; }))
      << DaemonLog();
  // Hold a lock the sink's next batch must wait for, from a connection of our own.
  std::atomic<bool> release{false};
  std::thread holder([&] {
    RunCommand(fmt::format(
        "psql -X -q '{}' -c 'BEGIN; LOCK TABLE teams IN ACCESS EXCLUSIVE MODE; "
        "SELECT pg_sleep(20); COMMIT' >/dev/null 2>&1",
        pg_->Dsn("stuck")));
  });
  ASSERT_TRUE(Eventually([&] {
    return pg_->Scalar("SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND "
                       "relation = 'teams'::regclass",
                       "stuck") == "1";
  }));
  pg_->Exec("INSERT INTO teams VALUES (2, '7', 'b')");
  std::this_thread::sleep_for(1s);  // the sink is now waiting on the lock
  const auto asked = Clock::now();
  daemon_.Kill(SIGTERM);
  auto code = daemon_.Wait(15s);
  const double took = std::chrono::duration<double>(Clock::now() - asked).count();
  ASSERT_TRUE(code.has_value()) << "pgfanout did not exit within 15 s of SIGTERM";
  EXPECT_EQ(*code, 0);
  EXPECT_GE(took, 2.5) << "it waited for the batch in flight";
  EXPECT_LT(took, 8.0) << "shutdown_timeout is 3 s";
  EXPECT_NE(DaemonLog().find("shutdown took longer than shutdown_timeout"), std::string::npos)
      << DaemonLog();
  std::cout << "exited " << took << " s after SIGTERM with a sink stuck\n";
  release = true;
  RunCommand(fmt::format("psql -X -q '{}' -c \"SELECT pg_terminate_backend(pid) FROM "
                         "pg_stat_activity WHERE query LIKE '%pg_sleep(20)%' AND pid <> "
                         "pg_backend_pid()\" >/dev/null 2>&1",
                         pg_->Dsn("stuck")));
  holder.join();
  // Started again, the stuck batch is delivered.
  StartDaemon();
  EXPECT_TRUE(Eventually([&] { return Poll("SELECT count(*) FROM teams", "stuck") == "2"; }))
      << DaemonLog();
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;

class OperateSlotTest : public OperateTest {};

// Every line of --log-format json is one JSON object, messages with quotes included.
TEST_F(OperateSlotTest, JsonLogLinesAreJson) {
  ASSERT_TRUE(daemon_.Start({"--log-format", "json", "run", "--config", config_path_}, log_path_));
  WaitStreaming();
  pg_->Exec("INSERT INTO teams VALUES (1, '7', 'x')");
  ExpectSinkEqualsSource();
  StopDaemon();
  std::istringstream lines(DaemonLog());
  size_t n = 0, quoted = 0;
  for (std::string l; std::getline(lines, l); ++n) {
    auto j = nlohmann::json::parse(l, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << l;
    ASSERT_TRUE(j.contains("msg") && j.contains("level") && j.contains("time")) << l;
    quoted += j["msg"].get<std::string>().find('"') != std::string::npos;
  }
  EXPECT_GT(n, 3u);
  EXPECT_GT(quoted, 0u) << "no message with a quote was tested";
}

// Another client holds the slot (it started replication and never lets go): pgfanout says
// who holds it, keeps retrying, and streams once the slot is free.
TEST_F(OperateSlotTest, WaitsWhileAnotherClientHoldsTheSlot) {
  StartDaemon();  // creates the slot
  StopDaemon();
  std::atomic<bool> holding{false};
  std::thread holder([&] {
    PGconn* c = PQconnectdb((pg_->Dsn() + " replication=database").c_str());
    PGresult* r = PQexec(c, "START_REPLICATION SLOT pgfanout_test LOGICAL 0/0 "
                            "(proto_version '1', publication_names 'pgfanout_test')");
    holding = PQresultStatus(r) == PGRES_COPY_BOTH;
    PQclear(r);
    std::this_thread::sleep_for(5s);  // never reads, never confirms
    PQfinish(c);
  });
  ASSERT_TRUE(Eventually([&] { return holding.load(); }, 10s));
  StartDaemon({}, /*wait=*/false);
  EXPECT_TRUE(Eventually([&] { return DaemonLog().find("is active for PID") != std::string::npos; },
                         10s))
      << DaemonLog();
  EXPECT_TRUE(daemon_.running()) << "a held slot is worth waiting for, not a halt";
  holder.join();
  WaitStreaming();
  pg_->Exec("INSERT INTO teams VALUES (1, '7', 'after the wait')");
  ExpectSinkEqualsSource();
  StopDaemon();
}

// source.heartbeat_interval writes a non-transactional logical message on a schedule (seen
// here through a second, test_decoding slot), and the slot is confirmed past it while no
// tracked table changes. retained_wal_warn: 1 byte, so the warning must show.
TEST_F(OperateSlotTest, HeartbeatsMoveTheSlotOfAQuietDatabase) {
  pg_->Exec("SELECT pg_create_logical_replication_slot('peek', 'test_decoding')");
  std::string text = ReadFile(config_path_);
  text = std::regex_replace(text, std::regex("  status_interval: 1s"),
                            "  status_interval: 1s\n  heartbeat_interval: 1s\n  retained_wal_warn: 1");
  std::ofstream(config_path_) << text;
  SetHttp("http:\n  listen: \"127.0.0.1:0\"\n  sample_interval: 500ms\n");
  StartDaemon();
  const std::string started = pg_->Scalar("SELECT pg_current_wal_lsn()::text");
  std::string first_beat;
  EXPECT_TRUE(Eventually([&] {
    auto rows = pg_->Query(
        "SELECT lsn::text FROM pg_logical_slot_peek_changes('peek', NULL, NULL) "
        "WHERE data LIKE 'message: transactional: 0 prefix: pgfanout.heartbeat%'");
    if (rows.size() < 2) return false;
    first_beat = *rows[0][0];
    return true;
  })) << "fewer than two heartbeats";
  EXPECT_TRUE(Eventually([&] {
    return pg_->Scalar(fmt::format("SELECT confirmed_flush_lsn > '{}' FROM pg_replication_slots "
                                   "WHERE slot_name = 'pgfanout_test'",
                                   first_beat)) == "t";
  })) << "the slot was not confirmed past a heartbeat (started at " << started << ")";
  EXPECT_TRUE(Eventually([&] { return DaemonLog().find("of WAL for it") != std::string::npos; }))
      << "no retained-WAL warning";
  pg_->Exec("SELECT pg_drop_replication_slot('peek')");
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing
