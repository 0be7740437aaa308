#pragma once

#include <optional>
#include <string>

#include "checkpoints/event_log.h"
#include "src/core/error.h"
#include "src/core/lineage.h"
#include "src/sinks/sink.h"

namespace pgfanout {

// What opening a sink at the cursor its event log holds found.
struct OpenedSink {
  std::optional<SinkCursor> stored;      // the cursor the log holds (nullopt: a new sink)
  std::optional<TargetPosition> theirs;  // the position its destination holds, if it keeps one
};

// Opens `sink` at the cursor `log` holds for it: the one way the runner and `pgfanout
// backfill` open a sink.
//
// A cursor without a token (a new sink, or one whose cursor only moved past events its
// filter skipped) says nothing of what the sink's first Write() will change: a crash after
// that Write() but before its cursor is stored would leave the JSONL sink's lines in the
// file, and the next Open() would keep them and append them again. So before the first
// Write(), the token of the destination as Open() found it (Sink::BaselineToken) is stored
// beside the cursor (meta::BaselineKey, synced), and every Open() of a cursor without a
// token is handed that baseline instead: lines written after it were never acknowledged,
// and go. Once the cursor carries a token of its own the baseline is not read again.
Result<OpenedSink> OpenSinkAtCursor(Sink& sink, EventLog& log, const std::string& sink_id,
                                    const Lineage& lineage);

}  // namespace pgfanout
