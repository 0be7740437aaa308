#include "src/pipeline/delivery_pool.h"

#include <pthread.h>

#include <algorithm>
#include <string>

namespace pgfanout {

size_t DefaultDeliveryWorkers() {
  return std::clamp<size_t>(4 * std::thread::hardware_concurrency(), 16, 64);
}

DeliveryPool::DeliveryPool(size_t workers) {
  workers = std::max<size_t>(workers, 1);
  threads_.reserve(workers);
  for (size_t i = 0; i < workers; ++i) {
    threads_.emplace_back([this, i] {
      // "deliver:<n>" in top -H and perf.
      pthread_setname_np(pthread_self(), ("deliver:" + std::to_string(i)).c_str());
      Work();
    });
  }
}

DeliveryPool::~DeliveryPool() { Stop(); }

void DeliveryPool::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  done_cv_.notify_all();
}

void DeliveryPool::Add(DeliveryTask* task) {
  {
    std::lock_guard lock(mu_);
    auto& e = entries_[task];
    e = std::make_unique<Entry>();
    e->task = task;
    queue_.push_back(e.get());
  }
  work_cv_.notify_one();
}

void DeliveryPool::Remove(DeliveryTask* task) {
  std::unique_lock lock(mu_);
  auto it = entries_.find(task);
  if (it == entries_.end()) return;
  Entry* e = it->second.get();
  e->removed = true;
  // A turn in progress finishes first (the task's Stopping() makes it short); threads
  // gone (Stop) run no turn any more.
  done_cv_.wait(lock, [&] { return e->state != State::kRunning || stop_; });
  std::erase(queue_, e);
  std::erase_if(timers_, [e](const auto& t) { return t.second == e; });
  entries_.erase(it);
}

void DeliveryPool::Wake(DeliveryTask* task) {
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(task);
    if (it == entries_.end()) return;
    Entry& e = *it->second;
    if (e.removed) return;
    switch (e.state) {
      case State::kRunning:
        e.woken = true;
        return;
      case State::kIdle:
        if (e.at) {
          std::erase_if(timers_, [p = &e](const auto& t) { return t.second == p; });
          e.at.reset();
        }
        e.state = State::kQueued;
        queue_.push_back(&e);
        break;
      case State::kQueued:
      case State::kWaiting:  // its backoff stands
      case State::kDone:
        return;
    }
  }
  work_cv_.notify_one();
}

DeliveryPool::Counts DeliveryPool::counts() const {
  std::lock_guard lock(mu_);
  Counts c;
  c.tasks = entries_.size();
  c.turns = turns_;
  for (const auto& [task, e] : entries_) {
    switch (e->state) {
      case State::kQueued:
        ++c.queued;
        break;
      case State::kRunning:
        ++c.running;
        break;
      case State::kWaiting:
        ++c.waiting;
        break;
      case State::kIdle:
        ++c.idle;
        break;
      case State::kDone:
        break;
    }
  }
  return c;
}

std::optional<std::chrono::steady_clock::time_point> DeliveryPool::DueTimers(
    std::chrono::steady_clock::time_point now) {
  while (!timers_.empty() && timers_.begin()->first <= now) {
    Entry* e = timers_.begin()->second;
    timers_.erase(timers_.begin());
    e->at.reset();
    e->state = State::kQueued;
    queue_.push_back(e);
  }
  if (timers_.empty()) return std::nullopt;
  return timers_.begin()->first;
}

void DeliveryPool::Settle(Entry& e, const TurnResult& result) {
  using Next = TurnResult::Next;
  if (e.removed || result.next == Next::kDone) {
    e.state = State::kDone;
    return;
  }
  if (result.next == Next::kMore || (result.next == Next::kIdle && e.woken)) {
    e.state = State::kQueued;
    queue_.push_back(&e);
    return;
  }
  e.state = result.next == Next::kRetry ? State::kWaiting : State::kIdle;
  e.at = result.at;
  if (e.at) timers_.emplace(*e.at, &e);
}

void DeliveryPool::Work() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    auto next_timer = DueTimers(std::chrono::steady_clock::now());
    if (queue_.empty()) {
      if (next_timer) {
        work_cv_.wait_until(lock, *next_timer);
      } else {
        work_cv_.wait(lock);
      }
      continue;
    }
    Entry* e = queue_.front();
    queue_.pop_front();
    e->state = State::kRunning;
    e->woken = false;
    ++turns_;
    lock.unlock();
    const TurnResult result = e->task->Turn();
    lock.lock();
    Settle(*e, result);
    // This worker takes the front of the queue next; another is woken only for the rest
    // (waking one for a task queued again just moved it between threads: a lone sink
    // took 9.8 s instead of 8.6 s with 16 workers, bench/e2e_postgres.sh) or for a timer
    // earlier than one a sleeping worker waits for.
    if (queue_.size() > 1 || e->at) work_cv_.notify_one();
    done_cv_.notify_all();
  }
}

}  // namespace pgfanout
