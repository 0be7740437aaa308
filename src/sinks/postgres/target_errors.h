#pragma once

#include <string_view>

#include "src/core/error.h"

namespace pgfanout {

// An error from the target database, re-kinded for the runner and prefixed with `context`
// (which names the sink and table):
//   lost connection, 08xxx, 57Pxx, 53300        -> kConnection (reconnect and retry)
//   40001, 40P01, 55P03, 57014, other transient -> kSink (retry with backoff)
//   data and definition errors: 21, 22, 23, 2B, 42, 44, 0A, 54 -> kMismatch (this sink
//   stops: retrying cannot help until a person fixes the target or the mapping)
Error TargetError(const Error& error, std::string_view context);

}  // namespace pgfanout
