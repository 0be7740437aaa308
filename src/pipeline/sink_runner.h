#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "checkpoints/event_log.h"
#include "src/metrics/metrics.h"
#include "src/pipeline/connection_budget.h"
#include "src/pipeline/delivery_pool.h"
#include "src/pipeline/refills.h"
#include "src/pipeline/sink_health.h"
#include "src/pipeline/router.h"
#include "src/pipeline/row_fetcher.h"
#include "src/sinks/sink.h"

namespace pgfanout {

// Delivers the event log to one sink, at the sink's own pace, a batch per turn on a
// DeliveryPool's workers (delivery_pool.h): a sink with nothing to do holds no thread and
// is not polled; it is woken (Notify) when the log appends an event it may take. Reads
// from the sink's cursor, filters through the Router, writes, and stores the cursor only
// after Write() says the batch is durable.
//
// Errors go through SinkHealth (DecideRetry): retried with backoff (the sink is reopened
// from its stored cursor; the wait holds no worker; a successful step, not a mere reopen,
// starts the backoff over), or the sink stops with its error shown by status(), or
// `on_fatal` is called (the log itself failed) and the runner stops.
class SinkRunner : public DeliveryTask, public ConnectionBudget::Holder {
 public:
  struct Status {
    std::string sink_id;
    std::optional<EventId> cursor;
    uint64_t events_delivered = 0;
    uint64_t batches = 0;
    std::string last_error;                                         // empty when healthy
    bool stopped = false;                                           // gave up: needs a person
    std::optional<std::chrono::system_clock::time_point> retry_at;  // next attempt
    // While the sink has no cursor yet (a first copy of existing rows runs or waits): the
    // log's last event when it started, after which it needs every event. Retention keeps
    // them under either lagging-sink policy.
    std::optional<EventId> holds_after;
    // Caught up and waiting to be woken: every event of its tenants' index buckets up to
    // the log's last event when this was read is taken (its stored cursor may be older:
    // it is not moved for events it never reads). Only for sinks with a tenant list.
    bool idle = false;
    // What it waits for before it can open (a target connection, delivery.max_connections;
    // a slot for its copy, backfill_concurrency); empty when it waits for nothing. Not an
    // error: whoever frees one wakes it.
    std::string waiting_for;
    // Paused (SinkConfig::enabled false): it opens nothing and writes nothing; its cursor
    // holds its events under the log's lagging-sink policy until it is resumed.
    bool paused = false;
    // Delivered every event up to the end it was given (EndAt) and takes no more.
    bool finished = false;
    // A copy asked while it streams (`pgfanout resnapshot`), until it is done.
    struct Resnapshot {
      std::vector<std::string> tables;
      bool replace = true;
      int64_t requested_at_ms = 0;
      std::string progress;  // the copy's last progress line; empty until its first round
      uint64_t rounds = 0;   // rounds run by this process
      std::string where;     // its Predicate text, or empty
    };
    std::optional<Resnapshot> resnapshot;
    // How the last resnapshot this process ran ended: "done", or "dropped: <why>" (the
    // request did not fit the tables, e.g. a where naming no column); empty: none yet.
    std::string last_resnapshot;
  };

  SinkRunner(const SinkConfig& config, const std::vector<TableConfig>& tables,
             std::unique_ptr<Sink> sink, EventLog& log, std::function<void(const Error&)> on_fatal);
  ~SinkRunner();

  // Copies existing rows into a new sink (or a sink's new tables) before it follows the log;
  // returns, when it copied anything, the snapshot point the rows are at least as new as
  // (the cursor is then reloaded). `tables` (qualified) asks for those tables again;
  // empty: whatever the sink's state says is missing. `replace`: the copy replaces what
  // the destination holds of the sink's rows (Sink::BeginReplace), of every table it maps
  // when `tables` is empty. Set before Start().
  struct CopyAsk {
    std::vector<std::string> tables;
    bool replace = false;
    // A resnapshot's round (BackfillOptions::round): it copies for a while and comes back,
    // with `unfinished` set when there is more; the cursor stays where the stream is.
    bool live = false;
    std::optional<EventId> stream_at;  // a live round between batches: the stream's cursor
    std::string where;                 // a resnapshot's own Predicate text; empty: none
    bool* unfinished = nullptr;
    std::function<void(const std::string&)> on_progress;
  };
  using Backfill = std::function<Result<std::optional<Lsn>>(
      Sink& sink, const std::function<bool()>& stopping, const CopyAsk& ask)>;
  void SetBackfill(Backfill backfill) { backfill_ = std::move(backfill); }
  // Reads from the source what a moved-in row's event lacks (row_fetcher.h). Without one,
  // such an insert is written without those values. Set before Start().
  void SetRowFetcher(std::unique_ptr<RowFetcher> fetcher) { fetcher_ = std::move(fetcher); }
  // Counts deliveries, batch sizes, apply and commit-to-durable latency and errors into
  // `metrics`: with `per_sink`, labelled sink (and tenant, for sinks with a tenant list)
  // plus sink_up; without, into series every runner shares (metrics.per_sink). Set before
  // Start().
  void SetMetrics(MetricsRegistry& metrics, bool per_sink = true);

  // Runs the runner's turns on `pool` (which must outlive Stop()); without one, on a pool
  // of one worker of its own.
  void Start(DeliveryPool* pool = nullptr);
  // Wakes the runner: the log appended an event it may take.
  void Notify();
  // Finishes the batch in flight (its cursor is stored if it succeeded), takes the runner
  // off its pool and stops the sink. Idempotent.
  void Stop();
  // Caps the bytes of one batch below the sink's batch_bytes (the pool's share of
  // delivery.memory per worker). Set before Start().
  void SetBatchBytesCap(size_t cap) { batch_bytes_cap_ = cap; }
  // Closes the sink (its target connection) after it has had nothing to do for this long;
  // it is reopened at its cursor when woken. Zero: never. Set before Start().
  void SetIdleClose(std::chrono::milliseconds after) { idle_close_ = after; }
  // Opens the sink's target connection only with a permit of `budget`
  // (delivery.max_connections; a sink without a connection, Sink::HoldsConnection, takes
  // none). Set before Start().
  void SetConnectionBudget(ConnectionBudget* budget) { connections_ = budget; }
  // source.confirm: sinks: positions written to the destination name the slot as their
  // voucher (Lineage::WithSlotVouching). Set before Start().
  void SetSlotVouches(bool on) { slot_vouches_ = on; }
  // While `*gate` is false the runner delivers nothing: it closes its sink after the batch
  // in flight and waits (Status::waiting_for says why) until woken with the gate open. The
  // daemon closes it while another pgfanout holds the slot (a standby delivers nothing
  // from its local log). Null: always open. Set before Start().
  void SetDeliveryGate(const std::atomic<bool>* gate) { gate_ = gate; }
  // A sink with a tenant list: the tenants whose index buckets it reads (the pool wakes it
  // for those).
  bool AllTenants() const { return config_.AllTenants(); }
  const std::vector<std::string>& tenants() const { return config_.tenants; }

  TurnResult Turn() override;
  void PermitReady() override { Notify(); }
  void PermitWanted() override;
  // Asks the turn in progress to wind down (Stop() then waits less). Idempotent.
  void RequestStop() {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  // The last event this sink may take (a registry change at `end` retires it): it delivers
  // what it has not up to there, never an event after, then shows Status::finished and
  // goes idle for good. Any thread.
  void EndAt(EventId end);
  // Asks for the sink's rows of `tables` (qualified, received by the sink) to be copied
  // again while it keeps streaming (`pgfanout resnapshot`): the copy runs a round at a time
  // between its batches, resumes after a restart, and with `replace` removes the rows it
  // does not find. Stored (meta::Resnapshot) before it returns. kBusy, saying why, when
  // the sink cannot take one now (one runs, its first copy runs, it is paused, stopped or
  // retired). `where` (a Predicate's text, parsed by the caller) limits the copy to the
  // rows it holds for, beside the sink's own; it cannot go with `replace` (the rows outside
  // it are not copied, so they would be removed). Any thread.
  Result<void> RequestResnapshot(std::vector<std::string> tables, bool replace, std::string origin,
                                 std::string where = {});
  // Runs until the cursor reaches `target` or the sink fails; for `pgfanout replay`.
  Result<void> RunUntil(EventId target);

  Status status() const;
  const std::string& id() const { return config_.id; }

 private:
  // One read-filter-write-store step. Returns false when caught up: nothing read, or the
  // read reached the log's last event as of the step's start.
  Result<bool> Step();
  // The read-filter-write-store part of Step().
  Result<bool> StepBatch();
  // Completes the routed events[0, kept) that need the source's row; drops those whose row
  // is gone. Returns the new `kept`.
  Result<size_t> CompleteMovedRows(std::vector<ChangeEvent>& events, size_t kept);
#ifdef PGFANOUT_NEGATIVE_CONTROL
  void NegativeControlBeforeWrite(std::vector<ChangeEvent>& events, size_t kept) const;
#endif
  Result<void> Open(const Lineage& lineage);
  // Stops the sink (closing its target connection) and gives its connection permit back;
  // it is opened again from the stored cursor.
  void Close();
  // Copies the tables the sink asked for (refills_), if any.
  Result<void> RunRefills();
  // One round of the resnapshot in progress, if any and if due (the stream was caught up
  // at its last step, or kRoundEvery passed). A round that waits for a backfill slot is
  // skipped: the stream goes on.
  Result<void> RunResnapshotRound(std::optional<EventId> stream_at);
  bool Resnapshotting() const {
    std::lock_guard lock(mu_);
    return status_.resnapshot.has_value();
  }
  bool Stopping() const {
    std::lock_guard lock(mu_);
    return stop_;
  }
  // A sink whose cursor is behind what retention trimmed (log.lagging_sinks: drop) lost
  // events: kMismatch, it stops.
  Result<void> CheckNotTrimmedPast(const EventId& cursor) const;

  SinkConfig config_;
  std::unique_ptr<Sink> sink_;
  EventLog& log_;
  Router router_;
  std::function<void(const Error&)> on_fatal_;
  Backfill backfill_;
  std::unique_ptr<RowFetcher> fetcher_;
  struct Instruments {
    MetricsRegistry* registry = nullptr;
    Counter* delivered = nullptr;
    Counter* batches = nullptr;
    Histogram* batch_events = nullptr;
    Histogram* apply_seconds = nullptr;
    Histogram* delivery_seconds = nullptr;
    Gauge* up = nullptr;  // per-sink series only
    bool per_sink = true;
    std::map<std::string, Counter*, std::less<>> per_tenant;  // sinks with a tenant list
  } metrics_;
  void CountBatch(std::span<const ChangeEvent> events, std::chrono::steady_clock::duration apply);
  DeliveryPool* pool_ = nullptr;
  std::unique_ptr<DeliveryPool> own_pool_;  // Start() without a pool
  mutable std::mutex mu_;
  bool stop_ = false;
  std::optional<EventId> end_at_;  // under mu_
  bool opened_ = false;
  bool waiting_ = false;  // status_.waiting_for is set; the turn's own (read without mu_)
  uint64_t wakes_ = 0;  // Notify() calls, under mu_
  size_t batch_bytes_cap_ = SIZE_MAX;
  std::chrono::milliseconds idle_close_{0};
  std::chrono::steady_clock::time_point last_busy_;  // last turn that opened or wrote
  ConnectionBudget* connections_ = nullptr;
  ConnectionBudget::Permit permit_;  // held while opened_, when connections_ is set
  uint64_t wakes_seen_ = 0;          // wakes_ as of the start of the last turn
  bool told_untrusted_ = false;  // the destination's position was refused, and it was logged
  bool slot_vouches_ = false;
  const std::atomic<bool>* gate_ = nullptr;
  Lsn writing_up_to_;  // commit LSN of the last event of the Write() in progress
  SinkHealth health_;
  Refills refills_;  // tables the sink asked to have copied again
  std::chrono::steady_clock::time_point last_round_end_{};
  bool stream_caught_up_ = true;  // the last step read everything there was
  // The copy Open() found needed while a resnapshot ran; done when it ends.
  std::optional<bool> copy_after_resnapshot_;  // its replace flag
  std::optional<SinkCursor> cursor_;
  Status status_;
};

}  // namespace pgfanout
