#include "src/sinks/sink.h"

#include "src/sinks/jsonl/jsonl_sink.h"

namespace pgfanout {

Result<std::unique_ptr<Sink>> MakeSink(const SinkConfig& config,
                                       const std::vector<TableConfig>& tables) {
  (void)tables;
  if (config.type == "jsonl") return std::unique_ptr<Sink>(new JsonlSink(config.path));
  return MakeError(ErrorKind::kInvalidArgument,
                   "sink " + config.id + ": unknown type '" + config.type + "'");
}

}  // namespace pgfanout
