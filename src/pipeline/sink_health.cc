#include "src/pipeline/sink_health.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>

#include "src/pipeline/retry_policy.h"

namespace pgfanout {
namespace {

constexpr auto kBackoffBase = std::chrono::milliseconds(200);
constexpr auto kBackoffCap = std::chrono::milliseconds(30'000);

}  // namespace

std::string SinkHealth::Encode(const Record& record) {
  int64_t retry_ms = record.retry_at ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                           record.retry_at->time_since_epoch())
                                           .count()
                                     : 0;
  return fmt::format("{}\t{}\t{}", record.stopped ? 1 : 0, retry_ms, record.last_error);
}

std::optional<SinkHealth::Record> SinkHealth::Decode(const std::string& text) {
  auto tab1 = text.find('\t');
  auto tab2 = tab1 == std::string::npos ? tab1 : text.find('\t', tab1 + 1);
  if (tab2 == std::string::npos) return std::nullopt;
  Record record;
  record.stopped = text.compare(0, tab1, "1") == 0;
  int64_t retry_ms = 0;
  auto digits = std::string_view(text).substr(tab1 + 1, tab2 - tab1 - 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), retry_ms);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  if (retry_ms > 0) {
    record.retry_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(retry_ms));
  }
  record.last_error = text.substr(tab2 + 1);
  return record;
}

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
  auto r = log_.PutMeta(Key(sink_id_), record.last_error.empty() ? "" : Encode(record));
  if (!r) spdlog::warn("sink {}: cannot record its state: {}", sink_id_, r.error().message);
  on_record_ = !record.last_error.empty();
}

}  // namespace pgfanout
