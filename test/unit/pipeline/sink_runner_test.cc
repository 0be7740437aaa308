#include "checkpoints/meta_records.h"
#include "test/unit/pipeline/sink_runner_fixture.h"

namespace pgfanout {
namespace {

TEST_F(SinkRunnerTest, DeliversInOrderAndStoresCursorPastFilteredTail) {
  auto a = Append({"7", "9", "7"});
  auto b = Append({"7"});
  auto owned = std::make_unique<MemorySink>();
  MemorySink& sink = *owned;
  auto runner = Runner(Config("s7", {"7"}, /*batch_size=*/2), std::move(owned));
  runner->Start();
  ASSERT_TRUE(sink.WaitForEvents(3, kDeadline));

  auto c = Append({"7", std::nullopt});
  auto d = Append({"9", "9"});  // the newest events are all for another tenant
  runner->Notify();
  ASSERT_TRUE(Eventually([&] { return At(*runner, d[1]); })) << runner->status().last_error;

  EXPECT_EQ(sink.ids(), (std::vector<EventId>{a[0], a[2], b[0], c[0]}));
  for (const ChangeEvent& e : sink.events()) EXPECT_EQ(e.tenant, "7");
  EXPECT_EQ(Stored("s7"), (SinkCursor{.applied = d[1], .token = "4"}))
      << "the cursor covers the skipped events and keeps the last write's token";
  EXPECT_EQ(runner->status().events_delivered, 4u);
  EXPECT_EQ(runner->status().last_error, "");
}

TEST_F(SinkRunnerTest, RunnersOnOneLogSeeOnlyTheirOwnTenants) {
  auto ids = Append({"7", "9", std::nullopt, "9", "7"});
  auto seven = std::make_unique<MemorySink>();
  auto nine = std::make_unique<MemorySink>();
  MemorySink& seven_sink = *seven;
  MemorySink& nine_sink = *nine;
  auto r7 = Runner(Config("t7", {"7"}), std::move(seven));
  auto r9 = Runner(Config("t9", {"9"}), std::move(nine));
  r7->Start();
  r9->Start();
  ASSERT_TRUE(Eventually([&] { return At(*r7, ids[4]) && At(*r9, ids[4]); }));
  EXPECT_EQ(seven_sink.ids(), (std::vector<EventId>{ids[0], ids[4]}));
  EXPECT_EQ(nine_sink.ids(), (std::vector<EventId>{ids[1], ids[3]}));
}

TEST_F(SinkRunnerTest, RetriesSinkErrorsAndDeliversEachEventOnce) {
  auto a = Append({"7", "7"});
  auto b = Append({"7"});
  auto inner = std::make_unique<MemorySink>();
  MemorySink& sink = *inner;
  auto faulty = std::make_unique<FaultySink>(
      FaultySink::Faults{.fail_writes = 2, .write_error = ErrorKind::kSink}, std::move(inner));
  FaultySink& faults = *faulty;
  auto runner = Runner(Config("s", {"*"}), std::move(faulty));
  runner->Start();
  ASSERT_TRUE(Eventually([&] { return At(*runner, b[0]); })) << runner->status().last_error;

  EXPECT_EQ(sink.ids(), (std::vector<EventId>{a[0], a[1], b[0]}));
  EXPECT_EQ(faults.failed_writes(), 2);
  EXPECT_EQ(sink.opens().size(), 3u) << "reopened from the stored cursor after each failure";
  EXPECT_EQ(Stored("s"), (SinkCursor{.applied = b[0], .token = "3"}));
  auto status = runner->status();
  EXPECT_EQ(status.last_error, "") << "cleared once a write succeeded";
  EXPECT_FALSE(status.stopped);
}

TEST_F(SinkRunnerTest, CursorIsNotStoredPastAFailingWrite) {
  auto a = Append({"7", "7"});
  {
    auto runner = Runner(Config("s", {"*"}), std::make_unique<MemorySink>());
    runner->Start();
    ASSERT_TRUE(Eventually([&] { return At(*runner, a[1]); }));
  }
  const std::optional<SinkCursor> durable = Stored("s");
  ASSERT_EQ(durable, (SinkCursor{.applied = a[1], .token = "2"}));

  Append({"7"});
  auto inner = std::make_unique<MemorySink>();
  MemorySink& sink = *inner;
  auto faulty =
      std::make_unique<FaultySink>(FaultySink::Faults{.fail_writes = INT_MAX}, std::move(inner));
  FaultySink& faults = *faulty;
  auto runner = Runner(Config("s", {"*"}), std::move(faulty));
  runner->Start();
  ASSERT_TRUE(Eventually([&] { return faults.failed_writes() >= 2; }));

  EXPECT_EQ(Stored("s"), durable);
  auto status = runner->status();
  EXPECT_EQ(status.cursor, a[1]);
  EXPECT_EQ(status.last_error, FaultySink::kWriteMessage);
  EXPECT_FALSE(status.stopped) << "a sink error is retried, not given up on";
  EXPECT_TRUE(sink.ids().empty());
}

TEST_F(SinkRunnerTest, RestartedRunnerResumesAfterStoredCursor) {
  auto a = Append({"7", "7"});
  {
    auto runner = Runner(Config("s", {"*"}), std::make_unique<MemorySink>());
    runner->Start();
    ASSERT_TRUE(Eventually([&] { return At(*runner, a[1]); }));
  }
  auto b = Append({"7"});
  auto owned = std::make_unique<MemorySink>();
  MemorySink& sink = *owned;
  auto runner = Runner(Config("s", {"*"}), std::move(owned));
  runner->Start();
  ASSERT_TRUE(Eventually([&] { return At(*runner, b[0]); }));
  EXPECT_EQ(sink.ids(), std::vector<EventId>{b[0]});
  ASSERT_EQ(sink.opens().size(), 1u);
  EXPECT_EQ(sink.opens()[0], (SinkCursor{.applied = a[1], .token = "2"}));
}

TEST_F(SinkRunnerTest, MismatchStopsOnlyThatSink) {
  auto a = Append({"7", "9"});
  auto broken_inner = std::make_unique<MemorySink>();
  MemorySink& broken_sink = *broken_inner;
  auto faulty = std::make_unique<FaultySink>(
      FaultySink::Faults{.fail_writes = 1, .write_error = ErrorKind::kMismatch},
      std::move(broken_inner));
  FaultySink& faults = *faulty;
  auto healthy = std::make_unique<MemorySink>();
  MemorySink& healthy_sink = *healthy;
  auto broken = Runner(Config("broken", {"*"}), std::move(faulty));
  auto fine = Runner(Config("fine", {"*"}), std::move(healthy));
  broken->Start();
  fine->Start();
  ASSERT_TRUE(Eventually([&] { return broken->status().stopped && At(*fine, a[1]); }));
  EXPECT_EQ(broken->status().last_error, FaultySink::kWriteMessage);

  auto b = Append({"7"});
  broken->Notify();
  fine->Notify();
  ASSERT_TRUE(Eventually([&] { return At(*fine, b[0]); }));
  EXPECT_EQ(healthy_sink.ids(), (std::vector<EventId>{a[0], a[1], b[0]}));
  EXPECT_EQ(faults.write_calls(), 1) << "a stopped sink is not retried";
  EXPECT_TRUE(broken_sink.ids().empty());
  EXPECT_EQ(Stored("broken"), std::nullopt);
  EXPECT_TRUE(broken->status().stopped);
}

TEST_F(SinkRunnerTest, MismatchOnOpenStopsTheSinkBeforeAnyWrite) {
  Append({"7"});
  auto faulty = std::make_unique<FaultySink>(
      FaultySink::Faults{.fail_opens = INT_MAX, .open_error = ErrorKind::kMismatch},
      std::make_unique<MemorySink>());
  FaultySink& faults = *faulty;
  auto runner = Runner(Config("s", {"*"}), std::move(faulty));
  runner->Start();
  ASSERT_TRUE(Eventually([&] { return runner->status().stopped; }));
  EXPECT_EQ(runner->status().last_error, FaultySink::kOpenMessage);
  EXPECT_EQ(faults.open_calls(), 1);
  EXPECT_EQ(faults.write_calls(), 0);
  EXPECT_EQ(Stored("s"), std::nullopt);
}

TEST_F(SinkRunnerTest, RunUntilStopsAtTheTarget) {
  auto a = Append({"7", "7"});
  auto b = Append({"7", "7"});
  Append({"7", "7"});
  auto owned = std::make_unique<MemorySink>();
  MemorySink& sink = *owned;
  auto runner = Runner(Config("s", {"*"}, /*batch_size=*/2), std::move(owned));
  auto done = runner->RunUntil(b[1]);
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(sink.ids(), (std::vector<EventId>{a[0], a[1], b[0], b[1]}));
  EXPECT_EQ(runner->status().cursor, b[1]);
  EXPECT_EQ(Stored("s"), (SinkCursor{.applied = b[1], .token = "4"}));
}

using TempDir = ::pgfanout::testing::TempDir;

// A tenant's JSONL sink whose first events were all another tenant's: its cursor moved on
// before the sink wrote a byte. After a restart it must still open and deliver.
TEST_F(SinkRunnerTest, JsonlSinkThatSkippedEverythingSoFarRestarts) {
  TempDir dir;
  const std::string path = dir.path() + "/t9.jsonl";
  auto a = Append({"7", "7"});
  {
    auto runner = Runner(Config("t9", {"9"}), std::make_unique<JsonlSink>(path));
    runner->Start();
    ASSERT_TRUE(Eventually([&] { return At(*runner, a[1]); }));
  }
  auto b = Append({"9"});
  auto runner = Runner(Config("t9", {"9"}), std::make_unique<JsonlSink>(path));
  runner->Start();
  ASSERT_TRUE(Eventually([&] { return At(*runner, b[0]); })) << runner->status().last_error;
  runner->Stop();
  std::ifstream in(path);
  std::string line, rest;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_NE(line.find("\"id\":\"" + b[0].ToString() + "\""), std::string::npos) << line;
  EXPECT_FALSE(std::getline(in, rest)) << "one line only, got also: " << rest;
}

// A destination that stores its position beside its rows (Postgres, ClickHouse) is ahead
// of the cursor after a crash between its commit and the cursor store: the runner resumes
// there, because its own log wrote that position.
TEST_F(SinkRunnerTest, ResumesFromADestinationPositionItsOwnLogWrote) {
  auto a = Append({"7", "7"});
  auto b = Append({"7"});
  ASSERT_TRUE(log_->StoreCursor("s7", SinkCursor{.applied = a[0]}).has_value());
  auto owned = std::make_unique<MemorySink>();
  MemorySink& sink = *owned;
  sink.SetPosition(TargetPosition{.applied = a[1], .lineage = LineageOf(*log_)});
  auto runner = Runner(Config("s7", {"7"}), std::move(owned));
  bool replaced = true;
  runner->SetBackfill([&](Sink&, const std::function<bool()>&,
                          const SinkRunner::CopyAsk& ask) -> Result<std::optional<Lsn>> {
    const bool replace = ask.replace;
    replaced = replace;
    return std::optional<Lsn>();
  });
  runner->Start();
  ASSERT_TRUE(sink.WaitForEvents(1, kDeadline)) << runner->status().last_error;
  ASSERT_TRUE(Eventually([&] { return At(*runner, b[0]); }));
  EXPECT_EQ(sink.ids(), std::vector<EventId>{b[0]}) << "nothing the destination holds again";
  EXPECT_FALSE(replaced) << "a trusted position asks for no copy";
  ASSERT_FALSE(sink.lineages().empty());
  EXPECT_EQ(sink.lineages()[0], LineageOf(*log_)) << "the sink writes under this log's lineage";
}

// The position a destination holds was written by another event log: a new state dir (or
// another slot, another cluster). Its numbers mean nothing here, so the runner neither
// resumes from it nor trusts the rows: it asks for a copy that replaces them.
TEST_F(SinkRunnerTest, APositionAnotherLogWroteIsNotTrustedAndTheRowsAreReplaced) {
  auto a = Append({"7"});
  Lineage foreign = LineageOf(*log_);
  foreign.log_id = "another state dir";
  auto check = [&](std::optional<SinkCursor> stored, TargetPosition theirs, bool want_replace,
                   const std::string& why) {
    SCOPED_TRACE(why);
    auto log = NewMemoryEventLog();
    Identify(*log);
    if (stored) {
      ASSERT_TRUE(log->StoreCursor("s7", *stored).has_value());
    }
    if (theirs.lineage && theirs.lineage->log_id == "ours") theirs.lineage = LineageOf(*log);
    auto owned = std::make_unique<MemorySink>();
    owned->SetPosition(theirs);
    SinkRunner runner(Config("s7", {"7"}), tables_, std::move(owned), *log, [](const Error&) {});
    std::optional<bool> replace;
    runner.SetBackfill([&](Sink&, const std::function<bool()>&,
                           const SinkRunner::CopyAsk& ask) -> Result<std::optional<Lsn>> {
      const bool r = ask.replace;
      replace = r;
      return std::optional<Lsn>();
    });
    runner.Start();
    ASSERT_TRUE(Eventually([&] { return replace.has_value(); })) << runner.status().last_error;
    runner.Stop();
    EXPECT_EQ(*replace, want_replace);
    auto cursor = log->LoadCursor("s7");
    ASSERT_TRUE(cursor.has_value());
    if (!want_replace) return;
    EXPECT_EQ(cursor.value(), stored) << "an untrusted position never becomes the cursor";
  };
  const EventId far{Lsn(0x900000), 5};
  check(std::nullopt, {.applied = far, .lineage = foreign}, true, "another log, new state dir");
  check(SinkCursor{.applied = a[0]}, {.applied = far, .lineage = foreign}, true,
        "another log, though this state dir knows the sink");
  check(std::nullopt, {.applied = far}, true, "no lineage (0.1) and no cursor here");
  check(SinkCursor{.applied = a[0]}, {.applied = far}, false, "no lineage, the cursor vouches");
  check(std::nullopt, {.applied = far, .lineage = Lineage{.log_id = "ours"}}, false,
        "this log wrote it");
}

// Under source.confirm: sinks the slot vouches for a destination's position: it was never
// confirmed past it, so a standby's new state dir (or a stale one) still gets every change
// after it and resumes there. Only when both sides ran so: a position written under
// confirm: log may have been passed by the slot, and one of another slot or cluster
// numbers other changes.
TEST_F(SinkRunnerTest, UnderConfirmSinksAPositionAnotherStateDirWroteIsResumed) {
  Lineage theirs_vouched = LineageOf(*log_).WithSlotVouching();
  theirs_vouched.log_id = std::string(Lineage::kSlotVouches) + "the lost machine's log";
  Lineage theirs_plain = theirs_vouched;
  theirs_plain.log_id = "the lost machine's log";
  Lineage other_slot = theirs_vouched;
  other_slot.slot = "another_slot";
  Lineage other_timeline = theirs_vouched;
  other_timeline.timeline = 2;  // the source failed over since: maybe another history
  const EventId far{Lsn(0x900000), 5};
  auto check = [&](bool ours_vouches, const Lineage& theirs, bool want_replace,
                   const std::string& why) {
    SCOPED_TRACE(why);
    auto log = NewMemoryEventLog();
    Identify(*log);
    auto owned = std::make_unique<MemorySink>();
    MemorySink& sink = *owned;
    owned->SetPosition(TargetPosition{.applied = far, .lineage = theirs});
    SinkRunner runner(Config("s7", {"7"}), tables_, std::move(owned), *log, [](const Error&) {});
    runner.SetSlotVouches(ours_vouches);
    std::optional<bool> replace;
    runner.SetBackfill([&](Sink&, const std::function<bool()>&,
                           const SinkRunner::CopyAsk& ask) -> Result<std::optional<Lsn>> {
      const bool r = ask.replace;
      replace = r;
      return std::optional<Lsn>();
    });
    runner.Start();
    ASSERT_TRUE(Eventually([&] { return replace.has_value(); })) << runner.status().last_error;
    runner.Stop();
    EXPECT_EQ(*replace, want_replace);
    ASSERT_FALSE(sink.lineages().empty());
    EXPECT_EQ(sink.lineages()[0].SlotVouches(), ours_vouches)
        << "the sink writes under the lineage of the mode it runs in";
    auto cursor = log->LoadCursor("s7");
    ASSERT_TRUE(cursor.has_value());
    if (want_replace) {
      EXPECT_FALSE(cursor.value().has_value()) << "an untrusted position never becomes the cursor";
    } else {
      ASSERT_TRUE(cursor.value().has_value());
      EXPECT_EQ(cursor.value()->applied, far) << "resumed from the destination's position";
    }
  };
  check(true, theirs_vouched, false, "both under confirm: sinks, same cluster and slot");
  check(true, theirs_plain, true, "written under confirm: log: the slot may have passed it");
  check(false, theirs_vouched, true, "this state dir runs confirm: log");
  check(true, other_slot, true, "another slot");
  check(true, other_timeline, true, "another timeline");
}

// This log wrote the position, but retention has since trimmed events after it: resuming
// there would skip them.
TEST_F(SinkRunnerTest, APositionBehindWhatRetentionTrimmedIsNotTrusted) {
  auto a = Append({"7"});
  auto b = Append({"7"});
  ASSERT_TRUE(meta::Store(*log_, meta::TrimmedThroughKey(), meta::TrimMark{b[0]}).has_value());
  auto owned = std::make_unique<MemorySink>();
  owned->SetPosition(TargetPosition{.applied = a[0], .lineage = LineageOf(*log_)});
  auto runner = Runner(Config("s7", {"7"}), std::move(owned));
  std::optional<bool> replace;
  runner->SetBackfill([&](Sink&, const std::function<bool()>&,
                          const SinkRunner::CopyAsk& ask) -> Result<std::optional<Lsn>> {
    const bool r = ask.replace;
    replace = r;
    return std::optional<Lsn>();
  });
  runner->Start();
  ASSERT_TRUE(Eventually([&] { return replace.has_value(); }));
  runner->Stop();
  EXPECT_TRUE(*replace);
}

TEST_F(SinkRunnerTest, SinkBehindWhatRetentionDroppedStopsInsteadOfSkipping) {
  auto a = Append({"7"});
  auto b = Append({"7"});
  auto c = Append({"7"});
  ASSERT_TRUE(log_->StoreCursor("s", SinkCursor{.applied = a[0], .token = "1"}));
  // Retention (log.lagging_sinks: drop) trimmed through b, which this sink never took.
  ASSERT_TRUE(meta::Store(*log_, meta::TrimmedPastKey("s"), meta::TrimMark{b[0]}));
  auto owned = std::make_unique<MemorySink>();
  MemorySink& sink = *owned;
  auto runner = Runner(Config("s", {"*"}), std::move(owned));
  runner->Start();
  ASSERT_TRUE(Eventually([&] { return runner->status().stopped; }));
  EXPECT_NE(runner->status().last_error.find("fell behind the event log's retention"),
            std::string::npos)
      << runner->status().last_error;
  EXPECT_TRUE(sink.ids().empty()) << "nothing after the gap is delivered as if it were whole";
  EXPECT_EQ(Stored("s")->applied, a[0]);
  // `pgfanout status` (another process) reads why it stopped from the log.
  auto state = meta::Load(*log_, meta::SinkStateKey("s"));
  ASSERT_TRUE(state && state.value());
  EXPECT_TRUE(state.value()->stopped);
  EXPECT_EQ(state.value()->message, runner->status().last_error);
  (void)c;
}

TEST_F(SinkRunnerTest, RetryingSinkRecordsErrorAndRetryTimeThenClearsThem) {
  auto a = Append({"7"});
  auto inner = std::make_unique<MemorySink>();
  auto faulty = std::make_unique<FaultySink>(
      FaultySink::Faults{.fail_writes = 1, .write_error = ErrorKind::kConnection},
      std::move(inner));
  auto runner = Runner(Config("s", {"*"}), std::move(faulty));
  runner->Start();
  ASSERT_TRUE(Eventually([&] { return At(*runner, a[0]); })) << runner->status().last_error;
  auto state = meta::Load(*log_, meta::SinkStateKey("s"));
  ASSERT_TRUE(state.has_value()) << state.error().message;
  EXPECT_FALSE(state.value().has_value()) << "cleared after the successful retry";
}

// A target that accepts connections but fails every write: the reopen before each attempt
// succeeds, and must not start the backoff over (200 ms, 400, 800, … not 200 ms forever).
TEST_F(SinkRunnerTest, ASinkThatOpensButNeverWritesBacksOffFurtherEachTime) {
  Append({"7"});
  auto faulty = std::make_unique<FaultySink>(
      FaultySink::Faults{.fail_writes = INT_MAX, .write_error = ErrorKind::kConnection},
      std::make_unique<MemorySink>());
  FaultySink& sink = *faulty;
  auto runner = Runner(Config("s", {"*"}), std::move(faulty));
  runner->Start();
  std::this_thread::sleep_for(milliseconds(2000));
  runner->Stop();
  // Growing waits (at least half of 200, 400, 800 ms, …) leave room for at most 5 writes in
  // 2 s; a backoff stuck at its first step (100 to 200 ms) makes 10 or more.
  EXPECT_LE(sink.write_calls(), 5) << "the backoff starts over at each reopen";
  EXPECT_GE(sink.write_calls(), 2);
  EXPECT_GE(sink.open_calls(), sink.write_calls()) << "each attempt reopens from the cursor";
}

}  // namespace
}  // namespace pgfanout

namespace pgfanout {
namespace {

using testing::MemorySink;

// A source that holds rows by id: fills unchanged values with "<column>@<id>", reports
// ids in `gone` missing, and fails its first `failures` calls with a lost connection.
class TableFetcher final : public RowFetcher {
 public:
  TableFetcher(std::set<std::string> gone, int failures)
      : gone_(std::move(gone)), failures_(failures) {}
  Result<std::vector<bool>> Fill(std::span<ChangeEvent* const> events) override {
    ++calls_;
    if (failures_-- > 0) return MakeError(ErrorKind::kConnection, "source went away");
    std::vector<bool> found;
    for (ChangeEvent* e : events) {
      const std::string& id = e->new_row[0].text;
      found.push_back(!gone_.count(id));
      for (size_t i = 0; found.back() && i < e->new_row.size(); ++i) {
        if (e->new_row[i].kind == ValueKind::kUnchangedToast) {
          e->new_row[i] = Datum{ValueKind::kText, e->table->columns[i].name + "@" + id};
        }
      }
    }
    return found;
  }
  std::atomic<int> calls_{0};

 private:
  std::set<std::string> gone_;
  int failures_;
};

// Rows moving from tenant 8 to 7 under a key-only identity, the big column unchanged:
// sink 7 gets inserts whose big value only the source has. The runner fills them, drops the
// one whose row is gone, retries the fetch after a lost connection, and leaves plain
// inserts alone.
TEST(SinkRunnerMovedRowsTest, FillsMovedInRowsFromTheSourceAndDropsGoneOnes) {
  auto log = NewMemoryEventLog();
  Identify(*log);
  auto table = std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{16385},
                  .schema_name = "public",
                  .table_name = "docs",
                  .columns = {{.name = "id", .type_oid = 23, .part_of_key = true},
                              {.name = "tenant_id", .type_oid = 25, .part_of_key = true},
                              {.name = "big", .type_oid = 25}}});
  std::vector<TableConfig> tables = {
      {.schema = "public", .name = "docs", .tenant_column = "tenant_id"}};
  auto text = [](std::string s) { return Datum{ValueKind::kText, std::move(s)}; };
  auto move = [&](std::string id) {
    return ChangeEvent{.op = Op::kUpdate,
                       .table = table,
                       .tenant = "7",
                       .new_row = {text(id), text("7"), Datum{ValueKind::kUnchangedToast}},
                       .old_row = {text(id), text("8"), Datum{}},
                       .old_is_key_only = true};
  };
  TransactionRecord tx{.commit_lsn = Lsn(0x1000), .end_lsn = Lsn(0x1028)};
  tx.events = {move("1"), move("2"),
               ChangeEvent{.op = Op::kInsert,
                           .table = table,
                           .tenant = "7",
                           .new_row = {text("3"), text("7"), text("inline")}}};
  for (uint32_t i = 0; i < tx.events.size(); ++i) tx.events[i].id = EventId{Lsn(0x1000), i};
  ASSERT_TRUE(log->Append(std::span<const TransactionRecord>(&tx, 1)).has_value());

  auto owned = std::make_unique<MemorySink>();
  MemorySink& sink = *owned;
  auto fetcher = std::make_unique<TableFetcher>(std::set<std::string>{"2"}, /*failures=*/1);
  TableFetcher& source = *fetcher;
  SinkRunner runner(SinkConfig{.id = "t7", .tenants = {"7"}}, tables, std::move(owned), *log,
                    [](const Error&) {});
  runner.SetRowFetcher(std::move(fetcher));
  runner.Start();
  ASSERT_TRUE(sink.WaitForEvents(2, kDeadline)) << runner.status().last_error;
  runner.Stop();

  auto events = sink.events();
  ASSERT_EQ(events.size(), 2u) << "the moved row that is gone from the source is dropped";
  EXPECT_EQ(events[0].op, Op::kInsert);
  EXPECT_EQ(events[0].new_row[2], text("big@1")) << "the value came from the source";
  EXPECT_EQ(events[1].new_row[2], text("inline")) << "a plain insert is not looked up";
  EXPECT_EQ(source.calls_, 2) << "one failed call, retried once, then one for the batch";
  EXPECT_EQ(runner.status().cursor, (EventId{Lsn(0x1000), 2}));
}

// A row's key changed (the server sent the old key) while a TOASTed value stayed: the
// target may not hold the row at its old key (an insert of it was dropped as gone when it
// moved in and then changed key before this sink read the move), so the runner reads the
// row at its new key. Found: the update carries the value. Gone too: the update is kept as
// it came (the event that took the row away settles it).
TEST(SinkRunnerMovedRowsTest, AKeyChangeWithAnUnchangedToastValueIsReadAtItsNewKey) {
  auto log = NewMemoryEventLog();
  Identify(*log);
  auto table = std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{16385},
                  .schema_name = "public",
                  .table_name = "docs",
                  .columns = {{.name = "id", .type_oid = 23, .part_of_key = true},
                              {.name = "tenant_id", .type_oid = 25, .part_of_key = true},
                              {.name = "big", .type_oid = 25}}});
  std::vector<TableConfig> tables = {
      {.schema = "public", .name = "docs", .tenant_column = "tenant_id"}};
  auto text = [](std::string s) { return Datum{ValueKind::kText, std::move(s)}; };
  auto rekey = [&](std::string from, std::string to) {
    return ChangeEvent{.op = Op::kUpdate,
                       .table = table,
                       .tenant = "9",
                       .new_row = {text(to), text("9"), Datum{ValueKind::kUnchangedToast}},
                       .old_row = {text(from), text("9"), Datum{}},
                       .old_is_key_only = true};
  };
  TransactionRecord tx{.commit_lsn = Lsn(0x1000), .end_lsn = Lsn(0x1028)};
  tx.events = {rekey("1", "2"), rekey("3", "4")};
  for (uint32_t i = 0; i < tx.events.size(); ++i) tx.events[i].id = EventId{Lsn(0x1000), i};
  ASSERT_TRUE(log->Append(std::span<const TransactionRecord>(&tx, 1)).has_value());

  auto owned = std::make_unique<MemorySink>();
  MemorySink& sink = *owned;
  SinkRunner runner(SinkConfig{.id = "t9", .tenants = {"9"}}, tables, std::move(owned), *log,
                    [](const Error&) {});
  runner.SetRowFetcher(std::make_unique<TableFetcher>(std::set<std::string>{"4"}, 0));
  runner.Start();
  ASSERT_TRUE(sink.WaitForEvents(2, kDeadline)) << runner.status().last_error;
  runner.Stop();
  auto events = sink.events();
  ASSERT_EQ(events.size(), 2u) << "an update whose row is gone is not dropped";
  EXPECT_EQ(events[0].op, Op::kUpdate);
  EXPECT_EQ(events[0].new_row[2], text("big@2")) << "read at the new key";
  EXPECT_EQ(events[1].new_row[2].kind, ValueKind::kUnchangedToast) << "gone: kept as it came";
}

// `pgfanout resnapshot`: the runner runs the copy a round at a time and delivers events
// between rounds; each round is told where the stream stands; a second request is refused
// while one runs; the copy's end clears it.
TEST_F(SinkRunnerTest, AResnapshotRunsInRoundsBetweenBatches) {
  auto first = Append({"7"});
  auto owned = std::make_unique<MemorySink>();
  MemorySink& sink = *owned;
  auto runner = Runner(Config("s7", {"7"}), std::move(owned));
  std::mutex mu;
  std::vector<std::optional<EventId>> stream_at;  // per live round
  std::vector<size_t> delivered_at_round;         // events the sink had at each round
  std::atomic<bool> hold{true};                   // the first round waits for the test
  runner->SetBackfill([&](Sink&, const std::function<bool()>& stopping,
                          const SinkRunner::CopyAsk& ask) -> Result<std::optional<Lsn>> {
    if (!ask.live) return std::optional<Lsn>();
    while (hold && !stopping()) std::this_thread::sleep_for(milliseconds(2));
    std::lock_guard lock(mu);
    stream_at.push_back(ask.stream_at);
    delivered_at_round.push_back(sink.ids().size());
    if (stream_at.size() < 4) *ask.unfinished = true;
    if (ask.on_progress) ask.on_progress("round " + std::to_string(stream_at.size()));
    return std::optional<Lsn>(Lsn(1));
  });
  runner->Start();
  ASSERT_TRUE(Eventually([&] { return At(*runner, first[0]); }));
  ASSERT_TRUE(runner->RequestResnapshot({"public.users"}, true, "test").has_value());
  auto again = runner->RequestResnapshot({"public.users"}, true, "test");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind, ErrorKind::kBusy);
  auto stored = meta::Load(*log_, meta::ResnapshotKey("s7")).value();
  ASSERT_TRUE(stored.has_value()) << "stored before the answer";
  EXPECT_EQ(stored->origin, "test");
  // Events appended during the first round reach the sink before the second.
  for (int i = 0; i < 3; ++i) Append({"7"});
  hold = false;
  ASSERT_TRUE(Eventually([&] { return !runner->status().resnapshot.has_value(); }));
  auto last = Append({"7"});
  runner->Notify();
  ASSERT_TRUE(Eventually([&] { return At(*runner, last[0]); }));
  runner->Stop();
  std::lock_guard lock(mu);
  ASSERT_EQ(stream_at.size(), 4u);
  for (const auto& at : stream_at) {
    ASSERT_TRUE(at.has_value()) << "a round between batches is told where the stream is";
  }
  EXPECT_EQ(*stream_at[0], first[0]);
  EXPECT_EQ(delivered_at_round[0], 1u);
  EXPECT_EQ(delivered_at_round[1], 4u) << "the stream went on between the rounds";
  EXPECT_EQ(sink.ids().size(), 5u);
}

// A round refused a backfill slot (kBusy) leaves the runner idle until the admission
// wakes it: it does not ask again turn after turn.
TEST_F(SinkRunnerTest, AResnapshotWaitingForABackfillSlotDoesNotSpin) {
  auto first = Append({"7"});
  auto runner = Runner(Config("s7", {"7"}), std::make_unique<MemorySink>());
  std::atomic<int> asked{0};
  runner->SetBackfill([&](Sink&, const std::function<bool()>&,
                          const SinkRunner::CopyAsk& ask) -> Result<std::optional<Lsn>> {
    if (!ask.live) return std::optional<Lsn>();
    ++asked;
    return MakeError(ErrorKind::kBusy, "waiting for a backfill slot");
  });
  runner->Start();
  ASSERT_TRUE(Eventually([&] { return At(*runner, first[0]); }));
  ASSERT_TRUE(runner->RequestResnapshot({"public.users"}, true, "test").has_value());
  ASSERT_TRUE(Eventually([&] { return asked > 0; }));
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_LE(asked.load(), 3) << "the runner asked for a slot in a loop";
  auto st = runner->status();
  ASSERT_TRUE(st.resnapshot.has_value());
  EXPECT_EQ(st.resnapshot->progress, "waiting for a backfill slot");
  runner->Notify();  // what the admission does when a slot is kept for it
  ASSERT_TRUE(Eventually([&] { return asked > 1; })) << "woken, it asks again";
  runner->Stop();
}

}  // namespace
}  // namespace pgfanout
