#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoints/event_log.h"
#include "src/core/error.h"
#include "src/core/event_id.h"
#include "src/core/lsn.h"

namespace pgfanout {

// A key as text values, one per key column, in key order.
using KeyValues = std::vector<std::string>;

// Where a copy of one table stands: the splits it was cut at, and for each range the last
// key copied and whether it is done. Kept between runs (meta::BackfillProgress), so a copy
// interrupted by kill -9 resumes from its last completed chunk.
struct TableCopyState {
  std::vector<KeyValues> splits;  // range i is [splits[i-1], splits[i]); first/last unbounded
  std::vector<std::optional<KeyValues>> last;  // per range: last key copied
  std::vector<bool> done;                      // per range

  bool Planned() const { return !done.empty(); }
  friend bool operator==(const TableCopyState&, const TableCopyState&) = default;
};

// Everything the event log stores besides events, schemas and cursors: typed records under
// the `meta` keys of checkpoints/KEYS.md, written and read through one codec. Each key is
// made by the function that names it here and carries the record type it holds, so a key
// cannot be read as another record. A record's owner (KEYS.md) is its only writer.
//
// Encoding: u8 record tag, u8 version (1), then the record's fields in the log's wire
// primitives (checkpoints/wire.h). Decode() rejects another record's tag, an unknown
// version, truncation, out-of-range values and trailing bytes, with kStorage naming the
// byte offset. An empty value is an erased record (Erase()): every encoding has its tag.
namespace meta {

struct LogId {  // log.id: 32 hex digits, random, made when the log is created
  std::string id;
  friend bool operator==(const LogId&, const LogId&) = default;
};

// source.identity: the source the log's positions come from, recorded piece by piece as
// they are first seen (source_setup): empty / 0 until then.
struct Source {
  std::string system_id;  // IDENTIFY_SYSTEM's systemid
  std::string slot;       // the slot the log reads
  uint32_t timeline = 0;  // the timeline the log's position was written on
  friend bool operator==(const Source&, const Source&) = default;
};

// log.trimmed_through, sink.<id>.trimmed_past: the last event retention trimmed (of the
// log; that the sink had not taken).
struct TrimMark {
  EventId through;
  friend bool operator==(const TrimMark&, const TrimMark&) = default;
};

// log.trim_marks_per_sink: a one-time conversion was done; its presence is the record.
struct Flag {
  friend bool operator==(const Flag&, const Flag&) = default;
};

// sink.<id>.state: the sink's last error, for `pgfanout status` in another process.
struct SinkState {
  bool stopped = false;     // gave up: needs a person
  int64_t retry_at_ms = 0;  // the next attempt, ms since the epoch; 0: none planned
  std::string message;
  friend bool operator==(const SinkState&, const SinkState&) = default;
};

// sink.<id>.refill: tables to copy again (a column was added), in the order asked.
struct Refill {
  std::vector<std::string> tables;
  friend bool operator==(const Refill&, const Refill&) = default;
};

// sink.<id>.baseline: the sink's token as its first Open() found it (pipeline/sink_open.h).
struct Baseline {
  std::string token;
  friend bool operator==(const Baseline&, const Baseline&) = default;
};

// sink.<id>.tables: the tables the sink had at its last backfill.
struct SinkTables {
  std::vector<std::string> tables;
  friend bool operator==(const SinkTables&, const SinkTables&) = default;
};

// sink.<id>.backfill: a copy in progress, rewritten after every chunk.
struct BackfillProgress {
  Lsn first;          // the first snapshot's consistent point
  EventId resume_at;  // the cursor to leave when done
  // Per table copied, in the same order: its name, where its copy stands, rows copied.
  std::vector<std::string> tables;
  std::vector<TableCopyState> states;
  std::vector<uint64_t> rows_done;
  bool replace = false;        // the copy replaces the destination's rows (BeginReplace)
  bool replace_begun = false;  // BeginReplace has been done (only with replace)
  friend bool operator==(const BackfillProgress&, const BackfillProgress&) = default;
};

// sink.<id>.backfill_status: the last progress line of a copy, for `pgfanout status`.
struct BackfillStatus {
  std::string line;
  friend bool operator==(const BackfillStatus&, const BackfillStatus&) = default;
};

// sink.<id>.resnapshot: a copy asked of the running daemon (`pgfanout resnapshot`), kept
// from the request until the copy is done. The copy itself is a BackfillProgress that the
// sink's runner advances a round at a time between its batches.
struct Resnapshot {
  std::vector<std::string> tables;  // qualified; never empty
  bool replace = true;              // rows the copy does not find are removed (row sinks)
  int64_t requested_at_ms = 0;      // since the epoch
  std::string origin;               // who asked: "http"
  // Copy only the rows this Predicate (src/core/predicate.h) holds for; empty: all. A
  // copy with one never removes rows (replace is false). Absent in records before it.
  std::string where;
  friend bool operator==(const Resnapshot&, const Resnapshot&) = default;
};

// signals.pending: requests for copies from the signal table (source.signal_table) not yet
// handed to their sinks, in commit order, with the id of the last signal row taken.
// Stored before the group commit that holds those rows (a row the server sends again, at
// or below `applied`, is skipped).
struct Signals {
  struct Request {
    EventId id;  // the signal row's INSERT
    std::string sink_id;
    std::optional<std::string> table;  // as written; unset: every table of the sink
    bool replace = true;
    friend bool operator==(const Request&, const Request&) = default;
  };
  EventId applied;
  std::vector<Request> pending;
  friend bool operator==(const Signals&, const Signals&) = default;
};

// registry.rows: the sink registry's rows as of `applied`, the id of the last registry
// change applied (src/pipeline/sink_registry.h). Stored before the group commit that
// holds that change, so a change at or below `applied` that the server sends again is
// known to be applied.
struct Registry {
  struct Row {
    std::string sink_id;
    std::string template_name;
    std::vector<std::string> tenants;
    std::vector<std::pair<std::string, std::string>> params;  // sorted by name
    bool enabled = true;
    // Why the row makes no sink, found when it was applied and not found again from the
    // config alone (a tenant the source writes in another form); empty: nothing.
    std::string error;
    friend bool operator==(const Row&, const Row&) = default;
  };
  EventId applied;
  std::vector<Row> rows;  // sorted by sink_id
  // Sinks retired by a change (deleted, moved elsewhere) that were still delivering up to
  // it: their state is dropped once they are done, or at the next start.
  std::vector<std::string> dropping;
  friend bool operator==(const Registry&, const Registry&) = default;
};

// A meta key and the record type stored under it.
template <class Record>
struct Key {
  std::string name;
};

Key<LogId> LogIdKey();
Key<Source> SourceKey();
Key<TrimMark> TrimmedThroughKey();
Key<Flag> TrimMarksPerSinkKey();
Key<TrimMark> TrimmedPastKey(std::string_view sink_id);
Key<SinkState> SinkStateKey(std::string_view sink_id);
Key<Refill> RefillKey(std::string_view sink_id);
Key<Baseline> BaselineKey(std::string_view sink_id);
Key<SinkTables> SinkTablesKey(std::string_view sink_id);
Key<BackfillProgress> BackfillProgressKey(std::string_view sink_id);
Key<BackfillStatus> BackfillStatusKey(std::string_view sink_id);
Key<Resnapshot> ResnapshotKey(std::string_view sink_id);
Key<Registry> RegistryKey();
Key<Signals> SignalsKey();

std::string Encode(const LogId& r);
std::string Encode(const Source& r);
std::string Encode(const TrimMark& r);
std::string Encode(const Flag& r);
std::string Encode(const SinkState& r);
std::string Encode(const Refill& r);
std::string Encode(const Baseline& r);
std::string Encode(const SinkTables& r);
std::string Encode(const BackfillProgress& r);
std::string Encode(const BackfillStatus& r);
std::string Encode(const Registry& r);
std::string Encode(const Resnapshot& r);
std::string Encode(const Signals& r);

// Decodes a non-empty value as `Record` (explicitly instantiated for each record above).
template <class Record>
Result<Record> Decode(std::string_view bytes);

// The record under `key`; nullopt when absent or erased. kStorage when it does not decode.
template <class Record>
Result<std::optional<Record>> Load(const EventLog& log, const Key<Record>& key) {
  PGF_TRY(auto value, log.GetMeta(key.name));
  if (!value || value->empty()) return std::optional<Record>();
  auto record = Decode<Record>(*value);
  if (!record) {
    return Error{ErrorKind::kStorage,
                 "state dir record " + key.name + ": " + record.error().message};
  }
  return std::optional<Record>(std::move(record).value());
}

// Writes `record` under `key` (synced, EventLog::PutMeta).
template <class Record>
Result<void> Store(EventLog& log, const Key<Record>& key, const Record& record) {
  return log.PutMeta(key.name, Encode(record));
}

template <class Record>
Result<void> Erase(EventLog& log, const Key<Record>& key) {
  return log.PutMeta(key.name, "");
}

// Drops everything the log keeps for sink `sink_id`: its cursor and every sink.<id>.*
// record. A sink later made with the same id starts as new (a registry row deleted and
// added again). The cursor goes last: a crash halfway leaves a sink that copies again.
Result<void> ForgetSink(EventLog& log, std::string_view sink_id);

// The meta records of a log written before this codec (eventlog-1 and -2 stored text in
// four formats; KEYS.md) converted to it: `legacy` is every meta key and value such a log
// holds; the result is the meta keys it must hold now (source.system_id, source.slot and
// source.timeline become source.identity; erased records are left out; keys this build
// does not know are kept as they are). kStorage naming the key when a value that matters
// (positions, copies, the source) does not parse; an unreadable display-only record (a
// sink's last error, a copy's progress line) is dropped.
Result<std::map<std::string, std::string>> UpgradeLegacy(
    const std::map<std::string, std::string>& legacy);

}  // namespace meta
}  // namespace pgfanout
