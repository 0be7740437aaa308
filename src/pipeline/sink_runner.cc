#include "src/pipeline/sink_runner.h"

#include <spdlog/spdlog.h>

#include "src/pipeline/retry_policy.h"

namespace pgfanout {
namespace {

constexpr auto kIdleWait = std::chrono::seconds(1);
constexpr auto kBackoffBase = std::chrono::milliseconds(200);
constexpr auto kBackoffCap = std::chrono::milliseconds(30'000);

}  // namespace

SinkRunner::SinkRunner(const SinkConfig& config, std::unique_ptr<Sink> sink, EventLog& log,
                       std::function<void(const Error&)> on_fatal)
    : config_(config),
      sink_(std::move(sink)),
      log_(log),
      router_(config_),
      on_fatal_(std::move(on_fatal)) {
  status_.sink_id = config_.id;
}

SinkRunner::~SinkRunner() { Stop(); }

void SinkRunner::Start() {
  thread_ = std::thread([this] { Run(); });
}

void SinkRunner::Notify() {
  {
    std::lock_guard lock(mu_);
    notified_ = true;
  }
  cv_.notify_one();
}

void SinkRunner::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (opened_) {
    sink_->Stop();
    opened_ = false;
  }
}

SinkRunner::Status SinkRunner::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

Result<void> SinkRunner::Open() {
  PGF_TRY(auto stored, log_.LoadCursor(config_.id));
  PGF_TRY(auto resume, sink_->Open(stored));
  opened_ = true;
  if (resume && (!stored || stored->applied < resume->applied)) {
    PGF_TRY(log_.StoreCursor(config_.id, *resume));
  }
  std::lock_guard lock(mu_);
  cursor_ = resume;
  status_.cursor = resume ? std::optional<EventId>(resume->applied) : std::nullopt;
  return boost::outcome_v2::success();
}

Result<bool> SinkRunner::Step() {
  const EventId after = cursor_ ? cursor_->applied : EventId{};
  PGF_TRY(auto events, log_.Read(after, config_.batch_size));
  if (events.empty()) return false;
  // Keep the accepted events in place: filtering by moving avoids copying rows.
  size_t kept = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (!router_.Accepts(events[i])) continue;
    if (kept != i) events[kept] = std::move(events[i]);
    ++kept;
  }
  const EventId last = events.back().id;
  SinkCursor next{.applied = last, .token = cursor_ ? cursor_->token : std::string()};
  if (kept > 0) {
    PGF_TRY(next.token, sink_->Write(std::span<const ChangeEvent>(events.data(), kept)));
  }
  PGF_TRY(log_.StoreCursor(config_.id, next));
  std::lock_guard lock(mu_);
  cursor_ = next;
  status_.cursor = last;
  status_.events_delivered += kept;
  status_.batches += kept > 0;
  status_.last_error.clear();
  return true;
}

void SinkRunner::Fail(const Error& error, int attempt) {
  const Directive d = DecideRetry(error.kind, /*in_sink=*/true);
  {
    std::lock_guard lock(mu_);
    status_.last_error = error.message;
    status_.stopped = d != Directive::kRetry;
  }
  if (d == Directive::kStopProcess) {
    spdlog::error("sink {}: {} [{}]; stopping pgfanout", config_.id, error.message,
                  ToString(error.kind));
    if (on_fatal_) on_fatal_(error);
    return;
  }
  if (d == Directive::kStopSink) {
    spdlog::error("sink {}: {} [{}]; this sink stops, the others go on", config_.id, error.message,
                  ToString(error.kind));
    return;
  }
  auto wait = Backoff(attempt, kBackoffBase, kBackoffCap);
  spdlog::warn("sink {}: {} [{}]; retry {} in {} ms", config_.id, error.message,
               ToString(error.kind), attempt + 1, wait.count());
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, wait, [this] { return stop_; });
}

void SinkRunner::Run() {
  int attempt = 0;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stop_ || status_.stopped) return;
    }
    Result<bool> step = opened_ ? Step() : [&]() -> Result<bool> {
      PGF_TRY(Open());
      return true;
    }();
    if (!step) {
      Fail(step.error(), attempt++);
      if (opened_) {
        sink_->Stop();  // reopen from the stored cursor: the sink rolls back what it must
        opened_ = false;
      }
      continue;
    }
    attempt = 0;
    if (!step.value()) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kIdleWait, [this] { return stop_ || notified_; });
      notified_ = false;
    }
  }
}

Result<void> SinkRunner::RunUntil(EventId target) {
  if (!opened_) PGF_TRY(Open());
  while (!cursor_ || cursor_->applied < target) {
    PGF_TRY(auto more, Step());
    if (!more) break;
  }
  return boost::outcome_v2::success();
}

}  // namespace pgfanout
