#pragma once

#include <optional>
#include <string>

#include "checkpoints/event_log.h"
#include "src/core/error.h"
#include "src/core/lineage.h"
#include "src/sinks/sink.h"

namespace pgfanout {

// Whether a position a sink's destination holds (Sink::Open) may be resumed from.
struct PositionVerdict {
  bool trusted = false;
  std::string why_not;  // for the log line, when not trusted
};

// The rule (README, "Positions and their lineage"): a destination's position is trusted
// only when the event log the sink runs from (`ours`, `log`) can vouch for it:
// - it names that log (same log id; the log itself is bound to one cluster and slot, and
//   checks the timeline on every connect), or, under source.confirm: sinks, it names the
//   same cluster, slot and timeline and was written under that mode too
//   (Lineage::SlotVouches: the slot was never confirmed past it, so every change after it
//   is still streamed), and
// - the log still holds the events after it: retention has not trimmed past it
//   (log.trimmed_through); checked only when the sink would resume from it (the state dir
//   has no cursor for the sink, or one behind it).
// A position written before positions named their log is trusted only when this state dir
// knows the sink (`stored`): the old rule, under which it was written.
//
// Anything else (a new state dir, another slot, another cluster, a position behind what
// was trimmed) means the destination holds rows this log cannot account for: the sink's
// rows are copied again from a snapshot (a copy that replaces them) rather than resumed.
Result<PositionVerdict> JudgeTargetPosition(const TargetPosition& theirs,
                                            const std::optional<SinkCursor>& stored,
                                            const Lineage& ours, const EventLog& log);

}  // namespace pgfanout
