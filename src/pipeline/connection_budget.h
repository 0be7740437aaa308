#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <set>

#include "src/core/error.h"

namespace pgfanout {

// Caps the target connections all sinks hold at once (delivery.max_connections), so
// 10,000 sinks into 50 target servers never open 10,000 connections.
//
// A sink holds a Permit while its target connection is open. When none is free, the sink
// waits in the order it asked, holding no worker (kBusy: it goes idle and is woken through
// Holder::PermitReady() when a permit is kept for it). A permit is never taken from a sink
// mid-batch; instead:
// - an idle holder (caught up, its connection kept open for delivery.idle_close) is asked
//   to give its permit up (Holder::PermitWanted()) as soon as another sink waits,
//   oldest idle first;
// - a busy holder gives its permit up after a turn once it has held it for kFairShare
//   while others wait (Permit::ShouldYield), and queues again behind them.
// Limit 0: no cap (permits are still counted).
//
// Threads: any. Holder callbacks run under the budget's lock: they must only wake (never
// call back into the budget). Must outlive the permits it handed out.
class ConnectionBudget {
 public:
  // Who holds or waits for a permit (a sink runner).
  class Holder {
   public:
    virtual ~Holder() = default;
    // A permit is kept for this holder: its next TryAcquire() gets it.
    virtual void PermitReady() = 0;
    // Another sink waits and this holder is idle: it should drop its permit at its next turn.
    virtual void PermitWanted() = 0;
  };

  static constexpr std::chrono::milliseconds kFairShare{1000};

  class Permit {
   public:
    Permit() = default;
    ~Permit() { Release(); }
    Permit(Permit&& other) noexcept { *this = std::move(other); }
    Permit& operator=(Permit&& other) noexcept;
    explicit operator bool() const { return budget_ != nullptr; }

    // The holder has nothing to do: the budget may ask for the permit back (PermitWanted).
    // Returns true when another sink waits already: give the permit up now.
    bool Idle();
    // The holder starts a turn. Returns true when the budget asked for the permit back
    // meanwhile: give it up (close the connection) before going on.
    bool Busy();
    // After a busy turn: true when others wait and this permit was held for kFairShare.
    bool ShouldYield(std::chrono::steady_clock::time_point now) const;
    void Release();

   private:
    friend class ConnectionBudget;
    struct State;
    ConnectionBudget* budget_ = nullptr;
    std::shared_ptr<State> state_;
  };

  explicit ConnectionBudget(size_t limit) : limit_(limit) {}
  ConnectionBudget(const ConnectionBudget&) = delete;
  ConnectionBudget& operator=(const ConnectionBudget&) = delete;

  // A permit for `holder`, or kBusy (it waits in line; PermitReady() when one is kept for it).
  Result<Permit> TryAcquire(Holder& holder);
  // The holder asks no more (it stopped): it leaves the line, and a permit kept for it goes
  // to the next.
  void Forget(Holder& holder);

  struct Counts {
    size_t limit = 0;    // 0: no cap
    size_t open = 0;     // permits held (target connections open or opening)
    size_t idle = 0;     // of those, held by a sink with nothing to do
    size_t waiting = 0;  // sinks waiting for a permit
  };
  Counts counts() const;

 private:
  bool Full() const { return limit_ > 0 && held_ + kept_for_.size() >= limit_; }
  // Under mu_: keeps free permits for the first waiters and asks idle holders for theirs.
  void HandOn();
  void Release(const std::shared_ptr<Permit::State>& state);

  const size_t limit_;
  mutable std::mutex mu_;
  size_t held_ = 0;
  std::deque<Holder*> waiting_;
  std::set<Holder*> kept_for_;                      // a permit each
  std::list<std::shared_ptr<Permit::State>> idle_;  // oldest first
  size_t asked_ = 0;  // idle holders asked for their permit, not yet given back
};

}  // namespace pgfanout
