// Many tenants on one daemon: 10,000 sinks of one tenant each that have nothing to do cost
// no thread and no turn of the delivery pool, and an event wakes its own tenant's sink only.

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "test/integration/tailer_fixture.h"
#include "test/support/http_client.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kSinks = 10'000;
constexpr int kWorkers = 4;

// user + system CPU time of process `pid`, in seconds (/proc/<pid>/stat fields 14, 15).
double CpuSeconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string f;
  long utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::stol(f);
    if (i == 15) {
      stime = std::stol(f);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

int Threads(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

class ScaleTest : public TailerTest {
 protected:
  // 10,000 JSONL sinks, one tenant each (t0 … t9999), in a directory of their own.
  void WriteScaleConfig() {
    std::filesystem::create_directories(work_dir_ + "/tenants");
    std::string sinks;
    for (int i = 0; i < kSinks; ++i) {
      sinks += fmt::format(
          "  - id: t{0}\n    type: jsonl\n    tenants: [\"t{0}\"]\n    backfill: false\n"
          "    path: {1}/tenants/t{0}.jsonl\n",
          i, work_dir_);
    }
    // idle_close off: this test counts turns, and a close is one per sink.
    config_path_ =
        WriteConfig(sinks + fmt::format("delivery:\n  workers: {}\n  idle_close: 0s\n", kWorkers));
  }

  double Metric(const std::string& address, const std::string& series) {
    return MetricValue(HttpGet(address, "/metrics").body, series);
  }

  // Sinks whose file holds at least one line.
  std::vector<std::string> TenantFilesWithLines() {
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(work_dir_ + "/tenants")) {
      if (entry.file_size() > 0) out.push_back(entry.path().stem().string());
    }
    return out;
  }
};

TEST_F(ScaleTest, TenThousandIdleSinksCostNoTurnsAndAnEventWakesOnlyItsTenantsSink) {
  WriteScaleConfig();
  // Sinks of some tenants need the tenant column in the replica identity.
  pg_->Exec("ALTER TABLE users REPLICA IDENTITY FULL");
  pg_->Exec("ALTER TABLE teams REPLICA IDENTITY FULL");
  const auto started = Clock::now();
  StartDaemon();
  const std::string address = HttpAddress();
  ASSERT_FALSE(address.empty());
  // Every sink opened, read once and found nothing: all idle.
  const std::string idle_series = "pgfanout_delivery_sinks{state=\"idle\"}";
  double idle = 0;
  while (Clock::now() - started < 180s && daemon_.running()) {
    idle = Metric(address, idle_series);
    if (idle == kSinks + 1) break;
    std::this_thread::sleep_for(500ms);
  }
  ASSERT_EQ(idle, kSinks + 1) << DaemonLog().substr(0, 4000);
  const auto ready = Clock::now();
  const pid_t pid = daemon_.pid();
  const int threads = Threads(pid);
  const double turns_before = Metric(address, "pgfanout_delivery_turns_total");
  const double cpu_before = CpuSeconds(pid);
  std::this_thread::sleep_for(15s);
  const double cpu = CpuSeconds(pid) - cpu_before;
  const double turns = Metric(address, "pgfanout_delivery_turns_total") - turns_before;
  std::cout << fmt::format(
      "[ scale    ] {} sinks idle {:.1f} s after start; {} threads; over 15 s: {} turns, "
      "{:.2f} s CPU\n",
      kSinks + 1, std::chrono::duration<double>(ready - started).count(), threads, turns, cpu);
  // Each scrape is a turn of nobody's; the workers ran none: nothing was appended.
  EXPECT_EQ(turns, 0) << "idle sinks were polled";
  // The monitor and retention still look at every sink every few seconds (no delivery).
  EXPECT_LT(cpu, 0.05 * 15) << "an idle daemon of 10,000 sinks used more than 5 % of a core";
  EXPECT_LE(threads, kWorkers + 16) << "threads beyond the delivery workers";

  // One row for tenant t4242: its sink (and the "*" sink) take it, and no other sink is
  // woken for it.
  pg_->Exec("INSERT INTO users (id, tenant_id, name) VALUES (1, 't4242', 'x')");
  std::vector<std::string> written;
  const auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline) {
    written = TenantFilesWithLines();
    if (!written.empty()) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(written, std::vector<std::string>{"t4242"});
  const double woken = Metric(address, "pgfanout_delivery_turns_total") - turns_before;
  // Above 500 sinks /metrics has aggregates (metrics.per_sink: auto): a scrape stays small.
  const std::string metrics = HttpGet(address, "/metrics").body;
  EXPECT_EQ(metrics.find("sink=\"t4242\""), std::string::npos) << "per-sink series at 10,001 sinks";
  EXPECT_LT(metrics.size(), 100'000u);
  EXPECT_EQ(MetricValue(metrics, "pgfanout_sink_events_delivered_total"), 2);
  // /status?sink= finds the one sink among 10,001.
  auto status = nlohmann::json::parse(HttpGet(address, "/status?sink=t4242").body);
  ASSERT_EQ(status["sinks"].size(), 1u);
  EXPECT_EQ(status["sinks"][0]["events_delivered"], 1);
  EXPECT_EQ(status["sink_states"]["running"], kSinks + 1);
  std::cout << fmt::format("[ scale    ] one row for t4242: {} turns\n", woken);
  // t4242's sink and the "*" sink: a turn each (a wake that lands while one runs adds one).
  EXPECT_LE(woken, 4) << "an event for one tenant woke other tenants' sinks";
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing
