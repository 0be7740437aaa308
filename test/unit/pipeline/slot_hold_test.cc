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
// destination, a new registry sink waiting for a connection) holds everything: what its
// destination holds is not known yet. Opened with nothing there, it copies, and holds what
// comes after the log's end when it opened.
TEST_F(SlotHoldTest, ASinkNotOpenedYetHoldsEverythingUntilItKnowsWhatItNeeds) {
  Append({"7"});
  auto waiting = Runner(Config("new", {"7"}), std::make_unique<MemorySink>());
  Append({"7"});
  auto before_open = Append({"8"});
  EXPECT_EQ(Confirmable({waiting.get()}), Lsn());
  std::atomic<bool> copying{false}, release{false};
  waiting->SetBackfill([&](Sink&, const std::function<bool()>& stopping,
                           const SinkRunner::CopyAsk& ask) -> Result<std::optional<Lsn>> {
    (void)ask;
    copying = true;
    while (!release && !stopping()) std::this_thread::sleep_for(milliseconds(5));
    return std::optional<Lsn>();
  });
  waiting->Start();
  ASSERT_TRUE(Eventually([&] { return copying.load(); }));
  Append({"7"});
  EXPECT_EQ(Confirmable({waiting.get()}), before_open[0].commit_lsn);
  release = true;
}

// A sink whose destination holds a position it resumes from holds there (a standby's sink),
// not at the log's end when it opened.
TEST_F(SlotHoldTest, ASinkResumedFromItsDestinationHoldsAtThatPosition) {
  auto a = Append({"7"});
  Append({"7"});
  Append({"8"});
  auto owned = std::make_unique<MemorySink>();
  owned->SetPosition(TargetPosition{.applied = a[0], .lineage = LineageOf(*log_)});
  auto resumed = Runner(Config("s7", {"7"}), std::move(owned));
  std::atomic<bool> copying{false}, release{false};
  resumed->SetBackfill([&](Sink&, const std::function<bool()>& stopping,
                           const SinkRunner::CopyAsk& ask) -> Result<std::optional<Lsn>> {
    (void)ask;
    copying = true;  // a trusted position copies nothing; hold here to look
    while (!release && !stopping()) std::this_thread::sleep_for(milliseconds(5));
    return std::optional<Lsn>();
  });
  resumed->Start();
  ASSERT_TRUE(Eventually([&] { return copying.load(); }));
  EXPECT_EQ(Confirmable({resumed.get()}), a[0].commit_lsn);
  release = true;
}

// A stopped sink holds the slot at its cursor, also one stopped because retention trimmed
// what it had not taken (log.lagging_sinks: drop): only this state dir knows that its
// destination's position is stale, so a standby would resume from it.
TEST_F(SlotHoldTest, AStoppedSinkHoldsAtItsCursorEvenBehindTheTrim) {
  auto a = Append({"7"});
  auto b = Append({"7"});
  Append({"7"});
  ASSERT_TRUE(log_->StoreCursor("s", SinkCursor{.applied = a[0]}).has_value());
  ASSERT_TRUE(meta::Store(*log_, meta::TrimmedPastKey("s"), meta::TrimMark{b[0]}).has_value());
  auto trimmed = Runner(Config("s", {"7"}), std::make_unique<MemorySink>());
  trimmed->Start();
  ASSERT_TRUE(Eventually([&] { return trimmed->status().stopped; }));
  EXPECT_EQ(Confirmable({trimmed.get()}), a[0].commit_lsn);

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
