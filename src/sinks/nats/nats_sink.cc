#include "src/sinks/nats/nats_sink.h"

namespace pgfanout {

Result<std::optional<SinkCursor>> NatsSink::Open(const std::optional<SinkCursor>&) {
  return MakeError(ErrorKind::kInvalidArgument, "sink " + config_.id + ": nats sinks are not built yet");
}

Result<std::string> NatsSink::Write(std::span<const ChangeEvent>) {
  return MakeError(ErrorKind::kInvalidArgument, "sink " + config_.id + ": nats sinks are not built yet");
}

}  // namespace pgfanout
