#include "src/sinks/clickhouse/change_plan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pgfanout::clickhouse {
namespace {

constexpr uint32_t kInt4 = 23, kText = 25;

std::shared_ptr<const TableSchema> Accounts(bool with_score = false) {
  TableSchema t{.relation_id = RelationId{16384},
                .schema_name = "public",
                .table_name = "accounts",
                .columns = {{.name = "id", .type_oid = kInt4, .part_of_key = true},
                            {.name = "tenant_id", .type_oid = kText},
                            {.name = "name", .type_oid = kText},
                            {.name = "note", .type_oid = kText}}};
  if (with_score) t.columns.push_back({.name = "score", .type_oid = kInt4});
  return std::make_shared<const TableSchema>(std::move(t));
}

Datum T(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }
Datum Null() { return Datum{}; }
Datum Toast() { return Datum{ValueKind::kUnchangedToast}; }

class ClickHouseChangePlan : public ::testing::Test {
 protected:
  ChangeEvent Event(Op op, std::shared_ptr<const TableSchema> table = nullptr) {
    ++lsn_;
    return ChangeEvent{.id = EventId{Lsn(lsn_), 0}, .op = op, .table = table ? table : accounts_};
  }
  ChangeEvent Insert(std::string id, std::string name, Datum note = T("note")) {
    ChangeEvent e = Event(Op::kInsert);
    e.new_row = {T(std::move(id)), T("t1"), T(std::move(name)), std::move(note)};
    return e;
  }
  ChangeEvent Update(std::string id, std::string name, Datum note = Toast()) {
    ChangeEvent e = Event(Op::kUpdate);
    e.new_row = {T(std::move(id)), T("t1"), T(std::move(name)), std::move(note)};
    return e;
  }
  // An UPDATE that changed the key: pgoutput sends the old key ('K').
  ChangeEvent Rekey(std::string from, std::string to, std::string name, Datum note = Toast()) {
    ChangeEvent e = Update(std::move(to), std::move(name), std::move(note));
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

  std::vector<PlanStep> Plan(const std::vector<ChangeEvent>& events) {
    auto steps = PlanChanges(events, keys_);
    EXPECT_TRUE(steps.has_value()) << (steps ? "" : steps.error().message);
    return steps ? std::move(steps).value() : std::vector<PlanStep>{};
  }
  // The rows of a one-step, one-table plan.
  std::vector<PlannedRow> Rows(const std::vector<ChangeEvent>& events) {
    auto steps = Plan(events);
    EXPECT_EQ(steps.size(), 1u);
    if (steps.size() != 1 || steps[0].tables.size() != 1) return {};
    return steps[0].tables[0].rows;
  }

  std::shared_ptr<const TableSchema> accounts_ = Accounts();
  const std::vector<size_t> key_ = {0};
  ShapeKey keys_ = [this](const auto&) -> Result<const std::vector<size_t>*> { return &key_; };
  uint64_t lsn_ = 100;
};

TEST_F(ClickHouseChangePlan, TheLastChangeOfAKeyWinsWithItsVersion) {
  auto rows = Rows({Insert("1", "a"), Insert("2", "b"), Update("1", "a2", T("n2")), Delete("2")});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_FALSE(rows[0].deleted);
  EXPECT_EQ(rows[0].row[2], T("a2"));
  EXPECT_EQ(rows[0].version, Lsn(103));
  EXPECT_TRUE(rows[1].deleted);
  EXPECT_EQ(rows[1].row[0], T("2"));
  EXPECT_EQ(rows[1].version, Lsn(104));
}

TEST_F(ClickHouseChangePlan, AnUnchangedToastValueComesFromAnEarlierChangeInTheBatch) {
  auto rows = Rows({Insert("1", "a", T("big")), Update("1", "a2")});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].row[3], T("big"));
  EXPECT_TRUE(rows[0].toast_from.empty()) << "nothing left to read from the target";
}

TEST_F(ClickHouseChangePlan, AnUnchangedToastValueNotInTheBatchIsReadFromTheTargetRow) {
  auto rows = Rows({Update("1", "a2"), Update("1", "a3")});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].row[3].kind, ValueKind::kUnchangedToast);
  EXPECT_EQ(rows[0].toast_from, (std::vector<Datum>{T("1")}));
}

TEST_F(ClickHouseChangePlan, AKeyChangeDeletesTheOldKeyAndReadsToastFromIt) {
  auto rows = Rows({Rekey("1", "5", "moved")});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[0].deleted);
  EXPECT_EQ(rows[0].row[0], T("1"));
  EXPECT_FALSE(rows[1].deleted);
  EXPECT_EQ(rows[1].row[0], T("5"));
  EXPECT_EQ(rows[1].toast_from, (std::vector<Datum>{T("1")}))
      << "the target still holds the row at its old key when the value is read";
}

TEST_F(ClickHouseChangePlan, AChainOfMovesKeepsReadingFromWhereTheRowStarted) {
  auto rows = Rows({Rekey("1", "5", "m1"), Rekey("5", "9", "m2")});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_TRUE(rows[0].deleted);
  EXPECT_TRUE(rows[1].deleted) << "key 5 lived only inside the batch";
  EXPECT_EQ(rows[2].row[0], T("9"));
  EXPECT_EQ(rows[2].toast_from, (std::vector<Datum>{T("1")}));
}

TEST_F(ClickHouseChangePlan, ADeleteThenInsertOfAKeyLeavesTheInsert) {
  auto rows = Rows({Delete("1"), Insert("1", "again")});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_FALSE(rows[0].deleted);
  EXPECT_EQ(rows[0].row[2], T("again"));
}

TEST_F(ClickHouseChangePlan, TruncateAndNewShapesCutSteps) {
  auto wide = Accounts(/*with_score=*/true);
  std::vector<ChangeEvent> events;
  events.push_back(Insert("1", "a"));
  events.push_back(Event(Op::kTruncate));
  events.push_back(Insert("2", "b"));
  ChangeEvent later = Event(Op::kInsert, wide);
  later.new_row = {T("3"), T("t1"), T("c"), T("n"), T("7")};
  events.push_back(later);
  auto steps = Plan(events);
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[0].tables[0].rows.size(), 1u);
  ASSERT_TRUE(steps[1].truncate);
  EXPECT_EQ(steps[1].truncate->version, events[1].id.commit_lsn);
  EXPECT_EQ(steps[2].tables[0].rows[0].row[0], T("2"));
  EXPECT_EQ(steps[3].tables[0].schema, wide) << "a new shape of a table starts a new step";
  EXPECT_EQ(steps[3].tables[0].first, later.id);
}

TEST_F(ClickHouseChangePlan, ADeleteWithoutItsKeyIsRefused) {
  ChangeEvent e = Event(Op::kDelete);
  e.old_row = {Null(), Null(), Null(), Null()};
  auto steps = PlanChanges(std::vector<ChangeEvent>{e}, keys_);
  ASSERT_FALSE(steps);
  EXPECT_EQ(steps.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(steps.error().message.find("key column \"id\""), std::string::npos);
}

TEST_F(ClickHouseChangePlan, TablesTheSinkDoesNotMapAreSkipped) {
  ShapeKey none = [](const auto&) -> Result<const std::vector<size_t>*> { return nullptr; };
  auto steps = PlanChanges(std::vector<ChangeEvent>{Insert("1", "a")}, none);
  ASSERT_TRUE(steps);
  EXPECT_TRUE(steps.value().empty());
}

}  // namespace
}  // namespace pgfanout::clickhouse
