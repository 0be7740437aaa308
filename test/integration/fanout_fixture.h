#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "test/support/daemon_process.h"
#include "test/support/pg_server.h"

namespace pgfanout::testing {

// One source database with three tenant tables, and one target database per sink: tenants
// 7 and 8 on the source's cluster, tenant 9 on a cluster of its own (so it can be stopped
// while the others run), and an "analytics" database fed every tenant. Tenant 10 has no
// per-tenant sink. All sinks are postgres sinks that create their tables.
//
// Tables (source, database "postgres"):
//   users             id PK, tenant_id, a column of every type the sink must round-trip;
//                     REPLICA IDENTITY FULL (so rows can move between tenants)
//   contact_channels  PRIMARY KEY (tenant_id, id): the tenant is in the key
//   "Team Rooms"      "Room Id" PK, tenant_id, "Display ""Name""": names that need quotes
class FanoutTest : public ::testing::Test {
 protected:
  struct Target {
    std::string sink_id;
    std::string tenant;  // "*" for the analytics sink
    PgServer* server;
    std::string db;
  };
  struct Table {
    std::string name;     // as written in SQL, quoted if needed
    std::string columns;  // select list for comparison (each cast to text), also ORDER BY key
    std::string key;
  };

  void SetUp() override;
  void TearDown() override;

  // Writes the config; `extra_yaml` is appended to the sinks list.
  void WriteConfig(const std::string& extra_yaml = "");
  // Starts `pgfanout run` and waits until it streams and, with `wait_backfill`, until every
  // sink has copied the rows that existed (so that changes made next reach sinks as changes).
  void StartDaemon(const std::map<std::string, std::string>& env = {}, bool wait_backfill = true);
  void WaitStreaming();
  void StopDaemon();

  // Adds sink people-7: tenant 7's users into an existing table crm.people of database
  // tenant7 (created here), with a subset, renames, a computed column and soft delete.
  void AddPeopleSink();

  // The mixed workload: inserts, updates, deletes, multi-row transactions, key updates,
  // rows moving between tenants, NULLs, the value matrix, a >1 MB TOASTed value left
  // unchanged by an update, a TRUNCATE. `round` makes keys distinct per call.
  void Workload(int round);

  // Polls until every target equals its tenant's source rows (and holds no other
  // tenant's row), then asserts it. Targets in `skip` are not checked.
  void ExpectTargetsEqualSource(std::chrono::seconds timeout = std::chrono::seconds(90),
                                const std::vector<std::string>& skip = {});
  // The difference between one target and the source, "" when equal or the reason.
  std::string Diff(const Target& target) const;

  std::string DaemonLog() const;
  std::string Pgfanout(const std::vector<std::string>& args, int* code = nullptr) const;

  std::unique_ptr<PgServer> pg_;        // source, and targets of tenants 7, 8 and analytics
  std::unique_ptr<PgServer> other_pg_;  // target of tenant 9
  std::vector<Target> targets_;
  std::vector<Table> tables_;
  std::string work_dir_;
  std::string config_path_;
  std::string log_section_ = "  retain: 24h\n";  // the config's log: keys
  std::string log_path_;
  DaemonProcess daemon_;
};

}  // namespace pgfanout::testing
