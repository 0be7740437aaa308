#include "src/daemon/retention.h"

#include <spdlog/spdlog.h>

#include <set>

#include "checkpoints/meta_records.h"

namespace pgfanout {

Result<void> Retention::Trim(const std::vector<SinkRunner*>& runners) {
  const bool drop = config_.lagging_sinks == LaggingSinkPolicy::kDrop;
  // Cursors hold events under `hold` only; a sink without a cursor yet (its first copy
  // runs or waits) holds what comes after its start under either policy: it is not
  // lagging, and the copy's stream resumes at a snapshot point the log has yet to reach.
  std::optional<EventId> min_cursor, min_hold;
  // A sink of some tenants that is caught up and waiting (Status::idle) has taken every
  // event of its tenants up to the log's last event as read here, before its status (an
  // event appended after is newer; one appended before woke it, which clears `idle`
  // first). Its stored cursor may be far older: it is not moved for events it never
  // reads, so it is not what holds events back.
  const std::optional<EventId> last = log_.LastDurableEvent();
  std::map<SinkRunner*, std::optional<EventId>> position;  // where each sink stands
  for (auto* r : runners) {
    auto st = r->status();
    if (st.idle && st.cursor && last && *st.cursor < *last) st.cursor = last;
    position[r] = st.cursor;
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
    position[r] = c;
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
  // Recorded first: a sink that had not taken every event through it knows events are
  // gone (it stops). The running sinks that had; a sink known only by its cursor (not
  // running now), whenever its cursor is behind.
  std::vector<SinkRunner*> lost;
  std::set<std::string> running;
  for (auto* r : runners) {
    running.insert(r->id());
    if (auto c = position[r]; c && *c < *through) {
      PGF_TRY(meta::Store(log_, meta::TrimmedPastKey(r->id()), meta::TrimMark{*through}));
      lost.push_back(r);
    }
  }
  PGF_TRY(auto cursors, log_.ListCursors());
  for (const auto& [id, cursor] : cursors) {
    if (!running.count(id) && cursor.applied < *through) {
      PGF_TRY(meta::Store(log_, meta::TrimmedPastKey(id), meta::TrimMark{*through}));
    }
  }
  PGF_TRY(meta::Store(log_, meta::TrimmedThroughKey(), meta::TrimMark{*through}));
  PGF_TRY(log_.Trim(*through));
  for (auto* r : lost) {
    spdlog::error(
        "sink {} was {} behind: retention trimmed events through {} that it had not "
        "taken (log.lagging_sinks: drop); it stops and needs a fresh snapshot",
        r->id(), position[r]->ToString(), through->ToString());
    r->Notify();
  }
  return boost::outcome_v2::success();
}

Result<void> Retention::MarkSinksTrimmedBefore() {
  // Before per-sink marks, one log-wide mark stopped every sink behind it; a sink that was
  // behind it then keeps that verdict.
  PGF_TRY(auto done, meta::Load(log_, meta::TrimMarksPerSinkKey()));
  if (done) return boost::outcome_v2::success();
  PGF_TRY(auto trimmed, meta::Load(log_, meta::TrimmedThroughKey()));
  if (trimmed) {
    PGF_TRY(auto cursors, log_.ListCursors());
    for (const auto& [id, cursor] : cursors) {
      if (cursor.applied < trimmed->through) {
        PGF_TRY(meta::Store(log_, meta::TrimmedPastKey(id), *trimmed));
      }
    }
  }
  return meta::Store(log_, meta::TrimMarksPerSinkKey(), meta::Flag{});
}

// Policy hold: says loudly, once a minute per sink, which sink keeps events past
// log.retain and how old its oldest undelivered event is.
Result<void> Retention::WarnLaggingSinks(const std::vector<SinkRunner*>& runners,
                                       int64_t cutoff_us,
                                       std::chrono::system_clock::time_point now) {
  for (auto* r : runners) {
    auto st = r->status();
    if (!st.cursor || st.idle) continue;
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
