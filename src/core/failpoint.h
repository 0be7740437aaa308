#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "src/core/error.h"

namespace pgfanout {

// Named failpoints for fault tests, compiled into test builds only (meson option
// `failpoints`: on by default when the tests are built and the build is not a release
// one; off in the Dockerfile and for `meson install` from a release build). In such a
// build they stay off unless the environment variable PGFANOUT_FAILPOINTS lists them, e.g.
//   PGFANOUT_FAILPOINTS="log.after_commit=kill@3,sink.mid_write=error"
// `kill` sends SIGKILL to the process itself (exactly like kill -9: no cleanup, no
// flush) on the Nth hit (default 1st); `abort` calls abort() (a crash with SIGABRT);
// `error` makes that one hit return an error instead.
// Hit() costs one predictable branch when no failpoint is configured, nothing at all in
// a build without them.
//
// Failpoints in use (kFailpoints; grep for FailpointHit to find them):
//   source.mid_stream              after a streamed chunk's changes were spilled
//   log.after_commit               after the event log synced, before feedback is sent
//   sink.mid_write                 a sink wrote part of a batch, not yet durable
//   sink.after_write               a sink made a batch durable, cursor not yet stored
//   backfill.after_chunk           a backfill chunk is in the sink and its progress stored
//   backfill.before_done           a backfill is complete and says so; progress not erased
//   signals.before_pump            signal-table requests are in the log, not yet handed on
inline constexpr std::string_view kFailpoints[] = {
    "source.mid_stream",    "log.after_commit",     "sink.mid_write",     "sink.after_write",
    "backfill.after_chunk", "backfill.before_done", "signals.before_pump"};

#ifdef PGFANOUT_WITH_FAILPOINTS
Result<void> FailpointHit(std::string_view name);
#else
inline Result<void> FailpointHit(std::string_view) { return boost::outcome_v2::success(); }
#endif

struct FailpointSpec {
  std::string name;
  std::string action;  // kill, abort or error
  int fire_on = 1;
};

// Parses a PGFANOUT_FAILPOINTS value strictly: every item `<name>=<action>[@<n>]`, a known
// name, a known action, n >= 1. Errors (kInvalidArgument) name the item.
Result<std::vector<FailpointSpec>> ParseFailpoints(std::string_view spec);

// What a command says about PGFANOUT_FAILPOINTS when it starts: "" when it is not set; a
// warning to log when it is (the process will fail on purpose; or, in a build without
// failpoints, that it is ignored); an error for a value that does not parse, which must
// stop the process rather than run without the faults a test asked for.
Result<std::string> CheckFailpoints();

}  // namespace pgfanout
