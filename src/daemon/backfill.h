#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "src/config/config.h"
#include "src/core/error.h"
#include "src/sinks/sink.h"

namespace pgfanout {

struct BackfillOptions {
  size_t connections = 4;     // source connections copying in parallel
  size_t chunk_rows = 10000;  // rows per COPY chunk, and per sink write
  // Qualified tables to copy; empty: decide from the sink's state (see BackfillSink).
  std::vector<std::string> tables;
  // The copy replaces what the destination holds of the sink's tenants' rows in the
  // copied tables (Sink::BeginReplace/FinishReplace); with `tables` empty it copies every
  // table the sink maps. Else it only brings rows up to the source (versioned upserts).
  bool replace = false;
  std::function<bool()> stopping;  // checked between chunks; true: give up (kCancelled)
  // Called once there is something to copy, before the snapshot is taken; the copy holds
  // what it returns until it ends (the daemon bounds how many sinks copy at once).
  std::function<Result<std::shared_ptr<void>>()> admit;

  // A live copy (`pgfanout resnapshot`: the sink keeps streaming). Each call copies for
  // about `round`, from a snapshot of its own, then returns with `*unfinished` set and the
  // sink's cursor where its stream stood; its runner delivers batches between calls. Zero:
  // copy to the end in one call.
  std::chrono::milliseconds round{0};
  // Where the sink's stream stands when a live round starts: its stored cursor, which a
  // round stores back after each chunk (not the destination's own position, which chunks
  // move). Unset: where the last round began.
  std::optional<EventId> stream_at;
  // A Predicate's text (src/core/predicate.h) limiting the copy beside the sink's own
  // tables[].where; empty: none. kInvalidArgument when it does not fit a table.
  std::string where;
  bool* unfinished = nullptr;  // set by a live round that stopped before the end
  // Each progress line, as it is stored for `pgfanout status`.
  std::function<void(const std::string&)> on_progress;
};

// Copies the existing rows of a sink's tenants into the sink (already Open()ed), as of one
// snapshot of the source, and leaves the sink's cursor where its stream must resume.
//
// What is copied, when `options.tables` is empty:
// - a sink without a cursor (new, or new with the state dir), or `options.replace`: every
//   table it maps;
// - a sink with a cursor: the tables it maps that were not there at its last backfill
//   (a table added to its config); none on the first run with this bookkeeping.
// - an interrupted backfill (kill -9) resumes: same tables, from each range's last chunk.
// A sink with `backfill: false` gets no copy unless `options.tables` names tables.
//
// Replace: rows of the sink's tenants that the snapshot does not have are gone from the
// destination when the copy ends (the copy makes the destination equal to the source).
//
// Consistency: the snapshot comes from a temporary slot's exported snapshot at LSN C.
// Rows are written as inserts with version C-1; the cursor of a new sink is set just
// before C, so the event log delivers every transaction committed from C on. A resumed
// copy takes a new snapshot C2 > C for the remaining chunks, and the cursor still goes to
// just before the first C: events between C and C2 are delivered again and, by the sinks'
// versioned upserts, change only rows older than them. A copy that replaces every table
// the sink maps moves its cursor to just before C too (it then holds all its rows as of C:
// the way out for a sink retention dropped). A table added to an existing sink keeps the
// sink's cursor; the Postgres sink's own position is rewound to it.
//
// A live copy (options.round) keeps the sink's cursor where its stream is: round i copies
// from its own snapshot C_i while the stream stands at P_i <= C_i, and the stream goes on
// from P_i after it. Every chunk equals the source at C_i, and the events after P_i are
// applied after it, versioned: what a chunk holds is never older than the stream, and no
// row the stream deleted after C_i is written back. A replace sweeps, at the end, rows
// older than C_1 (neither copied nor changed since). The copy's request
// (meta::Resnapshot) is erased with its progress.
//
// Progress is kept in the log's metadata after every chunk (resume), and shown as log lines
// and by `pgfanout status`. Returns, when it copied anything, the first snapshot's
// consistent point C: every row copied is at least as new as C.
Result<std::optional<Lsn>> BackfillSink(const Config& config, const SinkConfig& sink_config, Sink& sink,
                          EventLog& log, const BackfillOptions& options);

}  // namespace pgfanout
