#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test/faults/checker.h"
#include "test/faults/workload.h"
#include "test/support/daemon_process.h"
#include "test/support/pg_server.h"

namespace pgfanout::faults {

// The daemon's slot and publication in every scenario.
inline constexpr const char* kFaultSlot = "pgfanout_fault";

using testing::DaemonProcess;
using testing::PgServer;

// One source database ("postgres") with the workload's tables, written by tenants a, b, c
// and d, and a daemon with three sinks:
//   all-events  JSONL, every tenant: the raw deliveries, in order
//   tenant-a    Postgres database tenant_a, tenant a only
//   tenant-bc   Postgres database tenant_bc, tenants b and c
// The two target databases live on a second cluster (sink_pg_), so that the source and the
// sinks' server can fail separately. The sinks connect as role `sink_writer` (not a
// superuser: a scenario can revoke its rights).
// (tenant d has no per-tenant sink). Each target has an audit trigger that records every
// row the sink applies, so the checker sees raw applies as well as the rows that result.
//
// Scenarios run short by default (part of ./dev test) and at full length with
// PGFANOUT_FAULTS=full (./dev faults). Each prints the checker's report; with
// PGFANOUT_FAULT_REPORT=<file> each also appends a Markdown row to that file.
class FaultTest : public ::testing::Test {
 public:
  // A Postgres sink's target database and the tenants it receives.
  struct TargetDb {
    const char* sink;
    const char* db;
    std::set<std::string> tenants;
  };
  static const std::vector<TargetDb>& Targets();

 protected:
  static bool Full();
  // A seeded random generator per test, printed so a failure can be repeated
  // (PGFANOUT_FAULT_SEED=<n>).
  uint64_t Seed() const { return seed_; }

  void SetUp() override;
  void TearDown() override;
  // Extra postgresql.conf lines of the source; override per suite.
  virtual std::vector<std::string> ServerSettings() const { return {}; }
  // The source: a cluster of its own with ServerSettings(); a suite with another kind of
  // source (ha_test.cc: a Patroni cluster) returns a PgServer::Attach()ed one.
  virtual std::unique_ptr<PgServer> StartSource() {
    return PgServer::Start(PgServer::Options{.settings = ServerSettings()});
  }
  // The source's connection string in the daemon's config. A suite that puts something
  // between them (network_test.cc: a proxy) overrides it and calls WriteConfig() again.
  virtual std::string SourceDsnForDaemon() const { return pg_->Dsn(); }
  // More tracked tables (public.<name>, tenant column tenant_id); each sink receives them
  // too, the Postgres sinks creating their targets.
  virtual std::vector<std::string> ExtraTables() const { return {}; }

  // source.confirm: sinks (standby_test.cc): the slot is confirmed at what the sinks hold,
  // and the JSONL sink (which that mode refuses) is left out.
  virtual bool ConfirmSinks() const { return false; }
  // More sinks for the daemon's config (YAML list items, each starting "\n  - id: ...") and
  // the views the checker compares them by; for suites with other kinds of targets.
  virtual std::string ExtraSinks() const { return {}; }
  virtual void ExtraViews(std::vector<SinkView>& views) { (void)views; }
  // Whether a daemon of the scenario still runs (Finish waits for convergence only then);
  // a suite with a second daemon adds it.
  virtual bool AnyDaemonRunning() { return daemon_.running(); }

  void WriteConfig();
  // The daemon's config with its state dir at `state_dir`.
  std::string ConfigText(const std::string& state_dir) const;
  // Starts `pgfanout run` (PGFANOUT_BIN, or `binary`). With `wait`, returns once it streams
  // from the slot and the targets hold the seed rows.
  void StartDaemon(const std::map<std::string, std::string>& env = {}, bool wait = true,
                   const std::string& binary = "");
  // kill -9 (or another signal) and reap; notes the daemon's peak RSS first.
  void KillDaemon(int signal = SIGKILL);
  // Reaps a daemon that a failpoint killed; false if it still runs after `timeout`.
  bool WaitDaemonDied(std::chrono::seconds timeout);
  // Records a fault at this moment: the source's WAL position and the replay window (WAL
  // the server will send again = position - the slot's confirmed_flush_lsn).
  std::string NoteFault();
  // Polls until every Postgres target has committed past `lsn`, for at most `budget`;
  // records the recovery time since `since` or, if the budget ran out, a censored one.
  bool AwaitRecovery(const std::string& lsn, std::chrono::steady_clock::time_point since,
                     std::chrono::steady_clock::duration budget);

  void StartWorkload(double rate);
  void StopWorkload();

  // Waits until every sink shows every committed change (or `timeout`), then checks, prints
  // the report, appends it to PGFANOUT_FAULT_REPORT, and returns it.
  Report Finish(const std::string& scenario,
                std::chrono::seconds timeout = std::chrono::seconds(180));

  std::string SourceLsn();
  // The sinks' connection string for target database `db` (role sink_writer).
  std::string SinkDsn(const std::string& db) const;
  std::string DaemonLog() const;

  std::unique_ptr<PgServer> pg_;       // the source
  std::unique_ptr<PgServer> sink_pg_;  // the Postgres sinks' targets
  std::unique_ptr<Workload> workload_;
  std::string work_dir_;
  std::string config_path_;
  std::string jsonl_path_;
  std::string log_path_;
  DaemonProcess daemon_;
  Report report_;  // faults and measurements collected while the scenario runs

 private:
  TableState SourceState();
  TableState TargetState(const std::string& db);
  static TableState ReadState(const PgServer& server, const std::string& db);
  std::vector<Delivery> TargetAudit(const std::string& db);
  std::vector<Delivery> JsonlDeliveries();
  std::vector<SinkView> Views();
  void Sample();

  uint64_t seed_ = 0;
  std::chrono::steady_clock::time_point started_;
  std::atomic<pid_t> daemon_pid_{-1};
  std::atomic<bool> sampling_{false};
  std::atomic<int64_t> peak_wal_{0};
  std::atomic<int64_t> peak_rss_{0};
  std::thread sampler_;
};

// Peak resident set of a pgfanout process from /proc, in bytes (0 if gone, or if the pid
// now belongs to another program).
int64_t PeakRss(pid_t pid);

}  // namespace pgfanout::faults
