// Outages around the daemon: the source crashes, the sinks' server goes away, a sink's
// target refuses writes. The daemon itself is never restarted unless a scenario says why.

#include <fmt/format.h>

#include <filesystem>
#include <random>

#include "test/faults/fault_fixture.h"

namespace pgfanout::faults {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The lines `pgfanout status` prints about sink `id`: its own and the indented ones under it.
std::string SinkBlock(const std::string& status, const std::string& id) {
  auto at = status.find("sink " + id + " (");
  if (at == std::string::npos) return "";
  auto end = status.find("\nsink ", at);
  return status.substr(at, end == std::string::npos ? std::string::npos : end - at + 1);
}

bool Contains(const std::string& text, std::string_view what) {
  return text.find(what) != std::string::npos;
}

class OutageTest : public FaultTest {
 protected:
  // What `pgfanout status` shows a person right now.
  std::string Status() {
    std::string out;
    testing::RunPgfanout({"status", "--config", config_path_}, &out);
    return out;
  }

  // The position target database `db` has committed up to ("" when unknown).
  std::string SinkLsn(const std::string& db) {
    auto rows = sink_pg_->TryQuery("SELECT max(commit_lsn)::text FROM pgfanout_sink_state", db);
    return rows && !rows->empty() && (*rows)[0][0] ? *(*rows)[0][0] : "";
  }

  // Waits until target database `db` has committed past `lsn`.
  bool AwaitSink(const std::string& db, const std::string& lsn, Clock::duration budget) {
    auto deadline = Clock::now() + budget;
    while (Clock::now() < deadline) {
      auto at = SinkLsn(db);
      if (!at.empty() && pg_->Scalar(fmt::format("SELECT '{}'::pg_lsn >= '{}'", at, lsn)) == "t") {
        return true;
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
};

// `pg_ctl stop -m immediate` of the source under load (the workload's transactions in
// flight get an unknown outcome, which the checker settles against the source), down 2 s
// (full: 10 s), started again; the daemon must reconnect by itself and converge. Short: 2
// crashes; full: 5.
TEST_F(OutageTest, ReconnectsAfterSourceCrash) {
  const int crashes = Full() ? 5 : 2;
  const auto down = Full() ? 10s : 2s;
  std::mt19937_64 rng(Seed());
  std::uniform_real_distribution<double> interval(1.0, 3.0);
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(300);
  for (int i = 0; i < crashes; ++i) {
    std::this_thread::sleep_for(std::chrono::duration<double>(interval(rng)));
    ASSERT_TRUE(daemon_.running()) << "pgfanout exited before crash " << i;
    NoteFault();
    ASSERT_TRUE(pg_->Stop("immediate"));
    std::this_thread::sleep_for(down);
    ASSERT_TRUE(daemon_.running())
        << "pgfanout exited while the source was down (crash " << i << ")";
    ASSERT_TRUE(pg_->StartAgain());
    auto since = Clock::now();
    EXPECT_TRUE(AwaitRecovery(SourceLsn(), since, 90s))
        << "the sinks did not pass the restarted source's position (crash " << i << ")";
  }
  ASSERT_TRUE(daemon_.running()) << "pgfanout exited after the source came back";
  auto report = Finish(Full() ? "source crash, 5 x 10 s down" : "source crash (short)");
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_GT(report.committed, 0);
}

// The sinks' database server stops (immediate) under load for 10 s (full: 3 minutes). The
// daemon keeps running: both Postgres sinks show their error and a retry in `pgfanout
// status`, the JSONL sink goes on, and once the server is back they catch up by themselves.
TEST_F(OutageTest, CatchesUpAfterSinkServerDown) {
  const auto down = Full() ? std::chrono::seconds(180) : 10s;
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(300);
  std::this_thread::sleep_for(2s);
  NoteFault();
  ASSERT_TRUE(sink_pg_->Stop("immediate"));
  const auto stopped = Clock::now();
  const auto jsonl_before = std::filesystem::file_size(jsonl_path_);
  std::string status;
  bool shown = false;
  while (Clock::now() < stopped + down) {
    if (!shown) {
      status = Status();
      shown = true;
      for (const char* sink : {"tenant-a", "tenant-bc"}) {
        auto block = SinkBlock(status, sink);
        shown = shown && Contains(block, "last error:") && Contains(block, "retrying") &&
                !Contains(block, "stopped");
      }
      if (shown) std::cout << "pgfanout status while the sinks' server is down:\n" << status;
    }
    std::this_thread::sleep_for(1s);
  }
  EXPECT_TRUE(shown) << "status never showed both Postgres sinks' error and retry:\n" << status;
  EXPECT_FALSE(Contains(SinkBlock(status, "all-events"), "last error:")) << status;
  EXPECT_GT(std::filesystem::file_size(jsonl_path_), jsonl_before)
      << "the JSONL sink stalled while only the Postgres sinks' server was down";
  ASSERT_TRUE(daemon_.running()) << "pgfanout exited while the sinks' server was down";
  ASSERT_TRUE(sink_pg_->StartAgain());
  auto since = Clock::now();
  // Back-off is capped at 30 s, so the first retry after a long outage may take that long.
  EXPECT_TRUE(AwaitRecovery(SourceLsn(), since, 120s)) << "the sinks did not catch up";
  ASSERT_TRUE(daemon_.running()) << "pgfanout exited after the sinks' server came back";
  status = Status();
  for (const char* sink : {"tenant-a", "tenant-bc"}) {
    EXPECT_FALSE(Contains(SinkBlock(status, sink), "last error:"))
        << "a stale error after the sink recovered:\n"
        << status;
  }
  auto report = Finish(Full() ? "sinks' server down 3 min" : "sinks' server down (short)");
  EXPECT_TRUE(report.Valid()) << report.ToText();
}

// The target of sink tenant-a refuses its writes under load (REVOKE INSERT, UPDATE, DELETE
// on ledger). A permission error needs a person, so retry_policy stops that sink
// (kStopSink: SQLSTATE class 42 is a target mismatch) and `status` says so; tenant-bc and
// the JSONL sink go on, and pgfanout keeps running. A stopped sink does not retry: after the
// GRANT it resumes once pgfanout is restarted, from its cursor, without loss.
TEST_F(OutageTest, StopsOnlyTheSinkThatRejectsWrites) {
  // sink_writer owns the targets, and an owner keeps its rights whatever is revoked: hand
  // ledger to postgres and grant sink_writer what a sink needs, before the daemon starts.
  for (const char* db : {"tenant_a", "tenant_bc"}) {
    sink_pg_->Exec(
        "ALTER TABLE ledger OWNER TO postgres; "
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ledger TO sink_writer",
        db);
  }
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(300);
  std::this_thread::sleep_for(2s);
  NoteFault();
  sink_pg_->Exec("REVOKE INSERT, UPDATE, DELETE ON ledger FROM sink_writer", "tenant_a");
  const auto revoked_at = SourceLsn();
  std::string status, block;
  for (auto deadline = Clock::now() + 30s; Clock::now() < deadline;) {
    status = Status();
    block = SinkBlock(status, "tenant-a");
    if (Contains(block, "last error:")) break;
    std::this_thread::sleep_for(500ms);
  }
  std::cout << "pgfanout status with tenant-a's writes refused:\n" << status;
  EXPECT_TRUE(Contains(block, "permission denied")) << status;
  EXPECT_TRUE(Contains(block, "stopped: needs a person")) << status;
  // The others go on past the moment of the REVOKE.
  EXPECT_TRUE(AwaitSink("tenant_bc", revoked_at, 30s)) << "tenant-bc stalled with tenant-a";
  status = Status();
  EXPECT_FALSE(Contains(SinkBlock(status, "tenant-bc"), "last error:")) << status;
  EXPECT_FALSE(Contains(SinkBlock(status, "all-events"), "last error:")) << status;
  ASSERT_TRUE(daemon_.running()) << "a sink's refused writes must not stop pgfanout";

  sink_pg_->Exec("GRANT INSERT, UPDATE, DELETE ON ledger TO sink_writer", "tenant_a");
  KillDaemon(SIGTERM);
  ASSERT_NO_FATAL_FAILURE(StartDaemon({}, /*wait=*/false));
  auto since = Clock::now();
  EXPECT_TRUE(AwaitRecovery(SourceLsn(), since, 60s)) << "tenant-a did not resume after restart";
  EXPECT_FALSE(Contains(SinkBlock(Status(), "tenant-a"), "last error:"));
  report_.notes =
      "tenant-a stopped on 'permission denied' (status: needs a person) while tenant-bc and "
      "all-events went on; after the GRANT a restart resumed it";
  auto report = Finish(Full() ? "sink rejects writes (REVOKE)" : "sink rejects writes (short)");
  EXPECT_TRUE(report.Valid()) << report.ToText();
}

}  // namespace
}  // namespace pgfanout::faults
