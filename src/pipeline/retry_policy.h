#pragma once

#include <chrono>

#include "src/core/error.h"

namespace pgfanout {

enum class Directive {
  kRetry,        // transient: try again after a backoff
  kStopSink,     // this sink cannot go on until a person acts; the others continue
  kStopProcess,  // the daemon's own state is at risk: exit non-zero with the error
};

// The one place that decides what an error means for the component that hit it.
// `in_sink` says whether a sink's Write/Open failed (else the source or the log).
Directive DecideRetry(ErrorKind kind, bool in_sink);

// Exponential backoff with full jitter: attempt 0 -> up to `base`, doubling to `cap`.
std::chrono::milliseconds Backoff(int attempt, std::chrono::milliseconds base,
                                  std::chrono::milliseconds cap);

}  // namespace pgfanout
