#include "src/sinks/clickhouse/clickhouse_sink.h"

namespace pgfanout {

Result<std::optional<SinkCursor>> ClickHouseSink::Open(const std::optional<SinkCursor>&) {
  return MakeError(ErrorKind::kInvalidArgument, "sink " + config_.id + ": clickhouse sinks are not built yet");
}

Result<std::string> ClickHouseSink::Write(std::span<const ChangeEvent>) {
  return MakeError(ErrorKind::kInvalidArgument, "sink " + config_.id + ": clickhouse sinks are not built yet");
}

}  // namespace pgfanout
