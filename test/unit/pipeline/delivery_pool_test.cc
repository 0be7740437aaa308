// The delivery pool with tasks that count their turns: fairness, wake-ups, retries that
// hold no worker, and idle tasks that cost nothing.
#include "src/pipeline/delivery_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

namespace pgfanout {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A task whose turns run `turn` and are counted (and, with `log`, recorded in order).
class CountingTask : public DeliveryTask {
 public:
  explicit CountingTask(std::function<TurnResult(int)> turn, char name = '?',
                        std::string* log = nullptr, std::mutex* log_mu = nullptr)
      : turn_(std::move(turn)), name_(name), log_(log), log_mu_(log_mu) {}
  TurnResult Turn() override {
    const int n = turns_.fetch_add(1) + 1;
    if (log_) {
      std::lock_guard lock(*log_mu_);
      log_->push_back(name_);
    }
    return turn_(n);
  }
  int turns() const { return turns_.load(); }

 private:
  std::function<TurnResult(int)> turn_;
  char name_;
  std::string* log_;
  std::mutex* log_mu_;
  std::atomic<int> turns_{0};
};

bool Eventually(const std::function<bool()>& done, std::chrono::milliseconds within = 5s) {
  const auto until = Clock::now() + within;
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

// One worker, a task that always has more and one that has five batches: they alternate,
// so the second is done after at most five turns of the first, not after the first is.
TEST(DeliveryPoolTest, ABusyTaskCannotStarveTheOthers) {
  std::string order;
  std::mutex mu;
  std::atomic<bool> busy_stop{false};
  CountingTask busy([&](int) { return busy_stop ? TurnResult::Done() : TurnResult::More(); }, 'B',
                    &order, &mu);
  CountingTask small([](int n) { return n < 5 ? TurnResult::More() : TurnResult::Idle(); }, 's',
                     &order, &mu);
  DeliveryPool pool(1);
  pool.Add(&busy);
  pool.Add(&small);
  ASSERT_TRUE(Eventually([&] { return small.turns() == 5; }));
  busy_stop = true;
  pool.Remove(&busy);
  pool.Remove(&small);
  std::lock_guard lock(mu);
  const size_t last_small = order.rfind('s');
  ASSERT_NE(last_small, std::string::npos);
  const auto busy_before = std::count(order.begin(), order.begin() + last_small, 'B');
  EXPECT_LE(busy_before, 5) << "turns in order: " << order;
}

TEST(DeliveryPoolTest, AnIdleTaskRunsOnlyWhenWoken) {
  CountingTask task([](int) { return TurnResult::Idle(); });
  DeliveryPool pool(2);
  pool.Add(&task);
  ASSERT_TRUE(Eventually([&] { return task.turns() == 1; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(task.turns(), 1) << "an idle task is not polled";
  EXPECT_EQ(pool.counts().idle, 1u);
  pool.Wake(&task);
  ASSERT_TRUE(Eventually([&] { return task.turns() == 2; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(task.turns(), 2);
  pool.Remove(&task);
}

// The wake that comes while the task reads (after its read, before it says idle) is the
// one a careless pool loses: the task would sleep with an event waiting.
TEST(DeliveryPoolTest, AWakeDuringATurnRunsTheTaskOnceMore) {
  std::atomic<bool> in_turn{false}, release{false};
  CountingTask task([&](int n) {
    if (n == 1) {
      in_turn = true;
      while (!release) std::this_thread::sleep_for(1ms);
    }
    return TurnResult::Idle();
  });
  DeliveryPool pool(1);
  pool.Add(&task);
  ASSERT_TRUE(Eventually([&] { return in_turn.load(); }));
  pool.Wake(&task);
  release = true;
  ASSERT_TRUE(Eventually([&] { return task.turns() == 2; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(task.turns(), 2);
  pool.Remove(&task);
}

// One worker: a task that fails and waits 400 ms must not hold it, so another task's
// fifty batches all run within that wait; the failing one runs again only after it.
TEST(DeliveryPoolTest, ATaskWaitingToRetryHoldsNoWorker) {
  std::vector<Clock::time_point> failed_at;
  std::mutex mu;
  CountingTask failing([&](int) {
    std::lock_guard lock(mu);
    failed_at.push_back(Clock::now());
    return failed_at.size() < 2 ? TurnResult::RetryAt(Clock::now() + 400ms) : TurnResult::Done();
  });
  std::atomic<int64_t> healthy_done_us{0};
  const auto start = Clock::now();
  CountingTask healthy([&](int n) {
    if (n < 50) return TurnResult::More();
    healthy_done_us =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
    return TurnResult::Idle();
  });
  DeliveryPool pool(1);
  pool.Add(&failing);
  pool.Add(&healthy);
  ASSERT_TRUE(Eventually([&] { return failing.turns() == 1; }));
  pool.Wake(&failing);  // a wake (an event appended) does not cut the backoff short
  ASSERT_TRUE(Eventually([&] { return failing.turns() == 2; }));
  pool.Remove(&failing);
  pool.Remove(&healthy);
  ASSERT_EQ(healthy.turns(), 50);
  EXPECT_LT(healthy_done_us.load(), 300'000) << "the healthy task waited for the retry";
  std::lock_guard lock(mu);
  ASSERT_EQ(failed_at.size(), 2u);
  EXPECT_GE(failed_at[1] - failed_at[0], 400ms);
}

// An idle task with a timer (a sink closing its connection after delivery.idle_close)
// runs once at that time, and not again until woken.
TEST(DeliveryPoolTest, AnIdleTaskWithATimerRunsOnceAtIt) {
  CountingTask task(
      [](int n) { return n == 1 ? TurnResult::Idle(Clock::now() + 150ms) : TurnResult::Idle(); });
  DeliveryPool pool(1);
  pool.Add(&task);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(task.turns(), 1);
  ASSERT_TRUE(Eventually([&] { return task.turns() == 2; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(task.turns(), 2);
  pool.Remove(&task);
}

// Ten thousand idle tasks on four workers: one turn each, then none while nothing wakes
// them; waking one runs that one only.
TEST(DeliveryPoolTest, TenThousandIdleTasksCostNoTurns) {
  std::vector<std::unique_ptr<CountingTask>> tasks;
  for (int i = 0; i < 10'000; ++i) {
    tasks.push_back(std::make_unique<CountingTask>([](int) { return TurnResult::Idle(); }));
  }
  DeliveryPool pool(4);
  for (auto& t : tasks) pool.Add(t.get());
  ASSERT_TRUE(Eventually([&] { return pool.counts().idle == 10'000; }));
  const uint64_t turns = pool.counts().turns;
  EXPECT_EQ(turns, 10'000u);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(pool.counts().turns, turns);
  pool.Wake(tasks[4242].get());
  ASSERT_TRUE(Eventually([&] { return tasks[4242]->turns() == 2; }));
  EXPECT_EQ(pool.counts().turns, turns + 1);
  for (auto& t : tasks) pool.Remove(t.get());
  EXPECT_EQ(pool.counts().tasks, 0u);
}

// Remove() waits for the turn in progress, and no turn runs after it.
TEST(DeliveryPoolTest, RemoveWaitsForTheTurnInProgress) {
  std::atomic<bool> in_turn{false}, finished{false};
  CountingTask task([&](int) {
    in_turn = true;
    std::this_thread::sleep_for(200ms);
    finished = true;
    return TurnResult::More();
  });
  DeliveryPool pool(1);
  pool.Add(&task);
  ASSERT_TRUE(Eventually([&] { return in_turn.load(); }));
  pool.Remove(&task);
  EXPECT_TRUE(finished.load());
  const int turns = task.turns();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(task.turns(), turns);
}

}  // namespace
}  // namespace pgfanout
