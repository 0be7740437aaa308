#include "src/pipeline/sink_health.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "checkpoints/meta_records.h"
#include "src/pipeline/retry_policy.h"

namespace pgfanout {
namespace {

constexpr auto kBackoffBase = std::chrono::milliseconds(200);
constexpr auto kBackoffCap = std::chrono::milliseconds(30'000);

}  // namespace

SinkHealth::Verdict SinkHealth::Fail(const Error& error) {
  const Directive d = DecideRetry(error.kind, /*in_sink=*/true);
  const auto wait = Backoff(attempt_++, kBackoffBase, kBackoffCap);
  Record record{.last_error = error.message, .stopped = d != Directive::kRetry};
  if (d == Directive::kRetry) record.retry_at = std::chrono::system_clock::now() + wait;
  {
    std::lock_guard lock(mu_);
    shown_ = record;
  }
  if (d != Directive::kStopProcess) Store(record);
  if (registry_) {
    if (up_) up_->Set(0);
    Labels labels = {{"kind", ToString(error.kind)}};
    if (per_sink_) labels.insert(labels.begin(), {"sink", sink_id_});
    registry_->CounterOf("sink_errors_total", "Errors a sink hit, by kind", labels).Add();
  }
  switch (d) {
    case Directive::kStopProcess:
      spdlog::error("sink {}: {} [{}]; stopping pgfanout", sink_id_, error.message,
                    ToString(error.kind));
      return Verdict{.retry_in = std::nullopt, .stop_process = true};
    case Directive::kStopSink:
      spdlog::error("sink {}: {} [{}]; this sink stops, the others go on", sink_id_, error.message,
                    ToString(error.kind));
      return Verdict{};
    case Directive::kRetry:
      break;
  }
  spdlog::warn("sink {}: {} [{}]; retry {} in {} ms", sink_id_, error.message, ToString(error.kind),
               attempt_, wait.count());
  return Verdict{.retry_in = wait};
}

void SinkHealth::Succeeded() {
  attempt_ = 0;
  {
    std::lock_guard lock(mu_);
    shown_.last_error.clear();
    shown_.retry_at.reset();
  }
  if (on_record_) Store({});
}

void SinkHealth::Store(const Record& record) {
  const auto key = meta::SinkStateKey(sink_id_);
  auto r = record.last_error.empty()
               ? meta::Erase(log_, key)
               : meta::Store(
                     log_, key,
                     meta::SinkState{
                         .stopped = record.stopped,
                         .retry_at_ms = record.retry_at
                                            ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  record.retry_at->time_since_epoch())
                                                  .count()
                                            : 0,
                         .message = record.last_error});
  if (!r) spdlog::warn("sink {}: cannot record its state: {}", sink_id_, r.error().message);
  on_record_ = !record.last_error.empty();
}

}  // namespace pgfanout
