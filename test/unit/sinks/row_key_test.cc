#include "src/sinks/row_key.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pgfanout::row_key {
namespace {

// (tenant_id, id) is the key; name is not.
std::shared_ptr<const TableSchema> Items() {
  return std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{16384},
                  .schema_name = "public",
                  .table_name = "items",
                  .columns = {{.name = "tenant_id", .type_oid = 25, .part_of_key = true},
                              {.name = "id", .type_oid = 23, .part_of_key = true},
                              {.name = "name", .type_oid = 25}}});
}
const std::vector<size_t> kKey = {0, 1};

Datum T(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }
Datum Toast() { return Datum{ValueKind::kUnchangedToast}; }

ChangeEvent Update(std::vector<Datum> new_row, std::vector<Datum> old_row) {
  return ChangeEvent{.id = EventId{Lsn(0x100), 3},
                     .op = Op::kUpdate,
                     .table = Items(),
                     .new_row = std::move(new_row),
                     .old_row = std::move(old_row)};
}

std::string Encoded(std::vector<Datum> values) {
  std::string out;
  for (const Datum& d : values) Encode(d, out);
  return out;
}

TEST(RowKey, DifferentTuplesNeverEncodeAlike) {
  EXPECT_NE(Encoded({T("ab"), T("c")}), Encoded({T("a"), T("bc")}));
  EXPECT_NE(Encoded({T(""), T("1")}), Encoded({Datum{}, T("1")})) << "empty text is not NULL";
  EXPECT_NE(Encoded({T("1:2")}), Encoded({T("1"), T("2")}));
  EXPECT_EQ(Encoded({T("7"), T("1")}), Encoded({T("7"), T("1")}));
}

TEST(RowKey, AnUpdateMovesOnlyWhenAnOldKeyValueDiffers) {
  NewRowKey key;
  ChangeEvent same = Update({T("t1"), T("1"), T("new")}, {});
  ASSERT_TRUE(OfNewRow(same, kKey, same.new_row, key).has_value());
  EXPECT_FALSE(key.moved) << "no old row: the key did not change";
  EXPECT_EQ(key.encoded, Encoded({T("t1"), T("1")}));

  ChangeEvent moved = Update({T("t2"), T("1"), T("x")}, {T("t1"), T("1"), Datum{}});
  ASSERT_TRUE(OfNewRow(moved, kKey, moved.new_row, key).has_value());
  EXPECT_TRUE(key.moved);
  EXPECT_EQ(key.encoded, Encoded({T("t2"), T("1")}));
  EXPECT_EQ(key.old_encoded, Encoded({T("t1"), T("1")}));

  ChangeEvent null_old = Update({T("t1"), T("1"), T("x")}, {T("t1"), Datum{}, Datum{}});
  ASSERT_TRUE(OfNewRow(null_old, kKey, null_old.new_row, key).has_value());
  EXPECT_FALSE(key.moved) << "a NULL in the old key says nothing";
  EXPECT_TRUE(key.old_encoded.empty());
}

TEST(RowKey, AnUnsentKeyValueComesFromTheOldRow) {
  ChangeEvent e = Update({Toast(), T("1"), T("x")}, {T("t1"), T("1"), Datum{}});
  std::vector<Datum> row = e.new_row;
  NewRowKey key;
  ASSERT_TRUE(OfNewRow(e, kKey, row, key).has_value());
  EXPECT_EQ(row[0], T("t1")) << "the row is completed in place";
  EXPECT_FALSE(key.moved);
  EXPECT_EQ(key.encoded, Encoded({T("t1"), T("1")}));

  ChangeEvent no_old = Update({Toast(), T("1"), T("x")}, {});
  auto r = OfNewRow(no_old, kKey, no_old.new_row, key);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(r.error().message.find("UPDATE at 0/100#3 carries no value for key column "
                                   "\"tenant_id\""),
            std::string::npos)
      << r.error().message;
}

TEST(RowKey, ADeleteNeedsEveryKeyValue) {
  ChangeEvent e{.id = EventId{Lsn(0x100), 0},
                .op = Op::kDelete,
                .table = Items(),
                .old_row = {T("t1"), T("9"), Datum{}}};
  std::string key;
  ASSERT_TRUE(OfDelete(e, kKey, key).has_value());
  EXPECT_EQ(key, Encoded({T("t1"), T("9")}));
  e.old_row[1] = Datum{};
  auto r = OfDelete(e, kKey, key);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("DELETE"), std::string::npos);
  EXPECT_NE(r.error().message.find("\"id\""), std::string::npos);
}

TEST(RowKey, OldValueFallsBackToTheNewRowWhereNoneWasSent) {
  ChangeEvent e = Update({T("t2"), T("1"), T("x")}, {T("t1"), Datum{}, Datum{}});
  EXPECT_EQ(OldValue(e, e.new_row, 0), T("t1"));
  EXPECT_EQ(OldValue(e, e.new_row, 1), T("1"));
}

}  // namespace
}  // namespace pgfanout::row_key
