// The fault checker against histories made by hand: each property it reports (loss, a
// change applied twice, order) must be seen when it is there and only then.
#include "test/faults/checker.h"

#include <gtest/gtest.h>

namespace pgfanout::faults {
namespace {

using Table = Delivery::Table;

// Three committed ops of tenant a: ledger rows 1, 2, 3 and account 1 at versions 1, 2, 3;
// op 3 deletes ledger row 1. Transactions commit at 0x100, 0x200, 0x300.
struct History {
  std::vector<Op> ops = {
      {.op_id = 1, .tenant = "a", .account = 1, .version = 1, .outcome = Outcome::kCommitted},
      {.op_id = 2, .tenant = "a", .account = 1, .version = 2, .outcome = Outcome::kCommitted},
      {.op_id = 3, .tenant = "a", .account = 1, .deletes_op = 1, .version = 3,
       .outcome = Outcome::kCommitted},
  };
  TableState source{.ledger = {{"a", 2}, {"a", 3}}, .accounts = {{{"a", 1}, {3, 0}}}};

  // What a change-log sink receives, transaction by transaction, in commit order.
  static std::vector<Delivery> Tx(int n) {
    const uint64_t lsn = 0x100 * static_cast<uint64_t>(n);
    std::vector<Delivery> out = {
        {.table = Table::kLedger, .op = 'i', .tenant = "a", .key = n, .id = {{lsn, 0}}},
        {.table = Table::kAccounts, .op = 'u', .tenant = "a", .key = 1, .version = n,
         .id = {{lsn, 1}}}};
    if (n == 3) {
      out.push_back({.table = Table::kLedger, .op = 'd', .tenant = "a", .key = 1, .id = {{lsn, 2}}});
    }
    return out;
  }
  static std::vector<Delivery> Stream(std::initializer_list<int> txs) {
    std::vector<Delivery> out;
    for (int n : txs) {
      auto tx = Tx(n);
      out.insert(out.end(), tx.begin(), tx.end());
    }
    return out;
  }
  Report CheckLog(std::vector<Delivery> deliveries, bool exactly_once = true) const {
    return Check("hand-made", ops, source,
                 {SinkView{.name = "log",
                           .deliveries = std::move(deliveries),
                           .exactly_once = exactly_once,
                           .commit_order = true}});
  }
};

TEST(FaultCheckerTest, TheWholeStreamOnceInOrderIsValid) {
  History h;
  auto r = h.CheckLog(History::Stream({1, 2, 3}));
  EXPECT_TRUE(r.Valid()) << r.ToText();
}

TEST(FaultCheckerTest, AMissingTransactionIsALoss) {
  History h;
  auto r = h.CheckLog(History::Stream({1, 3}));
  EXPECT_GT(r.Lost(), 0) << r.ToText();
  EXPECT_FALSE(r.Valid());
}

TEST(FaultCheckerTest, TheWholeStreamTwiceIsNotValid) {
  History h;
  auto r = h.CheckLog(History::Stream({1, 2, 3, 1, 2, 3}));
  EXPECT_GT(r.DuplicatedOnce(), 0) << r.ToText();
  EXPECT_FALSE(r.Valid()) << r.ToText();
  // An at-least-once sink may receive a change again, but not out of order.
  auto again = h.CheckLog(History::Stream({1, 2, 3, 3}), /*exactly_once=*/false);
  EXPECT_EQ(again.DuplicatedOnce(), 0);
  EXPECT_EQ(again.OrderViolations(), 0) << again.ToText();
  EXPECT_EQ(again.Lost(), 0) << again.ToText();
}

TEST(FaultCheckerTest, TwoTransactionsSwappedAreAnOrderViolation) {
  History h;
  auto r = h.CheckLog(History::Stream({2, 1, 3}));
  EXPECT_GT(r.OrderViolations(), 0) << r.ToText();
  EXPECT_EQ(r.Lost(), 0);
  EXPECT_FALSE(r.Valid());
  // Swapped transactions that touch different keys: only commit order shows it.
  std::vector<Delivery> other_keys = {
      {.table = Table::kLedger, .op = 'i', .tenant = "a", .key = 2, .id = {{0x200, 0}}},
      {.table = Table::kLedger, .op = 'i', .tenant = "a", .key = 1, .id = {{0x100, 0}}}};
  std::vector<Op> ops = {
      {.op_id = 1, .tenant = "a", .outcome = Outcome::kCommitted},
      {.op_id = 2, .tenant = "a", .outcome = Outcome::kCommitted}};
  auto swapped = Check("swap", ops, TableState{.ledger = {{"a", 1}, {"a", 2}}},
                       {SinkView{.name = "log", .deliveries = other_keys, .commit_order = true}});
  EXPECT_EQ(swapped.OrderViolations(), 1) << swapped.ToText();
}

// Lag is not loss: a sink that has not yet received the last transaction shows only that
// transaction missing (no duplicate, no order violation), and is valid once it arrives.
// The fixture's Finish() re-checks until then, and the negative controls first make the
// daemon pass the source's position, so what is still missing there is lost.
TEST(FaultCheckerTest, ASinkThatIsBehindMissesOnlyItsTailAndIsValidOnceItArrives) {
  History h;
  auto behind = h.CheckLog(History::Stream({1, 2}));
  EXPECT_EQ(behind.Lost(), static_cast<int64_t>(History::Tx(3).size())) << behind.ToText();
  EXPECT_EQ(behind.DuplicatedOnce() + behind.OrderViolations() + behind.Unexpected(), 0);
  auto caught_up = h.CheckLog(History::Stream({1, 2, 3}));
  EXPECT_TRUE(caught_up.Valid()) << caught_up.ToText();
}

// A change delivered again is a duplicate, and only that: the second copy of a resent
// batch is not also an order violation. A version never seen before that arrives after a
// newer one is out of order.
TEST(FaultCheckerTest, ResentChangesAreDuplicatesAndLateVersionsAreOutOfOrder) {
  History h;
  auto resent = h.CheckLog(History::Stream({1, 2, 2, 3}));
  EXPECT_GT(resent.DuplicatedOnce(), 0) << resent.ToText();
  EXPECT_EQ(resent.OrderViolations(), 0) << resent.ToText();
  auto late = History::Stream({1, 3});
  auto two = History::Tx(2);
  late.insert(late.end(), two.begin(), two.end());
  auto r = h.CheckLog(late);
  EXPECT_GT(r.OrderViolations(), 0) << r.ToText();
  EXPECT_EQ(r.DuplicatedOnce(), 0) << r.ToText();
}

// A row sink (compacts per batch; audited applies and final rows): everything applied
// twice must show, though the final rows are right.
TEST(FaultCheckerTest, ARowSinkApplyingEverythingTwiceIsNotValid) {
  History h;
  auto applies = [](bool twice) {
    std::vector<Delivery> out;
    for (int n = 1; n <= 3; ++n) {
      for (int k = 0; k < (twice ? 2 : 1); ++k) {
        out.push_back({.table = Table::kLedger, .op = k ? 'u' : 'i', .tenant = "a", .key = n});
        out.push_back(
            {.table = Table::kAccounts, .op = 'u', .tenant = "a", .key = 1, .version = n});
      }
    }
    out.push_back({.table = Table::kLedger, .op = 'd', .tenant = "a", .key = 1});
    return out;
  };
  auto view = [&](bool twice) {
    return SinkView{.name = "pg",
                    .tenants = {"a"},
                    .deliveries = applies(twice),
                    .compacts = true,
                    .rows = h.source};
  };
  auto once = Check("once", h.ops, h.source, {view(false)});
  EXPECT_TRUE(once.Valid()) << once.ToText();
  auto twice = Check("twice", h.ops, h.source, {view(true)});
  EXPECT_FALSE(twice.Valid()) << twice.ToText();
  EXPECT_GT(twice.DuplicatedOnce(), 0);
}

// Not loss: a row sink that compacted intermediate versions away but holds the final rows,
// and an op whose outcome was unknown and did not commit.
TEST(FaultCheckerTest, CompactedVersionsAndUncommittedUnknownOpsAreNotLoss) {
  History h;
  h.ops.push_back({.op_id = 4, .tenant = "a", .account = 1, .outcome = Outcome::kUnknown});
  std::vector<Delivery> compacted = {
      {.table = Table::kLedger, .op = 'i', .tenant = "a", .key = 2},
      {.table = Table::kLedger, .op = 'i', .tenant = "a", .key = 3},
      {.table = Table::kAccounts, .op = 'u', .tenant = "a", .key = 1, .version = 3}};
  auto r = Check("compacted", h.ops, h.source,
                 {SinkView{.name = "pg",
                           .tenants = {"a"},
                           .deliveries = compacted,
                           .compacts = true,
                           .rows = h.source}});
  EXPECT_TRUE(r.Valid()) << r.ToText();
  EXPECT_EQ(r.unknown, 1);
  EXPECT_EQ(r.unknown_committed, 0);
  // The same sink missing the last version in its rows has lost it.
  TableState stale = h.source;
  stale.accounts[{"a", 1}] = {2, 0};
  auto lost = Check("stale", h.ops, h.source,
                    {SinkView{.name = "pg", .tenants = {"a"}, .compacts = true, .rows = stale}});
  EXPECT_GT(lost.Lost(), 0) << lost.ToText();
}

}  // namespace
}  // namespace pgfanout::faults
