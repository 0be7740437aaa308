#include "test/integration/tailer_fixture.h"

#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace pgfanout::testing {

void TailerTest::SetUp() {
  pg_ = PgServer::Start(PgServer::Options{.settings = ServerSettings()});
  ASSERT_NE(pg_, nullptr);
  pg_->Exec(R"sql(
    CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, name text,
                        score numeric, active boolean, bio text);
    CREATE TABLE teams (id int PRIMARY KEY, tenant_id text NOT NULL, title text);
    CREATE TABLE untracked (id int PRIMARY KEY, v text);
  )sql");
  char tmpl[] = "/tmp/pgfanout-test-work-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  work_dir_ = tmpl;
  jsonl_path_ = work_dir_ + "/out/events.jsonl";
  log_path_ = work_dir_ + "/pgfanout.log";
  config_path_ = WriteConfig();
}

void TailerTest::TearDown() {
  if (daemon_.running()) {
    daemon_.Kill(SIGKILL);
    daemon_.Wait(std::chrono::seconds(10));
  }
  if (HasFailure()) {
    // The log's last part (where the failure is), then this test's failures again: CI shows
    // only an output's last lines, and the assertions would be above the log.
    const std::string log = DaemonLog();
    std::cerr << "---- pgfanout log (" << log_path_ << "), its last 20000 bytes ----\n"
              << log.substr(log.size() > 20000 ? log.size() - 20000 : 0) << "\n";
    const auto* result = ::testing::UnitTest::GetInstance()->current_test_info()->result();
    std::cerr << "---- failures of this test, repeated ----\n";
    for (int i = 0; i < result->total_part_count(); ++i) {
      const auto& part = result->GetTestPartResult(i);
      if (!part.failed()) continue;
      std::cerr << (part.file_name() ? part.file_name() : "?") << ":" << part.line_number() << ": "
                << part.summary() << "\n";
    }
    std::cerr << std::flush;
  }
  pg_.reset();
  if (!HasFailure() && getenv("PGFANOUT_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(work_dir_, ec);
  }
}

std::string TailerTest::WriteConfig(const std::string& extra_sink_yaml) {
  std::string path = work_dir_ + "/pgfanout.yaml";
  std::ofstream out(path);
  out << fmt::format(R"yaml(
source:
  dsn: "{}"
  slot: pgfanout_test
  publication: pgfanout_test
  decoder: {}
  status_interval: 1s
state_dir: {}/state
http:
  listen: "127.0.0.1:0"
log:
  retain: 24h
tables:
  - name: public.users
    tenant_column: tenant_id
  - name: public.teams
    tenant_column: tenant_id
sinks:
  - id: all-events
    type: jsonl
    tenants: ["*"]
    path: {}
    batch_size: 500
{})yaml",
                     pg_->Dsn(), Decoder(), work_dir_, jsonl_path_, extra_sink_yaml);
  return path;
}

void TailerTest::EditConfig(const std::string& from, const std::string& to) {
  std::ifstream in(config_path_);
  std::stringstream s;
  s << in.rdbuf();
  std::ofstream(config_path_) << std::regex_replace(s.str(), std::regex(from), to);
}

std::string TailerTest::RunExpectingRefusal() {
  StartDaemon({}, /*wait=*/false);
  auto code = WaitDaemonExit(std::chrono::seconds(30));
  EXPECT_TRUE(code.has_value()) << "pgfanout should refuse and exit";
  if (code) {
    EXPECT_EQ(*code, 1);
  }
  return DaemonLog();
}

void TailerTest::StartDaemon(const std::map<std::string, std::string>& env, bool wait) {
  ASSERT_EQ(::access(PgfanoutBinary().c_str(), X_OK), 0)
      << "set PGFANOUT_BIN to the pgfanout binary (meson test does)";
  ASSERT_TRUE(daemon_.Start({"run", "--config", config_path_}, log_path_, env));
  if (wait) WaitStreaming();
}

void TailerTest::WaitStreaming() { WaitSlotActive(*pg_, daemon_, "pgfanout_test"); }

void TailerTest::StopDaemon() { StopCleanly(daemon_); }

std::optional<int> TailerTest::WaitDaemonExit(std::chrono::seconds timeout) {
  return daemon_.Wait(timeout);
}

std::map<std::string, nlohmann::json> TailerTest::SourceRows(const std::string& table) {
  std::vector<std::string> rows;
  for (const auto& r : pg_->Query("SELECT row_to_json(t)::text FROM " + table + " t")) {
    rows.push_back(*r[0]);
  }
  return checker_.KeyRows(table, rows);
}

void TailerTest::ExpectSinkEqualsSource(std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string diff;
  do {
    checker_.Load(jsonl_path_);
    diff.clear();
    for (const char* table : {"public.users", "public.teams"}) {
      std::string d = JsonlChecker::Diff(SourceRows(table), checker_.Rows(table));
      if (!d.empty()) diff += std::string(table) + ":\n" + d;
    }
    if (diff.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(checker_.error(), "");
  EXPECT_EQ(checker_.order_error(), "") << "ids must strictly increase: no duplicate, no reorder";
  EXPECT_EQ(diff, "") << "the JSONL sink does not rebuild the source";
}

std::string TailerTest::DaemonLog() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string TailerTest::Durable() {
  std::string out;
  RunPgfanout({"checkpoint", "--config", config_path_}, &out);
  return out;
}

std::string TailerTest::HttpAddress() {
  const std::regex re("http: listening on ([0-9.:]+)");
  std::string address;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (address.empty() && std::chrono::steady_clock::now() < deadline) {
    const std::string log = DaemonLog();
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it) {
      address = (*it)[1];
    }
    if (address.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(address.empty()) << "no 'http: listening on' line:\n" << DaemonLog();
  return address;
}

double MetricValue(const std::string& body, const std::string& line_start) {
  std::istringstream lines(body);
  for (std::string l; std::getline(lines, l);) {
    if (l.rfind(line_start + " ", 0) == 0) return std::stod(l.substr(line_start.size() + 1));
  }
  return -1;
}

}  // namespace pgfanout::testing
