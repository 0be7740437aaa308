#include "src/pipeline/sink_runner.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "checkpoints/log_identity.h"
#include "checkpoints/meta_records.h"
#include "src/pipeline/retry_policy.h"
#include "src/pipeline/sink_open.h"
#include "src/pipeline/target_position.h"

namespace pgfanout {
namespace {

// Before the source has been identified (the lineage positions are written under), a
// runner looks again this often unless woken sooner.
constexpr auto kLineageWait = std::chrono::seconds(5);
// A resnapshot's next round runs when the stream has caught up, or after this long of
// batches behind: the copy moves on under a steady load too.
constexpr auto kRoundEvery = std::chrono::seconds(5);

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

#ifdef PGFANOUT_NEGATIVE_CONTROL
// The fault suite's negative controls (a separate test binary, never the product; see
// test/faults/meson.build), chosen by PGFANOUT_NEGATIVE_CONTROL: `apply_twice` writes every
// batch twice; `swap` delivers the first two transactions of a change-log sink's batch in
// the wrong order. The suite's checker must report each, for its property alone.
std::string_view NegativeControl() {
  static const std::string control = [] {
    const char* v = std::getenv("PGFANOUT_NEGATIVE_CONTROL");
    return std::string(v ? v : "confirm_early");
  }();
  return control;
}
#endif

}  // namespace

SinkRunner::SinkRunner(const SinkConfig& config, const std::vector<TableConfig>& tables,
                       std::unique_ptr<Sink> sink, EventLog& log,
                       std::function<void(const Error&)> on_fatal)
    : config_(config),
      sink_(std::move(sink)),
      log_(log),
      router_(config_, tables),
      on_fatal_(std::move(on_fatal)),
      health_(config_.id, log_),
      refills_(config_.id, log_) {
  status_.sink_id = config_.id;
  // A resnapshot asked before a restart goes on (shown at once; run from Open()).
  if (auto asked = meta::Load(log_, meta::ResnapshotKey(config_.id)); asked && asked.value()) {
    const auto& r = *asked.value();
    status_.resnapshot = Status::Resnapshot{.tables = r.tables,
                                            .replace = r.replace,
                                            .requested_at_ms = r.requested_at_ms,
                                            .where = r.where};
  }
  sink_->SetBackfillRequest(
      [this](const std::string& table) { return refills_.Request(table, writing_up_to_); });
}

SinkRunner::~SinkRunner() { Stop(); }

void SinkRunner::Start(DeliveryPool* pool) {
  if (!pool) {
    own_pool_ = std::make_unique<DeliveryPool>(1);
    pool = own_pool_.get();
  }
  pool_ = pool;
  last_busy_ = std::chrono::steady_clock::now();
  pool_->Add(this);
}

void SinkRunner::Notify() {
  {
    std::lock_guard lock(mu_);
    ++wakes_;
    status_.idle = false;  // before the wake: retention must not count it caught up
  }
  if (pool_) pool_->Wake(this);
}

void SinkRunner::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  if (pool_) pool_->Remove(this);
  if (opened_) Close();
  // After the last turn: the budget calls this runner back no more once it forgets it.
  if (connections_) connections_->Forget(*this);
  pool_ = nullptr;
  own_pool_.reset();
}

void SinkRunner::Close() {
  sink_->Stop();
  opened_ = false;
  permit_.Release();
}

void SinkRunner::PermitWanted() {
  // Not Notify(): this wake brings no event, and the turn it runs only gives the permit up.
  if (pool_) pool_->Wake(this);
}

SinkRunner::Status SinkRunner::status() const {
  Status out;
  {
    std::lock_guard lock(mu_);
    out = status_;
  }
  SinkHealth::Record shown = health_.shown();
  out.last_error = std::move(shown.last_error);
  out.stopped = shown.stopped;
  out.retry_at = shown.retry_at;
  return out;
}

Result<void> SinkRunner::Open(const Lineage& lineage) {
  PGF_TRY(auto known, log_.LoadCursor(config_.id));
  // Read before the destination is: a copy's snapshot is taken later, so its stream needs
  // nothing before this. Shown (for retention and the slot's hold) only once it is known
  // that the sink copies rather than resumes from its destination's position, which may
  // be older (until then the sink holds everything: slot_hold.h).
  const EventId copies_after = log_.LastDurableEvent().value_or(EventId{});
  PGF_TRY(auto opened, OpenSinkAtCursor(*sink_, log_, config_.id, lineage));
  opened_ = true;
  auto& stored = opened.stored;
  auto& theirs = opened.theirs;
  std::optional<SinkCursor> resume = stored;
  // A new sink's copy replaces whatever its destination holds of its tenants' rows.
  bool replace = !stored;
  if (theirs) {
    PGF_TRY(auto verdict, JudgeTargetPosition(*theirs, stored, lineage, log_));
    if (verdict.trusted) {
      replace = false;
      if (!stored || stored->applied < theirs->applied) {
        // The destination stores its position with its rows: when it is ahead, the stored
        // cursor merely missed the last acknowledgement.
        resume = SinkCursor{.applied = theirs->applied, .token = theirs->applied.ToString()};
        PGF_TRY(log_.StoreCursor(config_.id, *resume));
      }
    } else {
      replace = true;
      if (!told_untrusted_) {
        told_untrusted_ = true;
        spdlog::warn(
            "sink {}: not resuming from the position its destination holds ({}): {}. {}",
            config_.id, theirs->applied.ToString(), verdict.why_not,
            !backfill_ || !config_.backfill
                ? "The sink has no backfill (backfill: false), so it follows the log from "
                  "its own cursor; run pgfanout backfill --sink " + config_.id +
                      " to copy its rows again"
                : "Its tenants' rows are copied again from a snapshot, replacing what the "
                  "destination holds of them");
      }
    }
  }
  if (!known && !(resume && !replace)) {
    std::lock_guard lock(mu_);
    if (!status_.holds_after) status_.holds_after = copies_after;
  }
  if (backfill_ && Resnapshotting() && !resume) {
    // Its first copy replaces every row anyway (a state dir that lost the cursor).
    spdlog::warn(
        "sink {}: its resnapshot is dropped: the sink has no cursor, so all its rows "
        "are copied first",
        config_.id);
    PGF_TRY(meta::Erase(log_, meta::ResnapshotKey(config_.id)));
    std::lock_guard lock(mu_);
    status_.resnapshot.reset();
  }
  if (backfill_ && Resnapshotting()) {
    // The resnapshot goes on a round at a time; a copy this open needs waits for its end.
    // Its first round runs now, from the stored cursor (where the stream stood: rounds
    // store it back after their chunks), not from a destination's own position, which a
    // chunk written before a crash may have moved past the stream.
    copy_after_resnapshot_ = replace;
    PGF_TRY(RunResnapshotRound(known ? std::optional<EventId>(known->applied) : std::nullopt));
    PGF_TRY(resume, log_.LoadCursor(config_.id));
  } else if (backfill_) {
    PGF_TRY(auto copied, backfill_(
                             *sink_, [this] { return Stopping(); }, CopyAsk{.replace = replace}));
    if (copied) {
      PGF_TRY(resume, log_.LoadCursor(config_.id));
    }
  }
  {
    std::lock_guard lock(mu_);
    cursor_ = resume;
    status_.cursor = resume ? std::optional<EventId>(resume->applied) : std::nullopt;
    if (resume) status_.holds_after.reset();
  }
  if (Resnapshotting()) return boost::outcome_v2::success();
  return RunRefills();
}

Result<void> SinkRunner::RequestResnapshot(std::vector<std::string> tables, bool replace,
                                           std::string origin, std::string where) {
  if (replace && !where.empty()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "a copy limited by where cannot remove rows (those outside it are not "
                     "copied): ask without replace");
  }
  const SinkHealth::Record health = health_.shown();
  const std::string listed = fmt::format("{}", fmt::join(tables, ", "));
  {
    std::lock_guard lock(mu_);
    auto busy = [&](const std::string& why) { return MakeError(ErrorKind::kBusy, why); };
    if (!backfill_) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "sink " + config_.id + " cannot copy rows from the source");
    }
    if (status_.resnapshot) {
      return busy(fmt::format(
          "sink {} is already copying {} again{}", config_.id,
          fmt::join(status_.resnapshot->tables, ", "),
          status_.resnapshot->progress.empty() ? "" : " (" + status_.resnapshot->progress + ")"));
    }
    if (!config_.enabled) return busy("sink " + config_.id + " is paused");
    if (end_at_ || status_.finished) return busy("sink " + config_.id + " is being retired");
    if (health.stopped) {
      return busy("sink " + config_.id + " is stopped (see pgfanout status); restart pgfanout " +
                  "after fixing it, or run pgfanout backfill with the daemon stopped");
    }
    PGF_TRY(auto cursor, log_.LoadCursor(config_.id));
    PGF_TRY(auto copying, meta::Load(log_, meta::BackfillProgressKey(config_.id)));
    if (!cursor || copying || !status_.cursor) {
      return busy("sink " + config_.id +
                  " is still copying existing rows (its first copy, or a table it gained); "
                  "ask again when pgfanout status shows it streaming");
    }
    const meta::Resnapshot request{.tables = tables,
                                   .replace = replace,
                                   .requested_at_ms = NowMs(),
                                   .origin = origin,
                                   .where = where};
    PGF_TRY(meta::Store(log_, meta::ResnapshotKey(config_.id), request));
    status_.resnapshot = Status::Resnapshot{.tables = std::move(tables),
                                            .replace = replace,
                                            .requested_at_ms = request.requested_at_ms,
                                            .where = where};
  }
  // The where's literals may be a tenant's values: the log names its presence only.
  spdlog::info("sink {}: resnapshot of {} asked ({}){}{}", config_.id, listed, origin,
               where.empty() ? "" : ", limited by a where",
               replace ? "; rows the copy does not find are removed" : "");
  Notify();
  return boost::outcome_v2::success();
}

Result<void> SinkRunner::RunResnapshotRound(std::optional<EventId> stream_at) {
  std::optional<Status::Resnapshot> asked;
  {
    std::lock_guard lock(mu_);
    asked = status_.resnapshot;
  }
  if (!asked || !backfill_) return boost::outcome_v2::success();
  bool unfinished = false;
  CopyAsk ask{.tables = asked->tables,
              .replace = asked->replace,
              .live = true,
              .stream_at = stream_at,
              .where = asked->where,
              .unfinished = &unfinished,
              .on_progress = [this](const std::string& line) {
                std::lock_guard lock(mu_);
                if (status_.resnapshot) status_.resnapshot->progress = line;
              }};
  auto copied = backfill_(
      *sink_, [this] { return Stopping(); }, ask);
  last_round_end_ = std::chrono::steady_clock::now();
  if (!copied && copied.error().kind == ErrorKind::kInvalidArgument) {
    // The request no longer fits the config (a table removed since): it is dropped, and
    // the copy's progress with it, so the sink streams on.
    spdlog::error("sink {}: resnapshot of {} dropped: {}", config_.id,
                  fmt::join(asked->tables, ", "), copied.error().message);
    PGF_TRY(meta::Erase(log_, meta::BackfillProgressKey(config_.id)));
    PGF_TRY(meta::Erase(log_, meta::ResnapshotKey(config_.id)));
    std::lock_guard lock(mu_);
    status_.resnapshot.reset();
    status_.last_resnapshot = "dropped: " + copied.error().message;
    return boost::outcome_v2::success();
  }
  if (!copied) return copied.error();
  PGF_TRY(auto cursor, log_.LoadCursor(config_.id));
  {
    std::lock_guard lock(mu_);
    cursor_ = cursor;
    if (cursor) status_.cursor = cursor->applied;
    if (status_.resnapshot) ++status_.resnapshot->rounds;
    if (!unfinished) {
      status_.resnapshot.reset();
      status_.last_resnapshot = "done";
    }
  }
  if (unfinished) return boost::outcome_v2::success();
  spdlog::info("sink {}: resnapshot of {} done", config_.id, fmt::join(asked->tables, ", "));
  if (copy_after_resnapshot_) {
    const bool replace = *std::exchange(copy_after_resnapshot_, std::nullopt);
    PGF_TRY(auto more, backfill_(
                           *sink_, [this] { return Stopping(); }, CopyAsk{.replace = replace}));
    if (more) {
      PGF_TRY(auto reloaded, log_.LoadCursor(config_.id));
      std::lock_guard lock(mu_);
      cursor_ = reloaded;
      if (reloaded) status_.cursor = reloaded->applied;
    }
  }
  return boost::outcome_v2::success();
}

Result<void> SinkRunner::RunRefills() {
  if (!refills_.pending()) return boost::outcome_v2::success();
  PGF_TRY(auto tables, refills_.Waiting());
  if (tables.empty()) return boost::outcome_v2::success();
  if (!backfill_) {
    return MakeError(ErrorKind::kMismatch,
                     fmt::format("tables {} must be copied again from the source first (a "
                                 "column was added): run pgfanout run, or pgfanout backfill "
                                 "--sink {} --table T",
                                 fmt::join(tables, ", "), config_.id));
  }
  PGF_TRY(auto copied_at, backfill_(
                              *sink_, [this] { return Stopping(); }, CopyAsk{.tables = tables}));
  PGF_TRY(refills_.Done(tables, copied_at));
  PGF_TRY(auto cursor, log_.LoadCursor(config_.id));
  std::lock_guard lock(mu_);
  cursor_ = cursor;
  return boost::outcome_v2::success();
}

Result<void> SinkRunner::CheckNotTrimmedPast(const EventId& cursor) const {
  // Retention records, for a sink that had not taken every event it trimmed, the last one:
  // the sink stops rather than skip them. (Not the log-wide mark: a caught-up sink of some
  // tenants keeps an old cursor.)
  PGF_TRY(auto trimmed, meta::Load(log_, meta::TrimmedPastKey(config_.id)));
  if (!trimmed || !(cursor < trimmed->through)) return boost::outcome_v2::success();
  const EventId* through = &trimmed->through;
  return MakeError(ErrorKind::kMismatch,
                   fmt::format("fell behind the event log's retention: events after {} through {} "
                               "were trimmed before this sink took them (log.lagging_sinks: "
                               "drop). It needs a fresh snapshot; its cursor stays where it was",
                               cursor.ToString(), through->ToString()));
}

void SinkRunner::EndAt(EventId end) {
  {
    std::lock_guard lock(mu_);
    end_at_ = end;
  }
  Notify();
}

Result<bool> SinkRunner::Step() {
  bool round_waits = false;  // for a backfill slot: the admission wakes the runner
  if (Resnapshotting()) {
    // The copy asked by `pgfanout resnapshot`, a round between batches: the stream goes on.
    if (stream_caught_up_ || std::chrono::steady_clock::now() - last_round_end_ >= kRoundEvery) {
      auto round =
          RunResnapshotRound(cursor_ ? std::optional<EventId>(cursor_->applied) : std::nullopt);
      if (!round && round.error().kind != ErrorKind::kBusy) return round.error();
      // kBusy: every backfill slot is taken; the admission wakes this runner when one is
      // kept for it, and the stream goes on meanwhile.
      if (!round) {
        round_waits = true;
        std::lock_guard lock(mu_);
        if (status_.resnapshot) status_.resnapshot->progress = round.error().message;
      }
    }
  } else {
    PGF_TRY(RunRefills());
  }
  PGF_TRY(const bool more, StepBatch());
  stream_caught_up_ = !more;
  // Caught up with a round to run: another turn at once, unless the round waits for a
  // slot (then it goes idle until woken, not round after refused round).
  return more || (Resnapshotting() && !round_waits);
}

Result<bool> SinkRunner::StepBatch() {
  const EventId after = cursor_ ? cursor_->applied : EventId{};
  std::optional<EventId> end;
  {
    std::lock_guard lock(mu_);
    end = end_at_;
  }
  auto finish = [this] {
    std::lock_guard lock(mu_);
    status_.finished = true;
    return false;
  };
  if (end && !(after < *end)) return finish();
  if (cursor_) PGF_TRY(CheckNotTrimmedPast(after));
  // Events of other tables (and, for a "*" sink reading the whole log, of other tenants)
  // are passed over undecoded.
  // A batch is bounded in bytes too (batch_bytes).
  const EventLog::ReadLimits limits{
      .max_events = config_.batch_size,
      .max_bytes = std::min(config_.batch_bytes, batch_bytes_cap_),
      .max_scanned = std::max<size_t>(config_.batch_size * 64, 65536)};
  auto may_accept = [this](const EventLog::EventPeek& peek) { return router_.MayAccept(peek); };
  // A read that reaches this has taken everything there was when the turn began; what is
  // appended later wakes the runner again (a wake during the turn runs it once more).
  const std::optional<EventId> last_before = log_.LastDurableEvent();
  // A sink of some tenants reads their buckets of the log's tenant index; a sink of every
  // tenant, the whole log.
  PGF_TRY(auto read, config_.AllTenants()
                         ? log_.ReadFiltered(after, limits, may_accept)
                         : log_.ReadTenants(after, config_.tenants, limits, may_accept));
  if (!read.scanned_through) {
    // Nothing left for it: with an end the log has reached, it took all it ever will.
    if (end && last_before && !(*last_before < *end)) return finish();
    return false;
  }
  auto& events = read.events;
  bool past_end = false;
  if (end && *end < *read.scanned_through) {
    // Never an event after its end: the batch stops there, and so does its cursor.
    std::erase_if(events, [&](const ChangeEvent& ev) { return *end < ev.id; });
    read.scanned_through = *end;
    past_end = true;
  }
  // Keep the accepted events in place: filtering by moving avoids copying rows.
  size_t kept = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (!router_.Route(events[i])) continue;
    PGF_TRY(const bool in_where, router_.ApplyWhere(events[i]));
    if (!in_where) continue;
    if (kept != i) events[kept] = std::move(events[i]);
    ++kept;
  }
  const EventId last = *read.scanned_through;
  PGF_TRY(kept, CompleteMovedRows(events, kept));
  SinkCursor next{.applied = last, .token = cursor_ ? cursor_->token : std::string()};
  if (kept > 0) {
    writing_up_to_ = events[kept - 1].id.commit_lsn;
    const auto started = std::chrono::steady_clock::now();
    const std::span<const ChangeEvent> batch(events.data(), kept);
#ifdef PGFANOUT_NEGATIVE_CONTROL
    NegativeControlBeforeWrite(events, kept);
#endif
    PGF_TRY(next.token, sink_->Write(batch));
#ifdef PGFANOUT_NEGATIVE_CONTROL
    if (NegativeControl() == "apply_twice") {
      PGF_TRY(next.token, sink_->Write(batch));
    }
#endif
    CountBatch(batch, std::chrono::steady_clock::now() - started);
  }
  PGF_TRY(log_.StoreCursor(config_.id, next));
  std::lock_guard lock(mu_);
  cursor_ = next;
  status_.cursor = last;
  status_.holds_after.reset();
  status_.events_delivered += kept;
  status_.batches += kept > 0;
  if (past_end) {
    status_.finished = true;
    return false;
  }
  // A copy the batch asked for (Refills::Request) runs in the next turn, not when the sink is
  // next woken: its rows lack a new column's values until then.
  return refills_.pending() || !last_before || last < *last_before;
}

#ifdef PGFANOUT_NEGATIVE_CONTROL
void SinkRunner::NegativeControlBeforeWrite(std::vector<ChangeEvent>& events, size_t kept) const {
  const bool change_log = std::holds_alternative<JsonlSinkOptions>(config_.options);
  if (NegativeControl() != "swap" || !change_log) return;
  // [first tx][second tx][rest] -> [second tx][first tx][rest]
  size_t second = 0;
  while (second < kept && events[second].id.commit_lsn == events[0].id.commit_lsn) ++second;
  if (second == kept) return;
  size_t third = second;
  while (third < kept && events[third].id.commit_lsn == events[second].id.commit_lsn) ++third;
  std::rotate(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(second),
              events.begin() + static_cast<std::ptrdiff_t>(third));
}
#endif

Result<size_t> SinkRunner::CompleteMovedRows(std::vector<ChangeEvent>& events, size_t kept) {
  if (!fetcher_) return kept;
  std::vector<ChangeEvent*> need;
  // A key change needs the source only where the row may have moved in from a tenant
  // this sink does not serve (its target never had the value); a "*" sink had the row,
  // and its change log keeps the update as of its commit (values left out, named).
  const bool all_tenants = config_.AllTenants();
  for (size_t i = 0; i < kept; ++i) {
    if (all_tenants && events[i].op == Op::kUpdate) continue;
    if (NeedsSourceRow(events[i])) need.push_back(&events[i]);
  }
  if (need.empty()) return kept;
  PGF_TRY(auto found, fetcher_->Fill(need));
  // An insert whose row is gone is dropped; an update stays as it came (row_fetcher.h).
  std::vector<bool> drop(kept, false);
  for (size_t j = 0; j < need.size(); ++j) {
    if (!found[j] && need[j]->op == Op::kInsert) {
      drop[static_cast<size_t>(need[j] - events.data())] = true;
    }
  }
  size_t out = 0;
  for (size_t i = 0; i < kept; ++i) {
    if (drop[i]) continue;
    if (out != i) events[out] = std::move(events[i]);
    ++out;
  }
  if (out < kept) {
    spdlog::debug(
        "sink {}: {} moved-in row(s) no longer on the source at their key; a later "
        "event settles them",
        config_.id, kept - out);
  }
  return out;
}

void SinkRunner::SetMetrics(MetricsRegistry& metrics, bool per_sink) {
  const Labels sink = per_sink ? Labels{{"sink", config_.id}} : Labels{};
  metrics_.registry = &metrics;
  metrics_.per_sink = per_sink;
  metrics_.delivered =
      &metrics.CounterOf("sink_events_delivered_total", "Events a sink has made durable", sink);
  metrics_.batches =
      &metrics.CounterOf("sink_batches_total", "Batches a sink has made durable", sink);
  metrics_.batch_events =
      &metrics.HistogramOf("sink_batch_events", "Events per batch written", SizeBuckets(), sink);
  metrics_.apply_seconds = &metrics.HistogramOf(
      "sink_apply_seconds", "Time a sink's Write() took to make a batch durable", LatencyBuckets(),
      sink);
  metrics_.delivery_seconds = &metrics.HistogramOf(
      "sink_delivery_seconds",
      "From the source commit of a batch's last event to the batch being durable in the sink",
      LatencyBuckets(), sink);
  if (!per_sink) {
    health_.SetMetrics(&metrics, per_sink, nullptr);
    return;
  }
  metrics_.up =
      &metrics.GaugeOf("sink_up", "1 while the sink delivers, 0 while it fails or stopped", sink);
  metrics_.up->Set(1);
  health_.SetMetrics(&metrics, per_sink, metrics_.up);
  if (!config_.AllTenants()) {
    for (const auto& t : config_.tenants) {
      metrics_.per_tenant[t] =
          &metrics.CounterOf("sink_tenant_events_delivered_total",
                             "Events a sink with a tenant list has made durable, per tenant",
                             {{"sink", config_.id}, {"tenant", t}});
    }
  }
}

void SinkRunner::CountBatch(std::span<const ChangeEvent> events,
                            std::chrono::steady_clock::duration apply) {
  if (!metrics_.registry) return;
  metrics_.delivered->Add(events.size());
  metrics_.batches->Add();
  metrics_.batch_events->Observe(static_cast<double>(events.size()));
  metrics_.apply_seconds->Observe(std::chrono::duration<double>(apply).count());
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  metrics_.delivery_seconds->Observe(
      std::max<double>(0, static_cast<double>(now_us - events.back().commit_time_us) / 1e6));
  if (metrics_.up) metrics_.up->Set(1);
  if (metrics_.per_tenant.empty()) return;
  for (const auto& e : events) {
    if (!e.tenant) continue;
    if (auto it = metrics_.per_tenant.find(*e.tenant); it != metrics_.per_tenant.end()) {
      it->second->Add();
    }
  }
}

TurnResult SinkRunner::Turn() {
  const auto now = std::chrono::steady_clock::now();
  uint64_t wakes_at_start = 0;
  {
    std::lock_guard lock(mu_);
    if (stop_) return TurnResult::Done();
    status_.idle = false;
    wakes_at_start = wakes_;
  }
  {
    std::lock_guard lock(mu_);
    if (status_.finished) return TurnResult::Done();
  }
  if (gate_ && !gate_->load()) {
    // Not the leader: nothing is delivered, not even the batch that would have come next.
    // Whoever opens the gate wakes every runner.
    if (opened_) Close();
    std::lock_guard lock(mu_);
    status_.waiting_for = "the slot (another pgfanout holds it: this one is a standby)";
    waiting_ = true;
    return TurnResult::Idle();
  }
  if (!config_.enabled) {
    // Paused: it shows where it stands, and waits for a definition that resumes it (or,
    // given an end, is finished: it delivers nothing more).
    if (opened_) Close();
    auto stored = log_.LoadCursor(config_.id);
    std::lock_guard lock(mu_);
    status_.paused = true;
    status_.finished = end_at_.has_value();
    if (stored && stored.value()) status_.cursor = stored.value()->applied;
    return TurnResult::Idle();
  }
  const uint64_t wakes_before = std::exchange(wakes_seen_, wakes_at_start);
  if (permit_.Busy()) {
    // Idle, and another sink waits for a target connection: give it up. Unless an event
    // came too, that is all this turn does.
    Close();
    if (wakes_at_start == wakes_before) return TurnResult::Idle();
  }
  const bool reading = opened_;
  Result<bool> step = [&]() -> Result<bool> {
    if (reading) return Step();
    PGF_TRY(auto lineage, LoadLineage(log_, slot_vouches_));
    if (!lineage) return false;  // the source is not identified yet: asked again shortly
    if (connections_ && !permit_ && sink_->HoldsConnection()) {
      PGF_TRY(permit_, connections_->TryAcquire(*this));
    }
    PGF_TRY(Open(*lineage));
    last_busy_ = now;
    return true;
  }();
  if (waiting_ && (step || step.error().kind != ErrorKind::kBusy)) {
    std::lock_guard lock(mu_);
    status_.waiting_for.clear();
    waiting_ = false;
  }
  if (!step) {
    if (Stopping()) return TurnResult::Done();  // e.g. a backfill given up for the shutdown
    if (opened_) Close();  // reopen from the stored cursor: the sink rolls back what it must
    permit_.Release();     // (a permit taken for an Open() that failed)
    if (step.error().kind == ErrorKind::kBusy) {
      // It waits for a target connection or its copy for a backfill slot; whoever frees
      // one wakes it. Not a failure.
      std::lock_guard lock(mu_);
      status_.waiting_for = step.error().message;
      waiting_ = true;
      return TurnResult::Idle();
    }
    const SinkHealth::Verdict verdict = health_.Fail(step.error());
    if (verdict.stop_process && on_fatal_) on_fatal_(step.error());
    if (!verdict.retry_in) return TurnResult::Done();
    return TurnResult::RetryAt(std::chrono::steady_clock::now() + *verdict.retry_in);
  }
  // A step that read (and stored) clears the error; a reopen alone does not: a sink whose
  // target accepts connections but fails every write must back off further each time.
  if (reading) health_.Succeeded();
  // Not identified yet: whoever records the source wakes every runner (the daemon, after
  // PrepareSource); the timer only bounds a wake that never comes.
  if (!opened_) return TurnResult::Idle(now + kLineageWait);
  if (step.value()) {
    last_busy_ = now;
    // Others wait for a target connection and this sink had its share: it queues behind
    // them (its next turn asks for a permit again).
    if (permit_.ShouldYield(now)) Close();
    return TurnResult::More();
  }
  // Caught up. Events appended from now on wake it (a wake during this turn runs it again).
  {
    std::lock_guard lock(mu_);
    // Not when woken meanwhile: that event may be past what this turn read.
    status_.idle = !config_.AllTenants() && wakes_ == wakes_at_start;
  }
  if (permit_.Idle()) {
    Close();  // another sink waits for a target connection
    return TurnResult::Idle();
  }
  if (idle_close_.count() == 0) return TurnResult::Idle();
  if (now - last_busy_ >= idle_close_) {
    spdlog::debug("sink {}: idle for {} s, closing it until it has events", config_.id,
                  std::chrono::duration_cast<std::chrono::seconds>(now - last_busy_).count());
    Close();
    return TurnResult::Idle();
  }
  return TurnResult::Idle(last_busy_ + idle_close_);
}

Result<void> SinkRunner::RunUntil(EventId target) {
  if (!opened_) {
    PGF_TRY(auto lineage, LoadLineage(log_, slot_vouches_));
    if (!lineage) {
      return MakeError(ErrorKind::kMismatch, "the state dir has not recorded its source yet");
    }
    PGF_TRY(Open(*lineage));
  }
  while (!cursor_ || cursor_->applied < target) {
    PGF_TRY(auto more, Step());
    if (!more) break;
  }
  return boost::outcome_v2::success();
}

}  // namespace pgfanout
