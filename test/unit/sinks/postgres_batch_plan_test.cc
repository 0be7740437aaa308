#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/sinks/postgres/batch_plan.h"

namespace pgfanout {
namespace {

constexpr uint32_t kInt4 = 23, kText = 25;

std::shared_ptr<const TableSchema> Users(bool with_email = false) {
  TableSchema t{.relation_id = RelationId{16384},
                .schema_name = "public",
                .table_name = "users",
                .columns = {{.name = "id", .type_oid = kInt4, .part_of_key = true},
                            {.name = "tenant_id", .type_oid = kText},
                            {.name = "name", .type_oid = kText},
                            {.name = "bio", .type_oid = kText}}};
  if (with_email) t.columns.push_back({.name = "email", .type_oid = kText});
  return std::make_shared<const TableSchema>(std::move(t));
}

std::shared_ptr<const TableSchema> Teams() {
  return std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{16390},
                  .schema_name = "public",
                  .table_name = "teams",
                  .columns = {{.name = "id", .type_oid = kInt4, .part_of_key = true},
                              {.name = "title", .type_oid = kText}}});
}

Datum T(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }
Datum Null() { return Datum{}; }
Datum Toast() { return Datum{ValueKind::kUnchangedToast}; }

class PostgresBatchPlan : public ::testing::Test {
 protected:
  ChangeEvent Event(Op op, std::shared_ptr<const TableSchema> table = nullptr) {
    ++lsn_;
    return ChangeEvent{.id = EventId{Lsn(lsn_), 0},
                       .xid = Xid{1},
                       .commit_time_us = static_cast<int64_t>(lsn_) * 1000,
                       .op = op,
                       .table = table ? table : users_,
                       .tenant = "7"};
  }
  ChangeEvent Insert(std::string id, std::string name, std::string bio = "bio") {
    ChangeEvent e = Event(Op::kInsert);
    e.new_row = {T(std::move(id)), T("7"), T(std::move(name)), T(std::move(bio))};
    return e;
  }
  ChangeEvent Update(std::string id, std::string name, Datum bio = T("bio")) {
    ChangeEvent e = Event(Op::kUpdate);
    e.new_row = {T(std::move(id)), T("7"), T(std::move(name)), std::move(bio)};
    return e;
  }
  // An UPDATE that changed the key: pgoutput sends the old key ('K').
  ChangeEvent Rekey(std::string from, std::string to, std::string name, Datum bio = T("bio")) {
    ChangeEvent e = Update(std::move(to), std::move(name), std::move(bio));
    e.old_row = {T(std::move(from)), Null(), Null(), Null()};
    e.old_is_key_only = true;
    return e;
  }
  ChangeEvent Delete(std::string id) {
    ChangeEvent e = Event(Op::kDelete);
    e.old_row = {T(std::move(id)), Null(), Null(), Null()};
    e.old_is_key_only = true;
    return e;
  }

  BatchPlan Plan(const std::vector<ChangeEvent>& events) {
    auto plan = PlanBatch(events, keys_);
    EXPECT_TRUE(plan.has_value()) << (plan ? "" : plan.error().message);
    return plan ? std::move(plan).value() : BatchPlan{};
  }

  // The single table's changes of a one-segment plan.
  std::vector<RowChange> Changes(const std::vector<ChangeEvent>& events) {
    BatchPlan plan = Plan(events);
    EXPECT_EQ(plan.segments.size(), 1u);
    if (plan.segments.size() != 1 || plan.segments[0].tables.size() != 1) return {};
    return plan.segments[0].tables[0].changes;
  }

  uint64_t lsn_ = 0x1000;
  std::shared_ptr<const TableSchema> users_ = Users();
  const std::vector<size_t> key_ = {0};
  KeyLookup keys_ =
      [this](const std::shared_ptr<const TableSchema>& t) -> Result<const std::vector<size_t>*> {
    return t->table_name == "skipped" ? nullptr : &key_;
  };
};

TEST_F(PostgresBatchPlan, InsertThenUpdatesBecomeOneUpsertOfTheNewestRow) {
  auto changes = Changes({Insert("1", "ada"), Update("1", "ada l."), Update("1", "ada lovelace")});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, RowChange::Kind::kUpsert);
  EXPECT_EQ(changes[0].row[2], T("ada lovelace"));
  EXPECT_EQ(changes[0].version, Lsn(0x1003)) << "the version is the last change's commit LSN";
  EXPECT_EQ(changes[0].commit_time_us, 0x1003 * 1000);
}

TEST_F(PostgresBatchPlan, InsertUpdateDeleteLeavesOnlyTheDelete) {
  auto changes = Changes({Insert("1", "ada"), Update("1", "bea"), Delete("1")});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, RowChange::Kind::kDelete);
  EXPECT_EQ(changes[0].row[0], T("1"));
  EXPECT_EQ(changes[0].version, Lsn(0x1003));
  // The row as last upserted rides along: a soft-deleting sink writes it marked deleted,
  // as it would have had the insert and the delete come in different batches.
  EXPECT_TRUE(changes[0].whole_row);
  EXPECT_EQ(changes[0].row[2], T("bea"));
}

TEST_F(PostgresBatchPlan, DeleteOfARowNotSeenInTheBatchCarriesItsKeyOnly) {
  auto changes = Changes({Delete("1")});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_FALSE(changes[0].whole_row);
  EXPECT_EQ(changes[0].row[2], Null());
  // Under REPLICA IDENTITY FULL the old row is whole.
  ChangeEvent full = Delete("2");
  full.old_row = {T("2"), T("7"), T("cy"), T("bio")};
  full.old_is_key_only = false;
  changes = Changes({full});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].whole_row);
  EXPECT_EQ(changes[0].row[2], T("cy"));
}

TEST_F(PostgresBatchPlan, DeleteThenReinsertIsAnUpsert) {
  auto changes = Changes({Delete("1"), Insert("1", "again")});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, RowChange::Kind::kUpsert);
  EXPECT_EQ(changes[0].row[2], T("again"));
}

TEST_F(PostgresBatchPlan, KeysStayApartInFirstAppearanceOrder) {
  auto changes = Changes({Insert("2", "b"), Insert("1", "a"), Update("2", "b2"), Delete("3")});
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].row[0], T("2"));
  EXPECT_EQ(changes[0].row[2], T("b2"));
  EXPECT_EQ(changes[1].row[0], T("1"));
  EXPECT_EQ(changes[2].kind, RowChange::Kind::kDelete);
  EXPECT_EQ(changes[2].row[0], T("3"));
}

TEST_F(PostgresBatchPlan, KeyChangeIsDeleteOfTheOldKeyAndUpsertOfTheNew) {
  auto changes = Changes({Rekey("1", "2", "ada")});
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind, RowChange::Kind::kDelete);
  EXPECT_EQ(changes[0].row[0], T("1"));
  EXPECT_EQ(changes[1].kind, RowChange::Kind::kUpsert);
  EXPECT_EQ(changes[1].row[0], T("2"));
  EXPECT_TRUE(changes[1].moved_from.empty()) << "every value was sent: nothing to carry over";
}

TEST_F(PostgresBatchPlan, UpdateWithAnUnchangedOldKeyIsNoKeyChange) {
  ChangeEvent e = Rekey("1", "1", "ada");  // REPLICA IDENTITY FULL sends the old row always
  auto changes = Changes({e});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, RowChange::Kind::kUpsert);
}

TEST_F(PostgresBatchPlan, KeyChangeAndBackAgainEndsWithTheRowAtItsKey) {
  auto changes = Changes({Insert("1", "ada"), Rekey("1", "2", "ada"), Rekey("2", "1", "ada!")});
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind, RowChange::Kind::kUpsert);
  EXPECT_EQ(changes[0].row[0], T("1"));
  EXPECT_EQ(changes[0].row[2], T("ada!"));
  EXPECT_EQ(changes[1].kind, RowChange::Kind::kDelete);
  EXPECT_EQ(changes[1].row[0], T("2"));
}

TEST_F(PostgresBatchPlan, UnchangedToastTakesTheValueOfAnEarlierUpsert) {
  auto changes = Changes({Insert("1", "ada", "a very long bio"), Update("1", "bea", Toast())});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].row[2], T("bea"));
  EXPECT_EQ(changes[0].row[3], T("a very long bio"));
}

TEST_F(PostgresBatchPlan, UnchangedToastWithoutAnEarlierValueStaysUnchanged) {
  auto changes = Changes({Update("1", "bea", Toast()), Update("1", "cid", Toast())});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].row[2], T("cid"));
  EXPECT_EQ(changes[0].row[3].kind, ValueKind::kUnchangedToast) << "the target keeps its value";
  EXPECT_TRUE(changes[0].moved_from.empty());
}

TEST_F(PostgresBatchPlan, UnchangedToastFollowsTheRowToItsNewKey) {
  auto merged = Changes({Insert("1", "ada", "long"), Rekey("1", "2", "ada", Toast())});
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[1].row[3], T("long")) << "taken from the insert of the old key";
  EXPECT_TRUE(merged[1].moved_from.empty());

  auto moved = Changes({Rekey("1", "2", "ada", Toast()), Update("2", "bea", Toast())});
  ASSERT_EQ(moved.size(), 2u);
  EXPECT_EQ(moved[0].kind, RowChange::Kind::kDelete);
  EXPECT_EQ(moved[1].row[3].kind, ValueKind::kUnchangedToast);
  EXPECT_EQ(moved[1].moved_from, std::vector<Datum>{T("1")})
      << "the value is in the target row of the old key";
}

// An update of a row the target holds, then a key change in the same batch, both leaving
// the TOASTed value alone: only the target row at the old key has it (found by the fault
// suite: rows moved between two tenants of one sink lost their value).
TEST_F(PostgresBatchPlan, UnchangedToastOfAnUpdatedRowFollowsItToItsNewKey) {
  auto changes = Changes({Update("1", "bea", Toast()), Rekey("1", "2", "bea", Toast())});
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind, RowChange::Kind::kDelete);
  EXPECT_EQ(changes[1].row[2], T("bea"));
  EXPECT_EQ(changes[1].row[3].kind, ValueKind::kUnchangedToast);
  EXPECT_EQ(changes[1].moved_from, std::vector<Datum>{T("1")})
      << "the value is in the target row of the old key, which the update left in place";
}

TEST_F(PostgresBatchPlan, TruncateCutsTheBatchIntoSegments) {
  ChangeEvent teams = Event(Op::kInsert, Teams());
  teams.new_row = {T("9"), T("team")};
  BatchPlan plan = Plan({Insert("1", "a"), teams, Event(Op::kTruncate), Insert("1", "b")});
  ASSERT_EQ(plan.segments.size(), 3u);
  ASSERT_EQ(plan.segments[0].tables.size(), 2u) << "tables share a segment";
  EXPECT_FALSE(plan.segments[0].truncate);
  ASSERT_TRUE(plan.segments[1].truncate);
  EXPECT_EQ(plan.segments[1].truncate->schema->table_name, "users");
  EXPECT_EQ(plan.segments[1].truncate->version, Lsn(0x1003));
  EXPECT_TRUE(plan.segments[1].tables.empty());
  ASSERT_EQ(plan.segments[2].tables.size(), 1u);
  ASSERT_EQ(plan.segments[2].tables[0].changes.size(), 1u);
  EXPECT_EQ(plan.segments[2].tables[0].changes[0].row[2], T("b"))
      << "the insert after the truncate is not compacted into the one before";
}

TEST_F(PostgresBatchPlan, SchemaChangeCutsTheBatch) {
  ChangeEvent before = Insert("1", "a");
  users_ = Users(/*with_email=*/true);
  ChangeEvent after = Update("1", "a");
  after.new_row.push_back(T("a@example.com"));
  ChangeEvent same_shape_new_pointer = Update("2", "b");
  same_shape_new_pointer.table = Users(true);
  same_shape_new_pointer.new_row.push_back(T("b@example.com"));
  BatchPlan plan = Plan({before, after, same_shape_new_pointer});
  ASSERT_EQ(plan.segments.size(), 2u);
  ASSERT_EQ(plan.segments[0].tables.size(), 1u);
  EXPECT_EQ(plan.segments[0].tables[0].schema->columns.size(), 4u);
  ASSERT_EQ(plan.segments[1].tables.size(), 1u);
  EXPECT_EQ(plan.segments[1].tables[0].schema->columns.size(), 5u);
  EXPECT_EQ(plan.segments[1].tables[0].changes.size(), 2u)
      << "an equal schema in another object is the same shape";
}

TEST_F(PostgresBatchPlan, SkipsTablesTheSinkDoesNotMap) {
  auto skipped = std::make_shared<const TableSchema>(
      TableSchema{.schema_name = "public", .table_name = "skipped", .columns = {{.name = "id"}}});
  ChangeEvent e = Event(Op::kInsert, skipped);
  e.new_row = {T("1")};
  ChangeEvent t = Event(Op::kTruncate, skipped);
  BatchPlan plan = Plan({e, t, Insert("1", "a")});
  ASSERT_EQ(plan.segments.size(), 1u) << "a skipped truncate cuts nothing";
  ASSERT_EQ(plan.segments[0].tables.size(), 1u);
  EXPECT_EQ(plan.segments[0].tables[0].schema->table_name, "users");
}

TEST_F(PostgresBatchPlan, DeleteWithoutTheKeyIsRefused) {
  ChangeEvent e = Event(Op::kDelete);
  e.old_row = {Null(), T("7"), Null(), Null()};
  auto plan = PlanBatch(std::vector<ChangeEvent>{e}, keys_);
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(plan.error().message.find("public.users"), std::string::npos) << plan.error().message;
  EXPECT_NE(plan.error().message.find("\"id\""), std::string::npos) << plan.error().message;
}

TEST_F(PostgresBatchPlan, KeyLookupErrorsComeBack) {
  KeyLookup failing =
      [](const std::shared_ptr<const TableSchema>&) -> Result<const std::vector<size_t>*> {
    return MakeError(ErrorKind::kInvalidArgument, "sink s: table public.users: no key");
  };
  auto plan = PlanBatch(std::vector<ChangeEvent>{Insert("1", "a")}, failing);
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().kind, ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace pgfanout
