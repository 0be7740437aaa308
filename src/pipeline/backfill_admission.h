#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <set>

#include "src/core/error.h"

namespace pgfanout {

class SinkRunner;

// Lets at most `slots` sinks copy existing rows (backfill) at once (backfill_concurrency:
// each copy takes a temporary slot and source connections). The others wait in the order
// they asked, holding no worker of the delivery pool: a runner refused a slot gets kBusy,
// goes idle, and is woken (Notify) when a slot is kept for it.
//
// Threads: any. Must outlive the slots it handed out.
class BackfillAdmission {
 public:
  explicit BackfillAdmission(size_t slots) : free_(slots) {}

  // A slot for `runner`, freed when the returned handle is dropped; kBusy when none is
  // free (or one is kept for a runner that asked earlier).
  Result<std::shared_ptr<void>> TryAdmit(SinkRunner& runner);
  // The runner asks no more (it stopped): it leaves the queue, and a slot kept for it goes
  // to the next.
  void Forget(SinkRunner& runner);

  size_t waiting() const;

 private:
  // Under mu_: gives a free slot to the first waiter, kept until it asks again.
  void HandOn(std::unique_lock<std::mutex>& lock);
  void Release();

  mutable std::mutex mu_;
  size_t free_;
  std::deque<SinkRunner*> waiting_;
  std::set<SinkRunner*> kept_for_;  // a slot each, taken from free_
};

}  // namespace pgfanout
