#include "src/daemon/retention.h"

#include <spdlog/spdlog.h>

namespace pgfanout {

Result<void> Retention::Trim(const std::vector<SinkRunner*>& runners) {
  const bool drop = config_.lagging_sinks == LaggingSinkPolicy::kDrop;
  // Cursors hold events under `hold` only; a sink without a cursor yet (its first copy
  // runs or waits) holds what comes after its start under either policy: it is not
  // lagging, and the copy's stream resumes at a snapshot point the log has yet to reach.
  std::optional<EventId> min_cursor, min_hold;
  for (auto* r : runners) {
    auto st = r->status();
    if (!st.cursor && st.holds_after) {
      if (!min_hold || *st.holds_after < *min_hold) min_hold = st.holds_after;
      continue;
    }
    std::optional<EventId> c = st.cursor;
    if (!c) {
      PGF_TRY(auto stored, log_.LoadCursor(r->id()));
      if (!stored) return boost::outcome_v2::success();  // a sink that has not started yet
      c = stored->applied;
    }
    if (!min_cursor || *c < *min_cursor) min_cursor = c;
  }
  const auto now = std::chrono::system_clock::now();
  auto cutoff = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch() -
                                                                      config_.retain)
                    .count();
  if (!drop) PGF_TRY(WarnLaggingSinks(runners, cutoff, now));
  PGF_TRY(auto first, log_.FirstRetainedEvent());
  if (!first) return boost::outcome_v2::success();
  // Find the last event that is old enough and (policy hold) passed by every sink.
  std::optional<EventId> through;
  EventId after{first->commit_lsn, 0};
  if (first->ordinal == 0 && first->commit_lsn.value() > 0) {
    after = EventId{Lsn(first->commit_lsn.value() - 1), UINT32_MAX};
  }
  while (true) {
    PGF_TRY(auto events, log_.Read(after, 4096));
    bool done = events.empty();
    for (const auto& ev : events) {
      // Whole transactions only: the log then always starts at a transaction's first
      // event, so a replay from a retained commit LSN never gets half a transaction.
      bool held = (!drop && min_cursor && ev.id.commit_lsn >= min_cursor->commit_lsn) ||
                  (min_hold && *min_hold < ev.id);
      if (held || ev.commit_time_us >= cutoff) {
        done = true;
        break;
      }
      through = ev.id;
    }
    if (done) break;
    after = events.back().id;
  }
  if (!through) return boost::outcome_v2::success();
  // Recorded first: a sink whose cursor is behind it knows events are gone (it stops).
  PGF_TRY(log_.PutMeta(SinkRunner::kTrimmedThroughKey, through->ToString()));
  PGF_TRY(log_.Trim(*through));
  for (auto* r : runners) {
    auto c = r->status().cursor;
    if (c && *c < *through) {
      spdlog::error(
          "sink {} was {} behind: retention trimmed events through {} that it had not "
          "taken (log.lagging_sinks: drop); it stops and needs a fresh snapshot",
          r->id(), c->ToString(), through->ToString());
      r->Notify();
    }
  }
  return boost::outcome_v2::success();
}

// Policy hold: says loudly, once a minute per sink, which sink keeps events past
// log.retain and how old its oldest undelivered event is.
Result<void> Retention::WarnLaggingSinks(const std::vector<SinkRunner*>& runners,
                                       int64_t cutoff_us,
                                       std::chrono::system_clock::time_point now) {
  for (auto* r : runners) {
    auto st = r->status();
    if (!st.cursor) continue;
    PGF_TRY(auto next, log_.Read(*st.cursor, 1));
    if (next.empty() || next[0].commit_time_us >= cutoff_us) continue;
    auto& last = last_lag_warning_[r->id()];
    if (now - last < std::chrono::minutes(1)) continue;
    last = now;
    auto age = std::chrono::duration_cast<std::chrono::seconds>(
        now.time_since_epoch() - std::chrono::microseconds(next[0].commit_time_us));
    spdlog::warn(
        "sink {} is behind log.retain: its oldest undelivered event ({}) is {} s old{}. "
        "The event log keeps it (log.lagging_sinks: hold), so the state dir grows until "
        "the sink catches up",
        r->id(), next[0].id.ToString(), age.count(),
        st.last_error.empty() ? "" : "; last error: " + st.last_error);
  }
  return boost::outcome_v2::success();
}

}  // namespace pgfanout
