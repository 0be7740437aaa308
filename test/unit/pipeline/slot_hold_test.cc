// source.confirm: sinks: how far the slot may be confirmed, over real runners on an
// in-memory log (src/pipeline/slot_hold.h).
#include "src/pipeline/slot_hold.h"

#include "test/unit/pipeline/sink_runner_fixture.h"

namespace pgfanout {
namespace {

class SlotHoldTest : public SinkRunnerTest {
 protected:
  Lsn Confirmable(const std::vector<SinkRunner*>& runners) {
    auto r = SinksConfirmable(runners, *log_, log_->DurableLsn(), log_->LastDurableEvent());
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.has_value() ? r.value() : Lsn();
  }
};

// A sink with events pending holds the slot at the commit of the last event it made
// durable (that transaction is sent again after a takeover and its destination skips what
// it has); a sink of other tenants that is caught up holds nothing, however old its
// cursor; once the first catches up, the slot may go to the log's durable end.
TEST_F(SlotHoldTest, ASinkWithEventsPendingHoldsTheSlotAtWhatItMadeDurable) {
  auto a = Append({"7"});
  auto b = Append({"8"});
  auto c = Append({"7"});
  const Lsn durable = log_->DurableLsn();
  ASSERT_GT(durable, c[0].commit_lsn);
  // s7 made `a` durable and is paused: c is pending.
  ASSERT_TRUE(log_->StoreCursor("s7", SinkCursor{.applied = a[0]}).has_value());
  SinkConfig paused = Config("s7", {"7"});
  paused.enabled = false;
  auto s7 = Runner(paused, std::make_unique<MemorySink>());
  auto s8 = Runner(Config("s8", {"8"}), std::make_unique<MemorySink>());
  ASSERT_TRUE(log_->StoreCursor("s8", SinkCursor{.applied = b[0]}).has_value());
  s7->Start();
  s8->Start();
  ASSERT_TRUE(Eventually([&] { return s7->status().paused && s8->status().idle; }));
  EXPECT_EQ(Confirmable({s7.get(), s8.get()}), a[0].commit_lsn);
  EXPECT_EQ(Confirmable({s8.get()}), durable) << "a caught-up sink holds nothing";

  s7->Stop();
  auto resumed = Runner(Config("s7", {"7"}), std::make_unique<MemorySink>());
  resumed->Start();
  ASSERT_TRUE(Eventually([&] { return resumed->status().idle; }));
  EXPECT_EQ(Confirmable({resumed.get(), s8.get()}), durable);
}

// A "*" sink is never idle; at the log's last event it holds nothing either.
TEST_F(SlotHoldTest, AnAllTenantsSinkAtTheLastEventHoldsNothing) {
  Append({"7"});
  auto last = Append({"8"});
  auto all = Runner(Config("all", {"*"}), std::make_unique<MemorySink>());
  ASSERT_TRUE(log_->StoreCursor("all", SinkCursor{.applied = EventId{}}).has_value());
  all->Start();
  ASSERT_TRUE(Eventually([&] { return At(*all, last[0]); }));
  EXPECT_EQ(Confirmable({all.get()}), log_->DurableLsn());
}

// A sink not opened yet, without a cursor (a standby's sink before it resumes from its
// destination, a new registry sink waiting for a connection) holds the log's durable end as
// it was when its runner was made: what it needs comes after that.
TEST_F(SlotHoldTest, ASinkNotOpenedYetHoldsWhereTheLogWasWhenItWasMade) {
  Append({"7"});
  const Lsn made_at = log_->DurableLsn();
  auto waiting = Runner(Config("new", {"7"}), std::make_unique<MemorySink>());
  Append({"7"});
  Append({"8"});
  ASSERT_GT(log_->DurableLsn(), made_at);
  EXPECT_EQ(Confirmable({waiting.get()}), made_at);
}

// A sink stopped because retention trimmed what it had not taken (log.lagging_sinks: drop)
// needs a copy, not these changes: it does not hold the slot. One stopped for another
// reason does, at its cursor.
TEST_F(SlotHoldTest, ASinkStoppedBehindTheTrimHoldsNothing) {
  auto a = Append({"7"});
  auto b = Append({"7"});
  Append({"7"});
  ASSERT_TRUE(log_->StoreCursor("s", SinkCursor{.applied = a[0]}).has_value());
  ASSERT_TRUE(meta::Store(*log_, meta::TrimmedPastKey("s"), meta::TrimMark{b[0]}).has_value());
  auto trimmed = Runner(Config("s", {"7"}), std::make_unique<MemorySink>());
  trimmed->Start();
  ASSERT_TRUE(Eventually([&] { return trimmed->status().stopped; }));
  EXPECT_EQ(Confirmable({trimmed.get()}), log_->DurableLsn());

  ASSERT_TRUE(log_->StoreCursor("f", SinkCursor{.applied = a[0]}).has_value());
  // A write the destination refuses (kMismatch) stops the sink: it needs a person.
  auto failed =
      Runner(Config("f", {"7"}),
             std::make_unique<FaultySink>(
                 FaultySink::Faults{.fail_writes = INT_MAX, .write_error = ErrorKind::kMismatch},
                 std::make_unique<MemorySink>()));
  failed->Start();
  ASSERT_TRUE(Eventually([&] { return failed->status().stopped; }));
  EXPECT_EQ(Confirmable({failed.get()}), a[0].commit_lsn);
}

}  // namespace
}  // namespace pgfanout
