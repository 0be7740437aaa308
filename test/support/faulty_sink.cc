#include "test/support/faulty_sink.h"

namespace pgfanout::testing {

Result<std::optional<TargetPosition>> FaultySink::Open(const std::optional<SinkCursor>& stored,
                                                 const Lineage& lineage) {
  {
    std::lock_guard lock(mu_);
    if (open_calls_++ < faults_.fail_opens) return MakeError(faults_.open_error, kOpenMessage);
  }
  return inner_->Open(stored, lineage);
}

Result<std::string> FaultySink::Write(std::span<const ChangeEvent> events) {
  {
    std::lock_guard lock(mu_);
    ++write_calls_;
    if (failed_writes_ < faults_.fail_writes) {
      ++failed_writes_;
      return MakeError(faults_.write_error, kWriteMessage);
    }
  }
  return inner_->Write(events);
}

void FaultySink::Stop() { inner_->Stop(); }

int FaultySink::write_calls() const {
  std::lock_guard lock(mu_);
  return write_calls_;
}

int FaultySink::failed_writes() const {
  std::lock_guard lock(mu_);
  return failed_writes_;
}

int FaultySink::open_calls() const {
  std::lock_guard lock(mu_);
  return open_calls_;
}

}  // namespace pgfanout::testing
