#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "src/config/config.h"
#include "src/core/change_event.h"
#include "src/core/error.h"
#include "src/core/lineage.h"

namespace pgfanout {

// A position a sink keeps in its own destination, beside its data.
struct TargetPosition {
  EventId applied;
  // The log that wrote it; nullopt for a position written before positions named their
  // log (pgfanout 0.1).
  std::optional<Lineage> lineage;
};

// What a sink of any kind is given besides its own options (PostgresSinkOptions, ...:
// src/config/config.h), never another kind's. The daemon builds it from the sink's
// SinkConfig (src/daemon/sink_factory.h).
struct SinkBasics {
  std::string id;
  std::vector<std::string> tenants;     // {"*"} for every tenant
  std::vector<SinkTableConfig> tables;  // its mappings; empty: every tracked table, unrenamed
  std::vector<TableConfig> tracked;     // the tracked tables (keys, tenant columns)
  size_t batch_size = 1000;             // events per batch at most

  // The basics of the sink `config` describes; `tracked`: the config's tables.
  static SinkBasics Of(const SinkConfig& config, std::vector<TableConfig> tracked) {
    return {.id = config.id,
            .tenants = config.tenants,
            .tables = config.tables,
            .tracked = std::move(tracked),
            .batch_size = config.batch_size};
  }

  bool AllTenants() const { return tenants.size() == 1 && tenants[0] == "*"; }
  // The tenants a TRUNCATE is confined to: empty for a "*" sink.
  std::vector<std::string> TruncateScope() const {
    return AllTenants() ? std::vector<std::string>{} : tenants;
  }
  // The tracked table `schema.name`, or nullptr.
  const TableConfig* Tracked(const std::string& schema, const std::string& name) const {
    for (const auto& t : tracked) {
      if (t.schema == schema && t.name == name) return &t;
    }
    return nullptr;
  }
};

// A destination for one sink entry of the config.
//
// Delivery contract:
// - Input is at-least-once: after a crash a sink may be handed events it has seen before
//   (from its cursor on). It must tolerate them: apply them idempotently or, like the
//   JSONL sink, roll its own state back to the cursor in Open().
// - Order: events arrive in EventId order, already routed to this sink (Router): only its
//   tenants and tables; a row that moved between tenants arrives as a delete (to the old
//   tenant's sink) or an insert (to the new one's). A TRUNCATE of a table with a tenant
//   column, handed to a sink that serves only some tenants, means "delete those tenants'
//   rows of the table", never a wipe of other tenants' rows. Write() is never called
//   concurrently; one SinkRunner thread owns the sink.
// - A Write() that returns success has made the batch *durable* (fsynced, committed, or
//   acknowledged by the remote); only then does the runner store the cursor. A sink that
//   can only say *accepted* must not return success.
// - Stop() is called once, after the last Write() has returned; it releases resources.
class Sink {
 public:
  Sink() = default;
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;
  virtual ~Sink() = default;

  // Prepares the sink. `stored` is the cursor the event log holds (nullopt for a new sink).
  // Its token is empty when the runner moved the cursor past events this sink's filter
  // skipped before the sink's first successful Write(): there is no sink state to restore.
  // `lineage` names the log the sink runs from; a sink that keeps its own position in its
  // destination stores it with every position it writes from now on.
  // Returns the position the destination holds for this sink, when the sink keeps one
  // (Postgres, ClickHouse), else nullopt. The runner decides whether to resume from it:
  // only a position its own log wrote is trusted (src/pipeline/target_position.h).
  virtual Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                                     const Lineage& lineage) = 0;

  // Applies `events` (non-empty, ascending). On success returns the token to store with
  // the cursor. On error nothing may be assumed about how much was applied; the runner
  // retries from the stored cursor after calling Open() again.
  virtual Result<std::string> Write(std::span<const ChangeEvent> events) = 0;
  // After Open() of a cursor without a token: the token of the destination as Open() found
  // it (the JSONL sink: the file's length), which OpenSinkAtCursor (src/pipeline/
  // sink_open.h) stores before the first Write() and hands to every later Open() until the
  // cursor has a token of its own. Empty (the default): the sink keeps no state a crash
  // between a Write() and its cursor store could leave behind (it keeps its own position,
  // or its writes are idempotent).
  virtual std::string BaselineToken() const { return {}; }

  // The cursor was rewound to `to` (`pgfanout replay`; the end of a copy of existing
  // rows). A sink that keeps its own position (and would resume past `to` in Open())
  // moves it back, stored with `lineage`. May be called before Open().
  virtual Result<void> Rewind(const SinkCursor& to, const Lineage& lineage) {
    (void)to;
    (void)lineage;
    return boost::outcome_v2::success();
  }

  // A sink may find that a target table lacks values that only the source's existing rows
  // hold: the Postgres sink adding a column the source added to a table whose rows it
  // already has (the source's old rows read the column's default, or values a table
  // rewrite wrote; the WAL carries neither). It then calls `request` with the qualified
  // source table *before* it commits that change. The runner stores the request durably
  // and copies the table's rows again (a versioned backfill, which only brings rows up to
  // the source) before the next batch; a crash in between repeats the copy, never skips
  // it. An error from `request` fails the Write. Set once, before Open().
  using BackfillRequest = std::function<Result<void>(const std::string& source_table)>;
  virtual void SetBackfillRequest(BackfillRequest request) { (void)request; }

  // A copy of the source's rows is to *replace* what the destination holds of this sink's
  // tenants in `tables` (a new sink, a position no log can vouch for, `pgfanout
  // backfill`): rows the copy does not write must not survive it. BeginReplace() is called
  // before the copy's first Write(), again if the copy restarts before its first chunk
  // was recorded; FinishReplace() after its last Write(), with `version`, the commit LSN
  // the copy's rows carry. A sink without rows to replace (a change log, a stream) does
  // nothing. Errors are retried like Write()'s.
  using Tables = std::span<const std::shared_ptr<const TableSchema>>;
  virtual Result<void> BeginReplace(Tables tables) {
    (void)tables;
    return boost::outcome_v2::success();
  }
  virtual Result<void> FinishReplace(Tables tables, Lsn version) {
    (void)tables;
    (void)version;
    return boost::outcome_v2::success();
  }
  // The same for a copy made while the sink keeps streaming (`pgfanout resnapshot`): the
  // destination must keep serving the rows until FinishLiveReplace(), and the stream
  // writes rows newer than `version` meanwhile, which must survive it. The default is
  // BeginReplace/FinishReplace, right for a sink whose BeginReplace keeps the rows
  // (Postgres resets their versions); a sink whose BeginReplace deletes overrides both.
  virtual Result<void> BeginLiveReplace(Tables tables) { return BeginReplace(tables); }
  virtual Result<void> FinishLiveReplace(Tables tables, Lsn version) {
    return FinishReplace(tables, version);
  }
  // Whether BeginReplace/FinishReplace really replace rows (a row store: Postgres,
  // ClickHouse). A change log or a stream cannot take back what it delivered: a copy there
  // must not move the sink's cursor past changes it has not delivered (its deletes would
  // never reach the consumer), unless those changes are gone from the log anyway.
  virtual bool ReplacesRows() const { return false; }

  // Whether the open sink holds a connection to its target (a database, a server), which
  // delivery.max_connections counts. A local file (JSONL) or nothing (discard): false.
  virtual bool HoldsConnection() const { return true; }

  virtual void Stop() = 0;
};

}  // namespace pgfanout
