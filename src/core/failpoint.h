#pragma once

#include <string_view>

#include "src/core/error.h"

namespace pgfanout {

// Named failpoints for fault tests. Off unless the environment variable
// PGFANOUT_FAILPOINTS lists them, e.g.
//   PGFANOUT_FAILPOINTS="log.after_commit=kill@3,sink.mid_write=error"
// `kill` sends SIGKILL to the process itself (exactly like kill -9: no cleanup, no
// flush) on the Nth hit (default 1st); `abort` calls abort() (a crash with SIGABRT);
// `error` makes that one hit return an error instead.
// Hit() costs one predictable branch when no failpoint is configured.
//
// Failpoints in use (grep for FailpointHit to find them):
//   source.mid_stream              after a streamed chunk's changes were spilled
//   log.after_commit               after the event log synced, before feedback is sent
//   sink.mid_write                 a sink wrote part of a batch, not yet durable
//   sink.after_write               a sink made a batch durable, cursor not yet stored
//   backfill.after_chunk           a backfill chunk is in the sink and its progress stored
Result<void> FailpointHit(std::string_view name);

}  // namespace pgfanout
