#include "src/pipeline/backfill_admission.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "src/pipeline/sink_runner.h"

namespace pgfanout {

Result<std::shared_ptr<void>> BackfillAdmission::TryAdmit(SinkRunner& runner) {
  std::unique_lock lock(mu_);
  auto slot = [this] { return std::shared_ptr<void>(nullptr, [this](void*) { Release(); }); };
  if (kept_for_.erase(&runner) > 0) return slot();
  if (free_ > 0 && waiting_.empty()) {
    --free_;
    return slot();
  }
  if (std::find(waiting_.begin(), waiting_.end(), &runner) == waiting_.end()) {
    waiting_.push_back(&runner);
    spdlog::info("sink {}: waiting for a backfill slot (backfill_concurrency; {} ahead)",
                 runner.id(), waiting_.size() - 1 + kept_for_.size());
  }
  return MakeError(ErrorKind::kBusy, "waiting for a backfill slot (backfill_concurrency)");
}

void BackfillAdmission::Forget(SinkRunner& runner) {
  std::unique_lock lock(mu_);
  std::erase(waiting_, &runner);
  if (kept_for_.erase(&runner) > 0) {
    ++free_;
    HandOn(lock);
  }
}

size_t BackfillAdmission::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

void BackfillAdmission::Release() {
  std::unique_lock lock(mu_);
  ++free_;
  HandOn(lock);
}

void BackfillAdmission::HandOn(std::unique_lock<std::mutex>& lock) {
  if (free_ == 0 || waiting_.empty()) return;
  SinkRunner* next = waiting_.front();
  waiting_.pop_front();
  --free_;
  kept_for_.insert(next);
  // Under the lock: a runner leaving (Forget) waits for it, so `next` is still there.
  (void)lock;
  next->Notify();
}

}  // namespace pgfanout
