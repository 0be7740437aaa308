#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "src/sinks/sink.h"

namespace pgfanout::testing {

// Wraps a sink and fails on purpose, to test what the pipeline does with sink errors.
//
// A failed call never reaches the wrapped sink, so it models a sink that applied nothing.
// Calls are passed through otherwise. The counters may be read from any thread while a
// SinkRunner owns the sink.
class FaultySink final : public Sink {
 public:
  struct Faults {
    int fail_writes = 0;  // the first N Write() calls fail (INT_MAX: every one)
    ErrorKind write_error = ErrorKind::kSink;
    int fail_opens = 0;  // the first N Open() calls fail
    ErrorKind open_error = ErrorKind::kSink;
  };

  FaultySink(Faults faults, std::unique_ptr<Sink> inner)
      : faults_(faults), inner_(std::move(inner)) {}

  Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                             const Lineage& lineage) override;
  Result<std::string> Write(std::span<const ChangeEvent> events) override;
  std::string BaselineToken() const override { return inner_->BaselineToken(); }
  void Stop() override;

  int write_calls() const;
  int failed_writes() const;
  int open_calls() const;

  // The message of every error this sink returns, so tests can look for it in status.
  static constexpr const char* kWriteMessage = "injected write failure";
  static constexpr const char* kOpenMessage = "injected open failure";

 private:
  const Faults faults_;
  std::unique_ptr<Sink> inner_;
  mutable std::mutex mu_;
  int write_calls_ = 0;
  int failed_writes_ = 0;
  int open_calls_ = 0;
};

}  // namespace pgfanout::testing
