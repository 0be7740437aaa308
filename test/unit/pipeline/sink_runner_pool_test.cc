// Sink runners on a shared delivery pool: idle close and wake-ups by tenant.
#include "src/pipeline/sink_wakeups.h"
#include "test/unit/pipeline/sink_runner_fixture.h"

namespace pgfanout {
namespace {

using SinkRunnerPoolTest = SinkRunnerTest;

// delivery.idle_close: a sink with nothing to do closes its target after that long, and is
// opened again at its cursor when an event wakes it.
TEST_F(SinkRunnerPoolTest, AnIdleSinkClosesItsTargetAndReopensAtItsCursorWhenWoken) {
  auto owned = std::make_unique<MemorySink>();
  MemorySink& sink = *owned;
  auto runner = Runner(Config("s7", {"7"}), std::move(owned));
  runner->SetIdleClose(milliseconds(150));
  const auto a = Append({"7"});
  runner->Start();
  ASSERT_TRUE(sink.WaitForEvents(1, kDeadline));
  ASSERT_TRUE(Eventually([&] { return sink.stops() == 1; })) << "not closed when idle";
  EXPECT_EQ(sink.opens().size(), 1u);
  const auto b = Append({"7"});
  runner->Notify();
  ASSERT_TRUE(sink.WaitForEvents(2, kDeadline));
  ASSERT_EQ(sink.opens().size(), 2u);
  ASSERT_TRUE(sink.opens()[1].has_value());
  EXPECT_EQ(sink.opens()[1]->applied, a[0]) << "reopened at its stored cursor";
  EXPECT_EQ(sink.ids(), (std::vector<EventId>{a[0], b[0]}));
  runner->Stop();
}

// After a group commit, only the sinks of the tenants it wrote to (and "*" sinks) run: a
// sink of another tenant takes no turn. Turns counted on one shared pool.
TEST_F(SinkRunnerPoolTest, AnAppendWakesOnlyTheSinksOfItsTenants) {
  DeliveryPool pool(1);
  auto seven_sink = std::make_unique<MemorySink>();
  auto all_sink = std::make_unique<MemorySink>();
  MemorySink& seven_got = *seven_sink;
  MemorySink& all_got = *all_sink;
  auto seven = Runner(Config("s7", {"7"}), std::move(seven_sink));
  auto nine = Runner(Config("s9", {"9"}), std::make_unique<MemorySink>());
  auto all = Runner(Config("all", {"*"}), std::move(all_sink));
  SinkWakeups wakeups;
  wakeups.Set({seven.get(), nine.get(), all.get()});
  for (auto* r : {seven.get(), nine.get(), all.get()}) r->Start(&pool);
  ASSERT_TRUE(Eventually([&] { return pool.counts().idle == 3; }));
  const uint64_t before = pool.counts().turns;
  Append({"7"});
  wakeups.Wake(Ingest::Appended{.any = true, .tenants = {"7"}});
  ASSERT_TRUE(seven_got.WaitForEvents(1, kDeadline));
  ASSERT_TRUE(all_got.WaitForEvents(1, kDeadline));
  ASSERT_TRUE(Eventually([&] { return pool.counts().idle == 3; }));
  // Each woken sink: one turn, which writes and reaches the log's end.
  EXPECT_EQ(pool.counts().turns - before, 2u) << "a sink of tenant 9 was woken";
  // A TRUNCATE (the shared bucket) wakes every sink with a tenant list.
  const uint64_t before_shared = pool.counts().turns;
  wakeups.Wake(Ingest::Appended{.any = true, .shared = true});
  ASSERT_TRUE(Eventually(
      [&] { return pool.counts().idle == 3 && pool.counts().turns - before_shared >= 3; }));
  EXPECT_EQ(pool.counts().turns - before_shared, 3u);
  for (auto* r : {seven.get(), nine.get(), all.get()}) r->Stop();
}

}  // namespace
}  // namespace pgfanout
