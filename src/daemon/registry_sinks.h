#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "src/config/config.h"
#include "src/pgclient/pg_connection.h"
#include "src/pipeline/sink_fleet.h"
#include "src/pipeline/sink_registry.h"
#include "src/source/registry_source.h"

namespace pgfanout {

// The daemon's side of the sink registry (src/pipeline/sink_registry.h): turns its rows
// into sink definitions beside the static ones and applies each change to the fleet at
// its position, before the group commit holding it is appended:
// - a row deleted, changed into an error, or whose sink now goes elsewhere (params the
//   template uses, tenants, the template) retires its sink at the change's event id P
//   (SinkRunner::EndAt): it still delivers what it had not of the events before P, never
//   one after, then is stopped and its local state dropped (meta::ForgetSink). A sink that
//   is paused, or has not delivered up to P within kDrainTimeout (its target is down), is
//   stopped at once, and says so; so is one whose first copy has not ended (it copies
//   from a snapshot taken after P). A new sink under that id (moved elsewhere, or added
//   again) starts after, as new: it copies its rows from a snapshot taken after P;
// - `enabled` alone pauses or resumes the sink at its cursor;
// - a row that makes no sink is shown as a stopped sink whose error names the sink_id and
//   the column, and logged once; no other sink is touched.
// The rows are stored before the append (with the sinks still retiring, whose state a
// restart drops), so a crash at any point leaves a registry that matches the log.
//
// Threads: the daemon's loop, except Errors() and counts() (any).
class RegistrySinks {
 public:
  // Whether a definition makes a sink (MakeSink); the message says why not.
  using TryMake = std::function<Result<void>(const SinkConfig&)>;
  static constexpr auto kDrainTimeout = std::chrono::seconds(60);

  RegistrySinks(const Config& config, EventLog& log, SinkFleet& fleet, TryMake try_make);

  bool enabled() const { return config_.sink_registry.enabled(); }
  // At start: the rows the state dir holds (false: none yet; Connected() reads the table
  // then), and the state of sinks a stop interrupted while they retired dropped.
  Result<bool> Load();
  // Every sink definition now: the static ones, then the registry's (for the fleet).
  std::vector<SinkConfig> Definitions();
  // On each connect, after the source is prepared: the first time, reads the table (the
  // registry as of the log's position) and applies it. Keeps a connection for the checks
  // of tenant values.
  Result<void> Connected(const PgConnection& sql);
  // Ingest::BeforeAppend.
  Result<void> BeforeAppend(std::vector<TransactionRecord>& transactions);
  // Ingest::AfterAppend: registry changes inside a streamed transaction (one larger than
  // logical_decoding_work_mem) were written ahead, past BeforeAppend; they are read back
  // and applied now, a little late (sinks may have read past them: said in the log).
  Result<void> AfterAppend(const std::vector<TransactionRecord>& transactions);
  // Now and then (the daemon's timer): stops retiring sinks that are done, or out of time,
  // drops their state and starts what waited for their id.
  Result<void> Reap();
  bool retiring() const { return !retiring_.empty(); }

  // Rows that make no sink: sink_id -> "registry: sink <id>: <column>: <what>".
  std::map<std::string, std::string> Errors() const;
  struct Counts {
    size_t live = 0, paused = 0, error = 0;
  };
  Counts counts() const;

 private:
  struct Retiring {
    SinkConfig definition;  // as it runs
    EventId end;
    std::chrono::steady_clock::time_point since;
  };
  // The registry's sinks that can be made now (resolved_); sets the errors (logging each
  // new one).
  void Resolve();
  // Applies static + retiring + resolved (but for `held` ids) to the fleet.
  Result<void> Sync(const std::set<std::string>& held = {});
  // Stops `ids` (after their batch in flight), drops their state, and stores the registry.
  Result<void> Drop(const std::set<std::string>& ids);
  // Checks the tenant values of the rows `ids` against the source (TenantForms).
  Result<void> CheckTenantForms(const std::vector<std::string>& ids);
  Result<const PgConnection*> Sql();
  SinkRunner* RunnerOf(const std::string& id) const;

  const Config& config_;  // the daemon's: a reload changes its templates and static sinks
  EventLog& log_;
  SinkFleet& fleet_;
  TryMake try_make_;
  SinkRegistry registry_;
  bool loaded_ = false;
  TenantForms tenant_forms_;
  std::optional<PgConnection> sql_;
  std::map<std::string, SinkConfig> resolved_;  // the rows' sinks, by id
  std::map<std::string, SinkConfig> running_;   // registry sinks as last applied, by id
  std::map<std::string, Retiring> retiring_;
  // Sinks a registry change pauses that still deliver up to it (EndAt), with the definition
  // they run under; the paused one replaces it once it is done (Reap).
  std::map<std::string, Retiring> pausing_;
  mutable std::mutex mu_;
  std::map<std::string, std::string> errors_;  // under mu_
  Counts counts_;                              // under mu_
};

}  // namespace pgfanout
