// Sink runners on a shared delivery pool: idle close, wake-ups by tenant, and the cap on
// target connections.
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

// A sink that, at its first write, asks for public.users to be copied again (as the
// Postgres sink does when it adds a column the source added to a table holding rows).
class RefillingSink final : public Sink {
 public:
  Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                             const Lineage& lineage) override {
    return inner_.Open(stored, lineage);
  }
  Result<std::string> Write(std::span<const ChangeEvent> events) override {
    if (!asked_) {
      asked_ = true;
      if (auto r = request_("public.users"); !r) return r.error();
    }
    return inner_.Write(events);
  }
  void SetBackfillRequest(BackfillRequest request) override { request_ = std::move(request); }
  void Stop() override { inner_.Stop(); }

 private:
  MemorySink inner_;
  BackfillRequest request_;
  bool asked_ = false;
};

// The copy a batch asks for runs right after it, not when the sink next has an event (or
// its idle_close timer fires): until it runs, the target's rows lack the new column.
TEST_F(SinkRunnerPoolTest, ACopyABatchAsksForRunsWithoutWaitingForAnotherEvent) {
  auto runner = Runner(Config("s7", {"7"}), std::make_unique<RefillingSink>());
  runner->SetIdleClose(milliseconds(60'000));
  std::atomic<int> copies = 0;
  runner->SetBackfill([&](Sink&, const std::function<bool()>&,
                          const SinkRunner::CopyAsk& ask) -> Result<std::optional<Lsn>> {
    const auto& tables = ask.tables;
    if (tables == std::vector<std::string>{"public.users"}) ++copies;
    return std::optional<Lsn>();
  });
  Append({"7"});
  runner->Start();
  EXPECT_TRUE(Eventually([&] { return copies == 1; })) << "the copy waits for the next event";
  runner->Stop();
}

// Counts the target connections a set of sinks holds at once (Open() to Stop()).
struct Connections {
  std::atomic<int> open = 0;
  std::atomic<int> most = 0;
};

class CountedSink final : public Sink {
 public:
  explicit CountedSink(Connections& c) : c_(c) {}
  Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                             const Lineage& lineage) override {
    const int n = ++c_.open;
    for (int m = c_.most; n > m && !c_.most.compare_exchange_weak(m, n);) {
    }
    return inner_.Open(stored, lineage);
  }
  Result<std::string> Write(std::span<const ChangeEvent> events) override {
    std::this_thread::sleep_for(milliseconds(1));  // a target's commit: turns overlap
    return inner_.Write(events);
  }
  void Stop() override {
    --c_.open;
    inner_.Stop();
  }
  const MemorySink& inner() const { return inner_; }

 private:
  Connections& c_;
  MemorySink inner_;
};

// delivery.max_connections: 12 sinks, 3 connections. Every sink gets all its events, never
// more than 3 are open, and sinks caught up (which would keep theirs for idle_close, a
// minute) give them up to the sinks that come to wait.
TEST_F(SinkRunnerPoolTest, SinksShareTheCappedTargetConnections) {
  constexpr int kSinks = 12, kRounds = 3;
  DeliveryPool pool(4);
  ConnectionBudget budget(3);
  Connections conns;
  std::vector<std::unique_ptr<SinkRunner>> runners;
  std::vector<const CountedSink*> sinks;
  std::vector<std::optional<std::string>> every_tenant;
  for (int i = 0; i < kSinks; ++i) {
    auto sink = std::make_unique<CountedSink>(conns);
    sinks.push_back(sink.get());
    runners.push_back(
        Runner(Config("s" + std::to_string(i), {std::to_string(i)}), std::move(sink)));
    runners.back()->SetIdleClose(milliseconds(60'000));
    runners.back()->SetConnectionBudget(&budget);
    every_tenant.push_back(std::to_string(i));
  }
  SinkWakeups wakeups;
  std::vector<SinkRunner*> raw;
  for (auto& r : runners) raw.push_back(r.get());
  wakeups.Set(raw);
  Append(every_tenant);
  // The first three take every permit, catch up, and keep their connections (nobody waits).
  for (int i = 0; i < 3; ++i) runners[i]->Start(&pool);
  ASSERT_TRUE(Eventually([&] { return pool.counts().idle == 3; }));
  EXPECT_EQ(budget.counts().idle, 3u);
  for (int i = 3; i < kSinks; ++i) runners[i]->Start(&pool);
  // Events for the others only: nothing but the budget's asking wakes the first three.
  const std::vector<std::optional<std::string>> others(every_tenant.begin() + 3,
                                                       every_tenant.end());
  for (int round = 1; round < kRounds; ++round) {
    Append(others);
    Ingest::Appended appended{.any = true};
    for (int i = 3; i < kSinks; ++i) appended.tenants.push_back(std::to_string(i));
    std::sort(appended.tenants.begin(), appended.tenants.end());
    wakeups.Wake(appended);
  }
  for (int i = 0; i < kSinks; ++i) {
    const size_t want = i < 3 ? 1 : kRounds;
    EXPECT_TRUE(sinks[i]->inner().WaitForEvents(want, kDeadline))
        << "sink " << i << " got " << sinks[i]->inner().ids().size() << " of " << want;
  }
  EXPECT_LE(conns.most.load(), 3) << "more target connections than delivery.max_connections";
  EXPECT_GE(conns.most.load(), 2) << "the sinks never overlapped: the test proves nothing";
  EXPECT_LE(budget.counts().open, 3u);
  for (auto& r : runners) r->Stop();
  EXPECT_EQ(budget.counts().open, 0u) << "a stopped sink kept its permit";
  EXPECT_EQ(conns.open.load(), 0);
}

// A sink whose Write() holds until the test lets it go: its runner keeps its connection.
class GatedSink final : public Sink {
 public:
  Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                             const Lineage& lineage) override {
    return inner_.Open(stored, lineage);
  }
  Result<std::string> Write(std::span<const ChangeEvent> events) override {
    writing_ = true;
    while (!open_) std::this_thread::sleep_for(milliseconds(5));
    return inner_.Write(events);
  }
  void Stop() override { inner_.Stop(); }
  void Let() { open_ = true; }
  bool writing() const { return writing_; }
  const MemorySink& inner() const { return inner_; }

 private:
  MemorySink inner_;
  std::atomic<bool> open_{false}, writing_{false};
};

// A sink with no connection to be had shows what it waits for (/status state "waiting"),
// not an error, and stops showing it once it has one.
TEST_F(SinkRunnerPoolTest, ASinkWaitingForAConnectionSaysSo) {
  DeliveryPool pool(2);
  ConnectionBudget budget(1);
  auto gated = std::make_unique<GatedSink>();
  GatedSink& holder = *gated;
  auto second = std::make_unique<MemorySink>();
  MemorySink& waiter = *second;
  auto a = Runner(Config("a", {"7"}), std::move(gated));
  auto b = Runner(Config("b", {"8"}), std::move(second));
  for (auto* r : {a.get(), b.get()}) r->SetConnectionBudget(&budget);
  // Opened before the runners stop, also when an assertion below returns early.
  struct LetGo {
    GatedSink& sink;
    ~LetGo() { sink.Let(); }
  } let_go{holder};
  Append({"7", "8"});
  a->Start(&pool);
  ASSERT_TRUE(Eventually([&] { return holder.writing(); }));
  b->Start(&pool);
  ASSERT_TRUE(Eventually([&] { return !b->status().waiting_for.empty(); }))
      << "b never said it waits";
  EXPECT_NE(b->status().waiting_for.find("delivery.max_connections"), std::string::npos)
      << b->status().waiting_for;
  EXPECT_TRUE(b->status().last_error.empty()) << "waiting is not an error";
  EXPECT_TRUE(a->status().waiting_for.empty());
  holder.Let();
  ASSERT_TRUE(waiter.WaitForEvents(1, kDeadline));
  EXPECT_TRUE(b->status().waiting_for.empty()) << "still shown waiting once it had one";
  for (auto* r : {a.get(), b.get()}) r->Stop();
}

}  // namespace
}  // namespace pgfanout
