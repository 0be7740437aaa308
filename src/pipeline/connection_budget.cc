#include "src/pipeline/connection_budget.h"

#include <algorithm>
#include <utility>

namespace pgfanout {

struct ConnectionBudget::Permit::State {
  Holder* holder = nullptr;
  std::chrono::steady_clock::time_point acquired_at;
  bool idle = false;   // in idle_
  bool asked = false;  // PermitWanted() was called: counted in asked_
  std::list<std::shared_ptr<State>>::iterator in_idle;
};

ConnectionBudget::Permit& ConnectionBudget::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    Release();
    budget_ = std::exchange(other.budget_, nullptr);
    state_ = std::move(other.state_);
  }
  return *this;
}

void ConnectionBudget::Permit::Release() {
  if (!budget_) return;
  budget_->Release(state_);
  budget_ = nullptr;
  state_.reset();
}

bool ConnectionBudget::Permit::Idle() {
  if (!budget_) return false;
  std::lock_guard lock(budget_->mu_);
  if (state_->asked || budget_->waiting_.size() > budget_->asked_) return true;
  if (!state_->idle) {
    state_->idle = true;
    state_->in_idle = budget_->idle_.insert(budget_->idle_.end(), state_);
  }
  return false;
}

bool ConnectionBudget::Permit::Busy() {
  if (!budget_) return false;
  std::lock_guard lock(budget_->mu_);
  if (state_->idle) {
    budget_->idle_.erase(state_->in_idle);
    state_->idle = false;
  }
  return state_->asked;
}

bool ConnectionBudget::Permit::ShouldYield(std::chrono::steady_clock::time_point now) const {
  if (!budget_) return false;
  std::lock_guard lock(budget_->mu_);
  return budget_->waiting_.size() > budget_->asked_ &&
         now - state_->acquired_at >= ConnectionBudget::kFairShare;
}

Result<ConnectionBudget::Permit> ConnectionBudget::TryAcquire(Holder& holder) {
  std::lock_guard lock(mu_);
  const bool kept = kept_for_.erase(&holder) > 0;
  if (kept || (waiting_.empty() && !Full())) {
    ++held_;
    Permit permit;
    permit.budget_ = this;
    permit.state_ = std::make_shared<Permit::State>();
    permit.state_->holder = &holder;
    permit.state_->acquired_at = std::chrono::steady_clock::now();
    return permit;
  }
  if (std::find(waiting_.begin(), waiting_.end(), &holder) == waiting_.end()) {
    waiting_.push_back(&holder);
  }
  HandOn();
  return MakeError(ErrorKind::kBusy, "waiting for a target connection (delivery.max_connections)");
}

void ConnectionBudget::Forget(Holder& holder) {
  std::lock_guard lock(mu_);
  std::erase(waiting_, &holder);
  if (kept_for_.erase(&holder) > 0) HandOn();
}

ConnectionBudget::Counts ConnectionBudget::counts() const {
  std::lock_guard lock(mu_);
  return Counts{.limit = limit_,
                .open = held_,
                .idle = idle_.size(),
                .waiting = waiting_.size() + kept_for_.size()};
}

void ConnectionBudget::Release(const std::shared_ptr<Permit::State>& state) {
  std::lock_guard lock(mu_);
  if (state->idle) idle_.erase(state->in_idle);
  if (state->asked) --asked_;
  --held_;
  HandOn();
}

void ConnectionBudget::HandOn() {
  while (!waiting_.empty() && !Full()) {
    Holder* next = waiting_.front();
    waiting_.pop_front();
    kept_for_.insert(next);
    // Under the lock: a holder leaving (Forget) waits for it, so `next` is still there.
    next->PermitReady();
  }
  // The rest wait for permits in use: ask idle holders for theirs, oldest idle first.
  while (waiting_.size() > asked_ && !idle_.empty()) {
    auto state = idle_.front();
    idle_.pop_front();
    state->idle = false;
    state->asked = true;
    ++asked_;
    state->holder->PermitWanted();
  }
}

}  // namespace pgfanout
