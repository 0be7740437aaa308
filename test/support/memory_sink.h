#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "src/sinks/sink.h"

namespace pgfanout::testing {

// A sink that keeps every delivered event in memory, for pipeline tests.
//
// Write() appends the batch and returns, as its token, the number of events held (in
// decimal). It never rolls back: a test that wants failures wraps it in a FaultySink, whose
// failed writes never reach it. Every accessor may be called from any thread while a
// SinkRunner owns the sink (the runner's thread calls Open/Write/Stop).
class MemorySink final : public Sink {
 public:
  MemorySink() = default;

  Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                             const Lineage& lineage) override;
  Result<std::string> Write(std::span<const ChangeEvent> events) override;
  Result<void> BeginReplace(Tables tables) override;
  void Stop() override;

  // What Open() returns as the position the destination holds (default: none), as a sink
  // that keeps its own position would.
  void SetPosition(std::optional<TargetPosition> position);
  // The lineage each Open() was given, in call order.
  std::vector<Lineage> lineages() const;
  int replaces() const;  // BeginReplace() calls

  std::vector<ChangeEvent> events() const;
  std::vector<EventId> ids() const;
  // The cursor each Open() was given, in call order.
  std::vector<std::optional<SinkCursor>> opens() const;
  int stops() const;

  // Waits until the sink holds at least `count` events; false on timeout.
  bool WaitForEvents(size_t count, std::chrono::milliseconds timeout) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<ChangeEvent> events_;
  std::vector<std::optional<SinkCursor>> opens_;
  std::vector<Lineage> lineages_;
  std::optional<TargetPosition> position_;
  int replaces_ = 0;
  int stops_ = 0;
};

}  // namespace pgfanout::testing
