// Retention over an in-memory log, with real runners: what it may trim and what it must
// keep for each kind of sink.
#include "src/daemon/retention.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "checkpoints/log_identity.h"
#include "checkpoints/meta_records.h"
#include "test/support/memory_sink.h"

namespace pgfanout {

inline void PrintTo(const EventId& id, std::ostream* os) { *os << id.ToString(); }

namespace {

using namespace std::chrono_literals;

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(meta::Store(*log_, meta::SourceKey(),
                            meta::Source{.system_id = "7310000000000000001", .slot = "pgfanout"})
                    .has_value());
  }

  // One transaction of one event for `tenant`, committed `age` ago.
  EventId Append(std::chrono::seconds age, std::string tenant = "7") {
    const auto at = std::chrono::system_clock::now() - age;
    EventId id{Lsn(next_lsn_), 0};
    TransactionRecord tx{.commit_lsn = Lsn(next_lsn_), .end_lsn = Lsn(next_lsn_ + 0x28)};
    tx.events.push_back(ChangeEvent{
        .id = id,
        .commit_time_us =
            std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count(),
        .op = Op::kInsert,
        .table = users_,
        .tenant = tenant,
        .new_row = {Datum{ValueKind::kText, "1"}}});
    next_lsn_ += 0x100;
    EXPECT_TRUE(log_->Append(std::span<const TransactionRecord>(&tx, 1)).has_value());
    return id;
  }

  std::vector<EventId> Retained() {
    std::vector<EventId> ids;
    auto events = log_->Read(EventId{}, 100);
    EXPECT_TRUE(events.has_value());
    for (const auto& e : events.value()) ids.push_back(e.id);
    return ids;
  }

  std::unique_ptr<EventLog> log_ = NewMemoryEventLog();
  std::shared_ptr<const TableSchema> users_ = std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{16384},
                  .schema_name = "public",
                  .table_name = "users",
                  .columns = {{.name = "id", .type_oid = 23, .part_of_key = true}}});
  std::vector<TableConfig> tables_ = {
      TableConfig{.schema = "public", .name = "users", .tenant_column = "tenant_id"}};
  uint64_t next_lsn_ = 0x1000;
};

// log.lagging_sinks: drop trims what a lagging sink has not taken; a new sink still in its
// first copy is not lagging: its stream resumes at the copy's snapshot, at or after the
// log's end when the copy began, so what comes after that stays however old it gets.
TEST_F(RetentionTest, UnderDropASinkInItsFirstCopyKeepsWhatComesAfterItsStart) {
  const EventId old1 = Append(3600s);
  const EventId old2 = Append(3600s);
  std::atomic<bool> copying{false}, release{false};
  SinkRunner runner(SinkConfig{.id = "new", .tenants = {"7"}}, tables_,
                    std::make_unique<testing::MemorySink>(), *log_, [](const Error&) {});
  runner.SetBackfill([&](Sink&, const std::function<bool()>& stopping,
                         const SinkRunner::CopyAsk& ask) -> Result<std::optional<Lsn>> {
    (void)ask;
    copying = true;
    while (!release && !stopping()) std::this_thread::sleep_for(5ms);
    return std::optional<Lsn>();
  });
  runner.Start();
  while (!copying) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(runner.status().holds_after, std::optional<EventId>(old2));
  const EventId during = Append(3600s);  // committed after the copy began; old by now
  const LogConfig config{.retain = 1s, .lagging_sinks = LaggingSinkPolicy::kDrop};
  Retention retention(config, *log_);
  ASSERT_TRUE(retention.Trim({&runner}).has_value());
  EXPECT_EQ(Retained(), std::vector<EventId>{during})
      << "what the copying sink needs stays; what it never will is trimmed";
  release = true;
  runner.Stop();
  (void)old1;
}

// Policy drop, a sink that has a cursor and lags: trimmed past, recorded for it to stop.
TEST_F(RetentionTest, UnderDropALaggingSinkIsTrimmedPastAndTheTrimIsRecorded) {
  const EventId a = Append(3600s);
  const EventId b = Append(3600s);
  ASSERT_TRUE(log_->StoreCursor("lagging", SinkCursor{.applied = EventId{}}).has_value());
  SinkRunner runner(SinkConfig{.id = "lagging", .tenants = {"7"}}, tables_,
                    std::make_unique<testing::MemorySink>(), *log_, [](const Error&) {});
  const LogConfig config{.retain = 1s, .lagging_sinks = LaggingSinkPolicy::kDrop};
  Retention retention(config, *log_);
  ASSERT_TRUE(retention.Trim({&runner}).has_value());
  EXPECT_TRUE(Retained().empty());
  EXPECT_EQ(meta::Load(*log_, meta::TrimmedThroughKey()).value(), meta::TrimMark{b});
  EXPECT_EQ(meta::Load(*log_, meta::TrimmedPastKey("lagging")).value(), meta::TrimMark{b});
  (void)a;
}

// A sink of some tenants that is caught up keeps the cursor of its last read: events of
// other tenants appended since do not move it. It holds none of them (hold), is not marked
// as having lost them (drop), and takes its next event after the trim.
class RetentionIdleTest : public RetentionTest,
                          public ::testing::WithParamInterface<LaggingSinkPolicy> {};

TEST_P(RetentionIdleTest, ACaughtUpSinkOfOtherTenantsHoldsNothingAndStopsForNothing) {
  const EventId first = Append(3600s, "7");
  auto owned = std::make_unique<testing::MemorySink>();
  testing::MemorySink& sink = *owned;
  SinkRunner idle(SinkConfig{.id = "eight", .tenants = {"8"}}, tables_, std::move(owned), *log_,
                  [](const Error&) {});
  idle.Start();
  for (int i = 0; i < 500 && !idle.status().idle; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(idle.status().idle);
  ASSERT_EQ(log_->LoadCursor("eight").value()->applied, first);
  const EventId a = Append(3600s, "7");
  const EventId b = Append(3600s, "7");  // tenant 8's sink is not woken for these
  const LogConfig config{.retain = 1s, .lagging_sinks = GetParam()};
  Retention retention(config, *log_);
  ASSERT_TRUE(retention.Trim({&idle}).has_value());
  // Under hold a cursor keeps its own transaction (a cursor may stand inside one): the
  // caught-up sink stands at the log's last event, b, and keeps b only.
  const bool hold = GetParam() == LaggingSinkPolicy::kHold;
  EXPECT_EQ(Retained(), hold ? std::vector<EventId>{b} : std::vector<EventId>{})
      << "nothing older is kept for a sink of tenant 8";
  EXPECT_EQ(meta::Load(*log_, meta::TrimmedThroughKey()).value(), meta::TrimMark{hold ? a : b});
  EXPECT_FALSE(meta::Load(*log_, meta::TrimmedPastKey("eight")).value().has_value());
  const EventId mine = Append(0s, "8");
  idle.Notify();
  for (int i = 0; i < 500 && sink.ids().empty(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(sink.ids(), std::vector<EventId>{mine});
  EXPECT_FALSE(idle.status().stopped) << idle.status().last_error;
  idle.Stop();
  (void)a;
}

INSTANTIATE_TEST_SUITE_P(Policies, RetentionIdleTest,
                         ::testing::Values(LaggingSinkPolicy::kHold, LaggingSinkPolicy::kDrop),
                         [](const auto& info) {
                           return info.param == LaggingSinkPolicy::kHold ? "Hold" : "Drop";
                         });

}  // namespace
}  // namespace pgfanout
