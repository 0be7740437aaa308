#include "src/pipeline/retry_policy.h"

#include <algorithm>
#include <random>

namespace pgfanout {

Directive DecideRetry(ErrorKind kind, bool in_sink) {
  switch (kind) {
    case ErrorKind::kConnection:
    case ErrorKind::kSink:
    case ErrorKind::kBusy:
      return Directive::kRetry;
    case ErrorKind::kMismatch:
    case ErrorKind::kInvalidArgument:
      // A sink whose target disagrees with its cursor needs a person; the source case
      // (another cluster, a lost slot) must never be papered over.
      return in_sink ? Directive::kStopSink : Directive::kStopProcess;
    case ErrorKind::kStorage:
      // The event log or a cursor could not be written: nothing is safe any more.
      return in_sink ? Directive::kRetry : Directive::kStopProcess;
    case ErrorKind::kDecode:
    case ErrorKind::kProtocol:
    case ErrorKind::kNotFound:
      // Inside a sink these concern that sink's target only (failure isolation): the sink
      // stops and shows the error; the others and the slot go on.
      return in_sink ? Directive::kStopSink : Directive::kStopProcess;
    case ErrorKind::kCancelled:
      return Directive::kStopProcess;
  }
  return Directive::kStopProcess;
}

std::chrono::milliseconds Backoff(int attempt, std::chrono::milliseconds base,
                                  std::chrono::milliseconds cap) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const int shift = std::clamp(attempt, 0, 20);
  auto ceiling = std::min<int64_t>(cap.count(), base.count() << shift);
  std::uniform_int_distribution<int64_t> dist(ceiling / 2, std::max<int64_t>(ceiling, 1));
  return std::chrono::milliseconds(dist(rng));
}

}  // namespace pgfanout
