// The signal table's requests: taken out of the group commit they came in, queued in
// commit order and stored, handed on in order with a busy sink holding up only its own.
#include "src/pipeline/signal_queue.h"

#include <gtest/gtest.h>

#include "checkpoints/memory_event_log.h"

namespace pgfanout {
namespace {

std::shared_ptr<const TableSchema> SignalSchema() {
  static auto schema = std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{44},
                  .schema_name = "ops",
                  .table_name = "signals",
                  .columns = {{.name = "id", .part_of_key = true},
                              {.name = "sink_id"},
                              {.name = "table_name"},
                              {.name = "replace"},
                              {.name = "requested_at"}}});
  return schema;
}

std::shared_ptr<const TableSchema> UsersSchema() {
  static auto schema = std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{43},
                  .schema_name = "public",
                  .table_name = "users",
                  .columns = {{.name = "id", .part_of_key = true}}});
  return schema;
}

Datum Text(std::string s) { return Datum{ValueKind::kText, std::move(s)}; }
EventId At(uint64_t lsn, uint32_t ordinal = 0) { return EventId{Lsn(lsn), ordinal}; }

ChangeEvent Signal(EventId id, const std::string& sink, std::optional<std::string> table,
                   const char* replace = "t", Op op = Op::kInsert) {
  return ChangeEvent{.id = id,
                     .op = op,
                     .table = SignalSchema(),
                     .new_row = {Text("1"), Text(sink), table ? Text(*table) : Datum{},
                                 Text(replace), Text("2026-12-06")}};
}

std::vector<std::string> Sinks(const std::vector<SignalQueue::Request>& requests) {
  std::vector<std::string> out;
  for (const auto& r : requests) out.push_back(r.sink_id);
  return out;
}

TEST(SignalQueueTest, InsertsAreTakenOutQueuedInCommitOrderAndStored) {
  MemoryEventLog log;
  SignalQueue queue("ops", "signals");
  std::vector<TransactionRecord> txs = {
      {.commit_lsn = Lsn(20),
       .events = {ChangeEvent{.id = At(20), .table = UsersSchema()},
                  Signal(At(20, 1), "a", "public.users", "f"),
                  Signal(At(20, 2), "b", std::nullopt, "t", Op::kUpdate)}},
      {.commit_lsn = Lsn(30), .events = {Signal(At(30), "b", std::nullopt)}}};
  ASSERT_TRUE(queue.BeforeAppend(txs, log).has_value());
  ASSERT_EQ(txs[0].events.size(), 1u) << "only the data event stays";
  EXPECT_EQ(txs[0].events[0].table, UsersSchema());
  EXPECT_TRUE(txs[1].events.empty());
  ASSERT_EQ(queue.pending(), 2u) << "the UPDATE asks nothing";

  auto stored = meta::Load(log, meta::SignalsKey()).value();
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->applied, At(30));
  ASSERT_EQ(stored->pending.size(), 2u);
  EXPECT_EQ(stored->pending[0],
            (SignalQueue::Request{
                .id = At(20, 1), .sink_id = "a", .table = "public.users", .replace = false}));
  EXPECT_EQ(stored->pending[1], (SignalQueue::Request{.id = At(30), .sink_id = "b"}));

  // The server sends the same rows again after a restart: they were taken.
  SignalQueue restarted("ops", "signals");
  ASSERT_TRUE(restarted.Load(log).has_value());
  std::vector<TransactionRecord> again = {
      {.commit_lsn = Lsn(30), .events = {Signal(At(30), "b", std::nullopt)}}};
  ASSERT_TRUE(restarted.BeforeAppend(again, log).has_value());
  EXPECT_TRUE(again[0].events.empty());
  EXPECT_EQ(restarted.pending(), 2u);
}

TEST(SignalQueueTest, ABusySinkHoldsUpOnlyItsOwnLaterRequests) {
  MemoryEventLog log;
  SignalQueue queue("ops", "signals");
  std::vector<TransactionRecord> txs = {
      {.commit_lsn = Lsn(20),
       .events = {Signal(At(20, 0), "a", "t1"), Signal(At(20, 1), "b", "t1"),
                  Signal(At(20, 2), "a", "t2"), Signal(At(20, 3), "gone", "t1"),
                  Signal(At(20, 4), "b", "t2")}}};
  ASSERT_TRUE(queue.BeforeAppend(txs, log).has_value());
  std::vector<SignalQueue::Request> asked;
  auto a_busy = [&](const SignalQueue::Request& r) {
    asked.push_back(r);
    if (r.sink_id == "a") return SignalQueue::Answer::kBusy;
    if (r.sink_id == "gone") return SignalQueue::Answer::kRefused;
    return SignalQueue::Answer::kTaken;
  };
  ASSERT_TRUE(queue.Pump(log, a_busy).has_value());
  EXPECT_EQ(Sinks(asked), (std::vector<std::string>{"a", "b", "gone", "b"}))
      << "a's second request is not asked while its first waits";
  auto stored = meta::Load(log, meta::SignalsKey()).value();
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(Sinks(stored->pending), (std::vector<std::string>{"a", "a"}));
  EXPECT_EQ(stored->pending[1].table, "t2") << "queue order kept";

  asked.clear();
  ASSERT_TRUE(queue
                  .Pump(log,
                        [&](const SignalQueue::Request& r) {
                          asked.push_back(r);
                          return SignalQueue::Answer::kTaken;
                        })
                  .has_value());
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0].table, "t1");
  EXPECT_EQ(asked[1].table, "t2");
  EXPECT_EQ(queue.pending(), 0u);
  EXPECT_TRUE(meta::Load(log, meta::SignalsKey()).value()->pending.empty());
}

}  // namespace
}  // namespace pgfanout
