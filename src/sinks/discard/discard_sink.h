#pragma once

#include <span>
#include <string>

#include "src/sinks/sink.h"

namespace pgfanout {

// Takes every batch and keeps nothing (`type: discard`): the pipeline's own cost without a
// destination's, for benchmarks and for trying a config. Its cursor token counts the
// events it was given, so `status` shows it moving.
class DiscardSink final : public Sink {
 public:
  Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                             const Lineage& lineage) override;
  Result<std::string> Write(std::span<const ChangeEvent> events) override;
  bool HoldsConnection() const override { return false; }
  void Stop() override {}

 private:
  uint64_t events_ = 0;
};

}  // namespace pgfanout
