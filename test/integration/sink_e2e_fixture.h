#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test/support/daemon_process.h"
#include "test/support/pg_server.h"

namespace pgfanout::testing {

// The same end-to-end and kill -9 scenarios for every sink kind. A suite for a sink derives
// from SinkE2ETest, starts its real server in SetUp (after SinkE2ETest::SetUp), and says
// how the daemon reaches it (SinksYaml) and how to read back what it holds (TargetRows).
//
// Source (database "postgres"), tenants t1, t2, t3:
//   accounts  PRIMARY KEY (tenant_id, id), default replica identity: the tenant is in the
//             key; columns id int, tenant_id text, name text, balance numeric(12,2),
//             note text (sometimes a TOASTed 100 kB value), active boolean,
//             updated_at timestamptz
//   events    id bigint PRIMARY KEY, REPLICA IDENTITY FULL (rows move between tenants);
//             tenant_id text, kind text, payload jsonb
// Rows are compared as text: Key() + the values of Columns(table) in the source's text
// form (SourceRows). A sink whose target keeps another form normalises in TargetRows.
class SinkE2ETest : public ::testing::Test {
 public:
  using Row = std::vector<std::optional<std::string>>;
  using Rows = std::map<std::string, Row>;  // key text ("t1/7") -> the row's values

 protected:
  void SetUp() override;
  void TearDown() override;

  // The sinks list of the config (each item "  - id: …"); the daemon is started with it.
  virtual std::string SinksYaml() = 0;
  // What sink `sink_id` holds of `table` for `tenants` (every tenant when empty), in the
  // form of SourceRows. nullopt while it cannot be read (not created yet, server down).
  virtual std::optional<Rows> TargetRows(const std::string& sink_id, const std::string& table,
                                         const std::set<std::string>& tenants) = 0;

  static const std::vector<std::string>& Tables();  // accounts, events
  // The compared columns of `table`, in order (the key columns first).
  static const std::vector<std::string>& Columns(const std::string& table);
  // Source rows of `table` for `tenants` (every tenant when empty), values as ::text; of
  // those only the ones SQL condition `where` holds for, when given.
  Rows SourceRows(const std::string& table, const std::set<std::string>& tenants,
                  const std::string& where = "");

  void WriteConfig();
  // Before StartDaemon: the HTTP endpoint asks for `token` (http.token_file).
  void UseHttpToken(const std::string& token);
  // The address of the `nth` (from 1) "http: listening on" line of the daemon's log, once
  // there: a restarted daemon listens on a new port, and logs a new line.
  std::string HttpAddress(size_t nth = 1);
  void StartDaemon(bool wait = true);
  void StopDaemon();   // SIGTERM, expects exit 0
  void KillDaemon();   // SIGKILL and reap
  std::string DaemonLog() const;

  // One round of the mixed workload: inserts in one and in many-row transactions, updates
  // (some leaving the TOASTed note unchanged), deletes, events moving between tenants, an
  // accounts row whose key changes. Keys are unique per `round`.
  void Workload(int round);
  // The workload in a loop on a thread of its own until StopBackground(): `rate` rounds of
  // small transactions per second, each recorded (nothing is lost on the source side).
  void StartBackground(double rate);
  void StopBackground();

  // Polls until sink `sink_id` holds exactly the source's rows of every table for
  // `tenants` (every tenant when empty), for at most `timeout`; then asserts it, printing
  // the first differences.
  void ExpectSinkEqualsSource(const std::string& sink_id, const std::set<std::string>& tenants,
                              std::chrono::seconds timeout = std::chrono::seconds(90));

  // With partitioned_: what the stream does not carry (pgoutput sends nothing for a
  // partition TRUNCATE under publish_via_partition_root, nor for ATTACH and DETACH).
  // Truncates accounts_t1, detaches accounts_t2, attaches a filled events partition.
  void ChangePartitionsUnseenByTheStream();

  // kill -9 of the daemon at random 0.5-2 s intervals under the background workload,
  // `kills` times, restarting at once; then every sink in `sinks` (id -> tenants) must equal
  // the source. The seed is printed.
  void KillLoop(int kills, const std::map<std::string, std::set<std::string>>& sinks);

  // Set before SetUp: the same tables, partitioned (accounts by LIST of tenant_id, events
  // by RANGE of id; see kPartitionedSchema).
  bool partitioned_ = false;
  // Set before StartDaemon: lines added under `http:` (e.g. "  token_file: …\n") and at
  // the top level of the config (e.g. a `delivery:` block).
  std::string http_yaml_;
  std::string source_yaml_;                        // lines added under `source:`
  std::map<std::string, std::string> daemon_env_;  // for the next StartDaemon
  std::string extra_yaml_;
  // Sink id -> table -> an SQL condition on the source (written by the test, not by
  // pgfanout): ExpectSinkEqualsSource compares that sink with those rows only.
  std::map<std::string, std::map<std::string, std::string>> expected_where_;
  std::unique_ptr<PgServer> pg_;
  std::string work_dir_;
  std::string config_path_;
  std::string log_path_;
  DaemonProcess daemon_;

 private:
  std::atomic<bool> background_stop_{false};
  std::thread background_;
};

// A diff of two row sets for a failure message (at most `limit` lines).
std::string DiffRows(const SinkE2ETest::Rows& want, const SinkE2ETest::Rows& got,
                     size_t limit = 10);

}  // namespace pgfanout::testing
