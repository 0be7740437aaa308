#include "src/pipeline/target_position.h"

#include <fmt/format.h>

#include "checkpoints/meta_records.h"

namespace pgfanout {

Result<PositionVerdict> JudgeTargetPosition(const TargetPosition& theirs,
                                            const std::optional<SinkCursor>& stored,
                                            const Lineage& ours, const EventLog& log) {
  auto distrust = [](std::string why) {
    return PositionVerdict{.trusted = false, .why_not = std::move(why)};
  };
  if (!theirs.lineage) {
    if (!stored) {
      return distrust(
          "it was written by a pgfanout that did not record which event log wrote it, and "
          "this state dir has no cursor for the sink");
    }
  } else if (theirs.lineage->LogId() != ours.LogId()) {
    const Lineage& l = *theirs.lineage;
    if (l.system_id != ours.system_id) {
      return distrust(fmt::format(
          "it was written for another source cluster (system identifier {}; this one is {})",
          l.system_id, ours.system_id));
    }
    if (l.slot != ours.slot) {
      return distrust(fmt::format("it was written from slot {}; this state dir reads slot {}",
                                  l.slot, ours.slot));
    }
    // Written by another state dir. Under source.confirm: sinks on both sides the slot
    // vouches for it: the slot was never confirmed past what this destination holds, so
    // every change after this position is still streamed to this log (a standby taking
    // over, a state dir lost or stale). Otherwise another log's position means nothing
    // here.
    if (l.SlotVouches() && ours.SlotVouches() && l.timeline != ours.timeline) {
      // The source failed over since: the position may belong to a history the promoted
      // node does not have (the timeline check guards only this state dir's own log).
      return distrust(fmt::format(
          "it was written by another state dir on timeline {} of the source, which is on "
          "timeline {} now",
          l.timeline, ours.timeline));
    }
    if (!l.SlotVouches() || !ours.SlotVouches()) {
      return distrust(fmt::format(
          "it was written by another event log (another state dir: log {}; this one is {}){}",
          l.LogId(), ours.LogId(),
          l.SlotVouches() || ours.SlotVouches()
              ? "; a position passes between state dirs only when both run source.confirm: "
                "sinks"
              : ""));
    }
  }
  // Resumed from the state dir's own cursor, the position only has to name this log.
  if (stored && !(stored->applied < theirs.applied)) return PositionVerdict{.trusted = true};
  PGF_TRY(auto trimmed, meta::Load(log, meta::TrimmedThroughKey()));
  if (trimmed && theirs.applied < trimmed->through) {
    return distrust(fmt::format(
        "the event log no longer holds the events after it (retention trimmed through {})",
        trimmed->through.ToString()));
  }
  return PositionVerdict{.trusted = true};
}

}  // namespace pgfanout
