#pragma once

#include <memory>
#include <vector>

#include "src/config/config.h"
#include "src/core/error.h"
#include "src/sinks/sink.h"

namespace pgfanout {

// Builds the sink a config entry describes, of the kind its options are; `tables` are the
// tracked tables (tenant columns, keys). The one place that knows every sink kind: the
// pipeline sees only the Sink interface. Errors: kInvalidArgument for a config the sink
// cannot use.
Result<std::unique_ptr<Sink>> MakeSink(const SinkConfig& config,
                                       const std::vector<TableConfig>& tables);

}  // namespace pgfanout
