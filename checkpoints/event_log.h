#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/change_event.h"
#include "src/core/error.h"
#include "src/core/lsn.h"

namespace pgfanout {

// A committed source transaction, ready to be made durable.
struct TransactionRecord {
  Lsn commit_lsn;  // LSN of the commit record: the commit_lsn of every event's EventId
  Lsn end_lsn;     // end of the commit record: the source position after this transaction
  std::vector<ChangeEvent> events;  // ids (commit_lsn, 0..n-1), ascending; may be empty
  // Events the transaction moved into the log before this record (a streamed one, by
  // SpillCommit); `events` is then empty. Their tenants are not known here.
  uint32_t written_ahead = 0;
};

// Where one sink stands. `applied` is the last EventId the sink has made durable (it may
// point at an event the sink's filter skipped). `token` is opaque sink state stored with
// it atomically (the JSONL sink keeps its file length there).
struct SinkCursor {
  EventId applied;
  std::string token;

  friend bool operator==(const SinkCursor&, const SinkCursor&) = default;
};

// The durable, ordered log of change events, the source position it covers, per-sink
// cursors, a little metadata, and a scratch area for in-progress (streamed) transactions.
//
// Contract:
// - Visibility: Read() returns only events at or below LastDurableEvent(). Events written
//   by AppendPartial() become visible only when a later Append() moves the durable
//   position past them; if the process dies first, Open() deletes them.
// - Durability: when Append() returns success, its events and its position are synced to
//   disk (one atomic write batch, fsync). DurableLsn() never moves backward.
// - Cursors never move backward through StoreCursor(); only RewindCursor() (an explicit
//   replay asked for by a person) may move one back.
// - Threads: every method may be called from any thread; implementations serialise
//   internally. Append() is called by one writer (the pipeline) only.
class EventLog {
 public:
  EventLog() = default;
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;
  virtual ~EventLog() = default;

  // Appends transactions in commit order and sets the durable source position to the
  // last one's end_lsn, atomically and synced. A transaction whose commit_lsn is not
  // greater than the last durable event's commit_lsn is an error (kInvalidArgument):
  // the caller deduplicates. So are a commit_lsn of 0/0, an end_lsn behind DurableLsn(),
  // event ids that are not (commit_lsn, ascending), and an event without `table`; a
  // rejected call writes nothing. An empty span is a no-op.
  virtual Result<void> Append(std::span<const TransactionRecord> transactions) = 0;

  // Writes events of one large transaction ahead of its Append() (which then carries no
  // events for it, only the position: TransactionRecord with the same commit_lsn and
  // empty `events`). Not synced, not visible; see the contract above. Every id must be
  // above LastDurableEvent() (kInvalidArgument otherwise: it would overwrite a visible
  // event). They become visible with the first Append() whose last commit_lsn is at or
  // past theirs.
  virtual Result<void> AppendPartial(std::span<const ChangeEvent> events) = 0;

  // End LSN of the last durable transaction; 0/0 for a new log. This is the only LSN
  // the slot may be confirmed up to.
  virtual Lsn DurableLsn() const = 0;

  // Highest durable EventId, or nullopt if no event was ever appended.
  virtual std::optional<EventId> LastDurableEvent() const = 0;

  // Oldest event still retained, or nullopt if the log holds none.
  virtual Result<std::optional<EventId>> FirstRetainedEvent() const = 0;

  // Up to `max_events` durable events with id > `after`, ascending. Empty when caught up.
  virtual Result<std::vector<ChangeEvent>> Read(EventId after, size_t max_events) const = 0;

  // What a filtered read knows of an event before it decodes the event's rows. `tenant`
  // views the log's storage: valid during the filter's call only.
  struct EventPeek {
    Op op = Op::kInsert;
    const TableSchema* table = nullptr;
    std::optional<std::string_view> tenant;
    std::optional<std::string_view> old_tenant;  // ChangeEvent::old_tenant
    bool has_old_row = false;
  };
  using EventFilter = std::function<bool(const EventPeek&)>;
  struct FilteredRead {
    std::vector<ChangeEvent> events;         // those `keep` accepted, ascending
    std::optional<EventId> scanned_through;  // the last event looked at; nullopt: none
  };
  // Read() for a reader that wants few of the events (a sink of one tenant among many):
  // events `keep` refuses are passed over without their rows being decoded. Stops after
  // `max_events` accepted, `max_bytes` of accepted events' encoded size (at least one is
  // returned: this bounds a reader's memory whatever its rows' size), or `max_scanned`
  // looked at; `scanned_through` lets the reader move past refused events. `keep` runs on
  // the calling thread.
  struct ReadLimits {
    size_t max_events = 1000;
    size_t max_bytes = 8u << 20;
    size_t max_scanned = 65536;
  };
  virtual Result<FilteredRead> ReadFiltered(EventId after, const ReadLimits& limits,
                                            const EventFilter& keep) const = 0;

  // ReadFiltered() for a sink that serves some tenants (`tenants`: not empty, not "*"),
  // through the tenant index: only the events in one of their buckets or the shared one
  // (BucketsOf, append_rules.h) are looked at, each once, ascending, and passed through
  // `keep`; `max_scanned` counts them. `scanned_through` is the last one looked at, or,
  // when no bucket holds more, the last durable event as of the call: a sink whose
  // tenants have nothing new moves to the head for one seek per bucket. The index covers
  // the events after IndexedFrom(); from a cursor before it, and for more than
  // kMaxIndexedTenants tenants (a seek per bucket would cost more than a look at each
  // event), this reads as ReadFiltered.
  static constexpr size_t kMaxIndexedTenants = 256;
  virtual Result<FilteredRead> ReadTenants(EventId after, std::span<const std::string> tenants,
                                           const ReadLimits& limits,
                                           const EventFilter& keep) const = 0;
  // Every event after this one is in the tenant index (EventId{}: every event). Later for
  // a log written before the index existed: the id of its last event then.
  virtual EventId IndexedFrom() const = 0;

  // How many durable events have id > `after`, counting at most `limit` (keys only, no
  // decoding: cheap enough for a lag gauge).
  virtual Result<uint64_t> CountAfter(EventId after, uint64_t limit) const = 0;

  // Deletes every event with id <= `through` (retention). Never touches cursors, nor
  // events written ahead by AppendPartial() that are not visible yet.
  virtual Result<void> Trim(EventId through) = 0;

  // Approximate bytes the log occupies on disk (for status).
  virtual uint64_t ApproximateSize() const = 0;

  // Sink cursors. StoreCursor rejects a cursor older than the stored one with
  // kInvalidArgument and leaves the stored one; it syncs before returning.
  virtual Result<std::optional<SinkCursor>> LoadCursor(const std::string& sink_id) const = 0;
  virtual Result<void> StoreCursor(const std::string& sink_id, const SinkCursor& cursor) = 0;
  virtual Result<void> RewindCursor(const std::string& sink_id, const SinkCursor& cursor) = 0;
  virtual Result<std::vector<std::pair<std::string, SinkCursor>>> ListCursors() const = 0;
  // Removes the sink's cursor (synced); absent: nothing to do.
  virtual Result<void> DropCursor(const std::string& sink_id) = 0;

  // Small durable key/value metadata (system identifier, slot name). Synced. A log holds
  // a random id under meta::LogIdKey() (meta_records.h) from the moment it is created.
  virtual Result<std::optional<std::string>> GetMeta(const std::string& key) const = 0;
  virtual Result<void> PutMeta(const std::string& key, const std::string& value) = 0;

  // Scratch for streamed transactions: changes of top-level transaction `xid`, in arrival
  // order `seq`, each tagged with the (sub)transaction `subxid` that made it. Not synced
  // (after a crash the server re-sends the whole transaction); Open() clears it.
  virtual Result<void> SpillPut(Xid xid, uint64_t seq, Xid subxid, const ChangeEvent& event) = 0;
  // Calls `fn` for each spilled change of `xid` in seq order. Stops at the first error.
  // The changes come back with a default `id`: a spilled change has no final id until its
  // transaction commits, so the spill does not store one.
  virtual Result<void> SpillScan(
      Xid xid, const std::function<Result<void>(const ChangeEvent&)>& fn) const = 0;
  // Drops changes of `subxid` (all of `xid` when subxid == xid).
  virtual Result<void> SpillDrop(Xid xid, Xid subxid) = 0;
  // Top-level transaction `xid` committed at `commit_lsn`: its spilled changes become its
  // events (ids (commit_lsn, 0..n-1) in seq order, xid `xid`, `commit_time_us`), written
  // ahead as AppendPartial() writes them (not synced, not visible until an Append() moves
  // the durable position past commit_lsn), and the spill of `xid` is dropped. Returns n.
  // commit_lsn must be above LastDurableEvent() (kInvalidArgument otherwise).
  virtual Result<uint32_t> SpillCommit(Xid xid, Lsn commit_lsn, int64_t commit_time_us) = 0;
};

// RocksDB-backed log in `dir` (created if missing). Fails with kStorage if another
// process holds the directory ("is pgfanout already running?").
Result<std::unique_ptr<EventLog>> OpenRocksDbEventLog(const std::string& dir);

// A read-only view of the log in `dir`, for commands (status, checkpoint) that run beside
// the daemon: takes no lock and writes nothing (every write method fails with kStorage).
// It sees the log as of the open. kNotFound if `dir` holds no event log.
Result<std::unique_ptr<EventLog>> OpenRocksDbEventLogReadOnly(const std::string& dir);

// An in-memory twin with the same contract, minus durability, for tests.
std::unique_ptr<EventLog> NewMemoryEventLog();

}  // namespace pgfanout
