// delivery.max_connections: permits in the order sinks asked, idle holders asked for
// theirs first, a busy holder yields after its fair share, a holder that leaves passes a
// kept permit on.
#include "src/pipeline/connection_budget.h"

#include <gtest/gtest.h>

namespace pgfanout {
namespace {

struct Holder : ConnectionBudget::Holder {
  int ready = 0;   // PermitReady() calls
  int wanted = 0;  // PermitWanted() calls
  void PermitReady() override { ++ready; }
  void PermitWanted() override { ++wanted; }
};

ConnectionBudget::Permit Take(ConnectionBudget& budget, Holder& h) {
  auto p = budget.TryAcquire(h);
  EXPECT_TRUE(p.has_value()) << p.error().message;
  return p.has_value() ? std::move(p.value()) : ConnectionBudget::Permit{};
}

TEST(ConnectionBudgetTest, PermitsGoToTheSinksInTheOrderTheyAsked) {
  ConnectionBudget budget(2);
  Holder a, b, c, d;
  auto pa = Take(budget, a);
  auto pb = Take(budget, b);
  auto refused = budget.TryAcquire(c);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().kind, ErrorKind::kBusy);
  EXPECT_FALSE(budget.TryAcquire(d).has_value());
  EXPECT_EQ(budget.counts().open, 2u);
  EXPECT_EQ(budget.counts().waiting, 2u);
  // Busy holders are not asked: a permit is never taken mid-batch.
  EXPECT_EQ(a.wanted + b.wanted, 0);
  pa.Release();
  EXPECT_EQ(c.ready, 1) << "the first in line is told";
  EXPECT_EQ(d.ready, 0);
  // Kept for c: a newcomer and d, behind it, do not get it.
  Holder e;
  EXPECT_FALSE(budget.TryAcquire(e).has_value());
  EXPECT_FALSE(budget.TryAcquire(d).has_value());
  auto pc = Take(budget, c);
  EXPECT_EQ(budget.counts().open, 2u);
  pb.Release();
  EXPECT_EQ(d.ready, 1);
  EXPECT_EQ(e.ready, 0);
}

TEST(ConnectionBudgetTest, AnIdleHolderIsAskedForItsPermitWhenAnotherSinkWaits) {
  ConnectionBudget budget(2);
  Holder a, b, c;
  auto pa = Take(budget, a);
  auto pb = Take(budget, b);
  EXPECT_FALSE(pb.Idle()) << "nobody waits: it keeps its connection";
  EXPECT_FALSE(pa.Idle());
  EXPECT_EQ(budget.counts().idle, 2u);
  EXPECT_FALSE(budget.TryAcquire(c).has_value());
  EXPECT_EQ(b.wanted, 1) << "the oldest idle holder is asked";
  EXPECT_EQ(a.wanted, 0) << "one waiter, one holder asked";
  EXPECT_FALSE(pa.Busy()) << "a was not asked";
  EXPECT_TRUE(pb.Busy()) << "b's next turn gives it up";
  pb.Release();
  EXPECT_EQ(c.ready, 1);
  auto pc = Take(budget, c);
  // With a sink already waiting, going idle gives the permit up at once.
  Holder d;
  EXPECT_FALSE(budget.TryAcquire(d).has_value());
  EXPECT_TRUE(pc.Idle());
}

TEST(ConnectionBudgetTest, ABusyHolderYieldsAfterItsFairShareOnlyWhenOthersWait) {
  ConnectionBudget budget(1);
  Holder a, b;
  auto pa = Take(budget, a);
  const auto later = std::chrono::steady_clock::now() + ConnectionBudget::kFairShare;
  EXPECT_FALSE(pa.ShouldYield(later)) << "nobody waits";
  EXPECT_FALSE(budget.TryAcquire(b).has_value());
  EXPECT_FALSE(pa.ShouldYield(std::chrono::steady_clock::now())) << "not had its share yet";
  EXPECT_TRUE(pa.ShouldYield(later));
}

TEST(ConnectionBudgetTest, AHolderThatLeavesPassesItsKeptPermitOn) {
  ConnectionBudget budget(1);
  Holder a, b, c;
  auto pa = Take(budget, a);
  EXPECT_FALSE(budget.TryAcquire(b).has_value());
  EXPECT_FALSE(budget.TryAcquire(c).has_value());
  pa.Release();
  EXPECT_EQ(b.ready, 1);
  budget.Forget(b);
  EXPECT_EQ(c.ready, 1);
  auto pc = Take(budget, c);
  EXPECT_EQ(budget.counts().waiting, 0u);
}

TEST(ConnectionBudgetTest, ZeroMeansNoCap) {
  ConnectionBudget budget(0);
  std::vector<Holder> holders(1000);
  std::vector<ConnectionBudget::Permit> permits;
  for (auto& h : holders) permits.push_back(Take(budget, h));
  EXPECT_EQ(budget.counts().open, 1000u);
  permits.clear();
  EXPECT_EQ(budget.counts().open, 0u);
}

}  // namespace
}  // namespace pgfanout
