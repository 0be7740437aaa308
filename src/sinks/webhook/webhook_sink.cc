#include "src/sinks/webhook/webhook_sink.h"

namespace pgfanout {

Result<std::optional<SinkCursor>> WebhookSink::Open(const std::optional<SinkCursor>&) {
  return MakeError(ErrorKind::kInvalidArgument, "sink " + config_.id + ": webhook sinks are not built yet");
}

Result<std::string> WebhookSink::Write(std::span<const ChangeEvent>) {
  return MakeError(ErrorKind::kInvalidArgument, "sink " + config_.id + ": webhook sinks are not built yet");
}

}  // namespace pgfanout
