#include "checkpoints/event_codec.h"

#include <gtest/gtest.h>

#include <random>

#include "test/unit/checkpoints/test_events.h"

namespace pgfanout::checkpoints_test {
namespace {

// Encodes and decodes `event`, restoring id and table as the log does.
ChangeEvent RoundTrip(const ChangeEvent& event) {
  std::string bytes;
  EncodeEvent(event, event.table->Fingerprint(), bytes);
  ChangeEvent back;
  auto fp = DecodeEvent(bytes, back);
  EXPECT_TRUE(fp.has_value()) << fp.error().message;
  EXPECT_EQ(fp.value(), event.table->Fingerprint());
  back.id = event.id;
  back.table = event.table;
  return back;
}

std::vector<ChangeEvent> EveryOp() {
  auto users = UsersSchema();
  ChangeEvent insert = Insert(users, EventId{Lsn(0x100), 0});
  ChangeEvent update = insert;
  update.op = Op::kUpdate;
  update.old_row = {Text("1"), Datum{}, Datum{}};
  update.old_is_key_only = true;
  update.new_row[2] = Datum{ValueKind::kUnchangedToast, ""};
  update.old_tenant = "6";  // moved from tenant 6 to 7
  ChangeEvent del = insert;
  del.op = Op::kDelete;
  del.new_row.clear();
  del.old_row = {Text("1"), Text("7"), Text("x")};
  del.tenant.reset();
  del.commit_time_us = -1;  // before 1970: zigzag keeps it small and exact
  ChangeEvent truncate = insert;
  truncate.op = Op::kTruncate;
  truncate.new_row.clear();
  truncate.tenant.reset();
  truncate.truncate_flags = kTruncateCascade | kTruncateRestartIdentity;
  truncate.xid = Xid{UINT32_MAX};
  return {insert, update, del, truncate};
}

TEST(EventCodecTest, RoundTripsEveryOp) {
  for (const ChangeEvent& e : EveryOp()) {
    SCOPED_TRACE(static_cast<char>(e.op));
    ExpectSameEvent(RoundTrip(e), e);
  }
}

TEST(EventCodecTest, RoundTripsEveryValueKind) {
  ChangeEvent e = Insert(UsersSchema(), EventId{Lsn(0x100), 0});
  e.new_row = {Datum{},
               Datum{ValueKind::kUnchangedToast, ""},
               Text(""),
               Text("Zoë ☕ 東京 🚀"),
               Text(std::string(300, 'x')),  // length needs a two-byte varint
               Text(std::string("nul\0inside", 10))};
  e.old_row = {Text("")};
  e.tenant = "";  // an empty tenant is a value, unlike no tenant
  ExpectSameEvent(RoundTrip(e), e);
}

TEST(EventCodecTest, AppendsToTheBuffer) {
  ChangeEvent e = Insert(UsersSchema(), EventId{Lsn(0x100), 0});
  std::string bytes = "prefix";
  EncodeEvent(e, 42, bytes);
  ASSERT_EQ(bytes.substr(0, 6), "prefix");
  ChangeEvent back;
  EXPECT_EQ(DecodeEvent(std::string_view(bytes).substr(6), back).value(), 42u);
}

TEST(EventCodecTest, RoundTripsSchemas) {
  TableSchema s = *UsersSchema(2);
  s.schema_name = "größe";
  s.replica_identity = 'f';
  s.columns[0].type_modifier = INT32_MIN;
  std::string bytes;
  EncodeSchema(s, bytes);
  EXPECT_EQ(DecodeSchema(bytes).value(), s);

  TableSchema empty{.relation_id = RelationId{1}, .schema_name = "", .table_name = "t"};
  bytes.clear();
  EncodeSchema(empty, bytes);
  EXPECT_EQ(DecodeSchema(bytes).value(), empty);
}

// What a filtered read decides from: op, schema, tenant, and whether an old row came.
TEST(EventCodecTest, PeekReadsTheHeaderOfEveryOp) {
  const std::vector<ChangeEvent> ops = EveryOp();
  ChangeEvent update_without_old = ops[1];
  update_without_old.old_row.clear();
  update_without_old.old_is_key_only = false;
  struct Case {
    const ChangeEvent& event;
    bool has_old_row;
  };
  for (Case c : {Case{ops[0], false}, Case{ops[1], true}, Case{update_without_old, false},
                 Case{ops[2], true}, Case{ops[3], false}}) {
    SCOPED_TRACE(static_cast<char>(c.event.op));
    std::string bytes;
    EncodeEvent(c.event, 0x1234, bytes);
    auto h = PeekEvent(bytes);
    ASSERT_TRUE(h.has_value()) << h.error().message;
    EXPECT_EQ(h.value().op, c.event.op);
    EXPECT_EQ(h.value().schema_fingerprint, 0x1234u);
    EXPECT_EQ(h.value().tenant, c.event.tenant);
    EXPECT_EQ(h.value().old_tenant, c.event.old_tenant);
    EXPECT_EQ(h.value().has_old_row, c.has_old_row);
    // A prefix that cuts the header (4 bytes, two varints, the 8-byte fingerprint) is
    // refused, whatever the op.
    for (size_t n = 0; n < 4 + 1 + 1 + 8; ++n) {
      auto cut = PeekEvent(std::string_view(bytes).substr(0, n));
      ASSERT_FALSE(cut.has_value()) << "prefix of " << n << " bytes";
      EXPECT_EQ(cut.error().kind, ErrorKind::kStorage);
    }
  }
}

TEST(EventCodecTest, RejectsEveryTruncation) {
  for (const ChangeEvent& e : EveryOp()) {
    std::string bytes;
    EncodeEvent(e, 7, bytes);
    for (size_t n = 0; n < bytes.size(); ++n) {
      ChangeEvent back;
      auto r = DecodeEvent(std::string_view(bytes).substr(0, n), back);
      ASSERT_FALSE(r.has_value()) << "prefix of " << n << " bytes";
      EXPECT_EQ(r.error().kind, ErrorKind::kStorage);
    }
  }
  std::string schema;
  EncodeSchema(*UsersSchema(), schema);
  for (size_t n = 0; n < schema.size(); ++n) {
    EXPECT_FALSE(DecodeSchema(std::string_view(schema).substr(0, n)).has_value());
  }
}

TEST(EventCodecTest, RejectsCorruptBytesWithAMessage) {
  std::string good;
  EncodeEvent(Insert(UsersSchema(), EventId{Lsn(0x100), 0}), 7, good);
  struct Case {
    const char* what;
    size_t at;
    char byte;
  };
  // Offsets: 0 format, 1 op, 2 flags.
  for (Case c : {Case{"format", 0, 9}, Case{"op", 1, 'X'}, Case{"flags", 2, '\x80'}}) {
    std::string bad = good;
    bad[c.at] = c.byte;
    ChangeEvent back;
    auto r = DecodeEvent(bad, back);
    ASSERT_FALSE(r.has_value()) << c.what;
    EXPECT_EQ(r.error().kind, ErrorKind::kStorage);
    EXPECT_NE(r.error().message.find("corrupt event at byte"), std::string::npos);
  }
  ChangeEvent back;
  EXPECT_FALSE(DecodeEvent(good + "x", back).has_value()) << "trailing bytes";

  ChangeEvent no_rows = Insert(UsersSchema(), EventId{Lsn(0x100), 0});
  no_rows.new_row.clear();
  std::string huge_count;
  EncodeEvent(no_rows, 7, huge_count);
  huge_count.resize(huge_count.size() - 2);  // drop the two zero row counts
  huge_count += "\xff\xff\xff\xff\x0f";      // a new row of 4 billion columns...
  huge_count += '\0';                        // ...and no old row
  auto r = DecodeEvent(huge_count, back);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("bad new row"), std::string::npos) << r.error().message;
}

// Random damage to valid encodings: every result is a clean value or a kStorage error.
TEST(EventCodecTest, SurvivesRandomCorruption) {
  std::mt19937 rng(20240611);
  std::vector<std::string> inputs;
  for (const ChangeEvent& e : EveryOp()) EncodeEvent(e, 7, inputs.emplace_back());
  EncodeSchema(*UsersSchema(2), inputs.emplace_back());
  int rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = inputs[rng() % inputs.size()];
    for (int flips = 1 + rng() % 3; flips > 0; --flips) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    ChangeEvent event;
    auto e = DecodeEvent(bytes, event);
    auto s = DecodeSchema(bytes);
    if (!e) {
      ASSERT_EQ(e.error().kind, ErrorKind::kStorage);
      ++rejected;
    }
    if (!s) {
      ASSERT_EQ(s.error().kind, ErrorKind::kStorage);
    }
  }
  EXPECT_GT(rejected, 1000);
}

}  // namespace
}  // namespace pgfanout::checkpoints_test
