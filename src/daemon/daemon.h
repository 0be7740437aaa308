#pragma once

#include "src/config/config.h"

namespace pgfanout {

// `pgfanout run`: tails the slot into the event log and delivers it to every sink until
// SIGINT/SIGTERM (exit 0) or an error the retry policy says to stop on (exit 1, the
// error logged). Connection loss to the source is retried with backoff.
int RunDaemon(const Config& config);

}  // namespace pgfanout
