#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

namespace pgfanout {

// What one turn of a task left it wanting.
struct TurnResult {
  enum class Next {
    kMore,   // it has more to do now: back of the queue
    kIdle,   // caught up: runs again when woken (or at `at`, when given)
    kRetry,  // failed: runs again at `at`, holding no worker meanwhile
    kDone,   // never again (stopped, or gave up)
  };
  Next next = Next::kIdle;
  std::optional<std::chrono::steady_clock::time_point> at;

  static TurnResult More() { return {Next::kMore, std::nullopt}; }
  static TurnResult Idle(std::optional<std::chrono::steady_clock::time_point> at = std::nullopt) {
    return {Next::kIdle, at};
  }
  static TurnResult RetryAt(std::chrono::steady_clock::time_point at) { return {Next::kRetry, at}; }
  static TurnResult Done() { return {Next::kDone, std::nullopt}; }
};

// Something the pool runs a turn at a time: a sink runner (a batch per turn).
class DeliveryTask {
 public:
  virtual ~DeliveryTask() = default;
  virtual TurnResult Turn() = 0;
};

// Runs tasks on a fixed set of worker threads, however many tasks there are.
//
// - A task runs on one worker at a time; its turns never overlap.
// - Fair: each turn is one batch, and a task with more to do goes to the back of the
//   queue, so a busy task cannot hold a worker while others wait.
// - A task with nothing to do (kIdle) is in no queue and costs nothing until Wake(); a
//   Wake() during its turn runs it once more after (no wake-up is lost between its last
//   read and its going idle).
// - A task waiting to retry holds no worker: it sleeps in a timer list the workers
//   share, and Wake() does not cut its backoff short.
//
// Threads: every method may be called from any thread except Remove() and Stop(), which
// must not be called from inside a turn.
class DeliveryPool {
 public:
  explicit DeliveryPool(size_t workers);
  ~DeliveryPool();
  DeliveryPool(const DeliveryPool&) = delete;
  DeliveryPool& operator=(const DeliveryPool&) = delete;

  // Adds a task; its first turn is queued at once. `task` must outlive its Remove().
  void Add(DeliveryTask* task);
  // Waits for the task's turn in progress, if any, and runs it no more.
  void Remove(DeliveryTask* task);
  // Queues an idle task for a turn (no-op for a queued, retrying or removed one).
  void Wake(DeliveryTask* task);
  // Stops the workers after the turns in progress; idempotent.
  void Stop();

  size_t workers() const { return threads_.size(); }
  struct Counts {
    size_t tasks = 0, queued = 0, running = 0, waiting = 0, idle = 0;
    uint64_t turns = 0;  // turns run since the pool started
  };
  Counts counts() const;

 private:
  enum class State { kQueued, kRunning, kWaiting, kIdle, kDone };
  struct Entry {
    DeliveryTask* task = nullptr;
    State state = State::kQueued;
    bool woken = false;                                       // Wake() came during the turn
    bool removed = false;                                     // run no more
    std::optional<std::chrono::steady_clock::time_point> at;  // kWaiting, or kIdle with a timer
  };

  void Work();
  // Moves timers that are due into the queue; the next timer's time, if any.
  std::optional<std::chrono::steady_clock::time_point> DueTimers(
      std::chrono::steady_clock::time_point now);
  void Settle(Entry& e, const TurnResult& result);

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // a worker may have something to do
  std::condition_variable done_cv_;  // a turn ended (Remove waits on it)
  std::unordered_map<DeliveryTask*, std::unique_ptr<Entry>> entries_;
  std::deque<Entry*> queue_;
  std::multimap<std::chrono::steady_clock::time_point, Entry*> timers_;
  uint64_t turns_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// The default worker count: 4 per core, at least 16, at most 64. A sink's write mostly
// waits (its target's commit, an fsync), so workers beyond the cores overlap those waits:
// on 2 cores, 10,000 one-tenant sinks took 8.7 s with 16 workers and 12.9 s with 2
// (bench/e2e_tenants.sh, single-row transactions).
size_t DefaultDeliveryWorkers();

}  // namespace pgfanout
