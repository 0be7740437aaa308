#pragma once

#include <span>
#include <string>
#include <vector>

#include "src/sinks/sink.h"

namespace pgfanout {

// Publishes events to NATS JetStream (see README.md).
// SKELETON: being written; Open() refuses until the implementation lands.
class NatsSink final : public Sink {
 public:
  NatsSink(SinkConfig config, std::vector<TableConfig> tables)
      : config_(std::move(config)), tables_(std::move(tables)) {}

  Result<std::optional<SinkCursor>> Open(const std::optional<SinkCursor>& stored) override;
  Result<std::string> Write(std::span<const ChangeEvent> events) override;
  void Stop() override {}

 private:
  SinkConfig config_;
  std::vector<TableConfig> tables_;
};

}  // namespace pgfanout
