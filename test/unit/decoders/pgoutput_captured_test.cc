// Messages captured from a real PostgreSQL 15.20 server, so the reader is checked against
// what the server sends and not only against our reading of the docs. Captured with
//   SELECT encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL,
//     'proto_version', '2', 'publication_names', 'pub', 'streaming', 'on', 'messages', 'true');
// under logical_decoding_work_mem = 64kB, after:
//   CREATE TYPE mood AS ENUM ('sad', 'happy');
//   CREATE TABLE users (id int PRIMARY KEY, name text, bio text, m mood);        -- 16389
//   CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(20));               -- 16396
//   ALTER TABLE orders REPLICA IDENTITY FULL;
//   INSERT INTO users VALUES (1, 'ünïcødé ✓', NULL, 'happy');
//   INSERT INTO users VALUES (2, '', <6400 bytes of md5 text, TOASTed>, 'sad');
//   UPDATE users SET name = 'bob' WHERE id = 2;   UPDATE users SET id = 3 WHERE id = 1;
//   DELETE FROM users WHERE id = 3;
//   INSERT INTO orders VALUES (10, 'x'), (11, NULL);
//   UPDATE orders SET note = 'y' WHERE id = 10;   DELETE FROM orders WHERE id = 11;
//   TRUNCATE users, orders RESTART IDENTITY CASCADE;
//   SELECT pg_logical_emit_message(true, 'audit', 'tx-msg');
//   SELECT pg_logical_emit_message(false, 'audit', '\x00ff'::bytea);
//   BEGIN; <2001 inserts into orders>; SAVEPOINT a; <2001 inserts>; ROLLBACK TO a;
//     SELECT pg_logical_emit_message(true, 'audit', 'in-stream'); TRUNCATE orders; COMMIT;

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "decoders/pgoutput/reader.h"
#include "test/support/pgoutput_builder.h"
#include "test/unit/decoders/pgoutput_test_util.h"

namespace pgfanout::pgoutput {
namespace {

using ::pgfanout::testing::Encode;
using ::pgfanout::testing::Null;
using ::pgfanout::testing::Text;
using ::pgfanout::testing::UnchangedToast;
using testutil::DecodeAs;
using testutil::DecodeError;
using testutil::FromHex;

constexpr RelationId kUsers{16389};
constexpr RelationId kOrders{16396};
constexpr int64_t kCommitTime = 848615595522912;  // microseconds since 2000-01-01
constexpr char kUnicode[] = "ünïcødé ✓";

struct Captured {
  const char* what;
  const char* hex;
  bool in_stream;
};

// In the order the server sent them (a selection).
constexpr Captured kCaptured[] = {
    {"Begin", "4200000000015441f8000303cfb71f3b60000002d9", false},
    {"Type mood", "59000040017075626c6963006d6f6f6400", false},
    {"Relation users",
     "52000040057075626c6963007573657273006400040169640000000017ffffffff006e616d65000000001"
     "9ffffffff0062696f0000000019ffffffff006d0000004001ffffffff",
     false},
    {"Insert users",
     "49000040054e0004740000000131740000000fc3bc6ec3af63c3b864c3a920e29c936e74000000056861"
     "707079",
     false},
    {"Commit", "430000000000015441f80000000001544228000303cfb71f3b60", false},
    {"Update users, TOASTed bio unchanged",
     "55000040054e00047400000001327400000003626f62757400000003736164", false},
    {"Update users, key changed",
     "55000040054b00047400000001316e6e6e4e0004740000000133740000000fc3bc6ec3af63c3b864c3a92"
     "0e29c936e74000000056861707079",
     false},
    {"Delete users", "44000040054b00047400000001336e6e6e", false},
    {"Relation orders, replica identity full",
     "520000400c7075626c6963006f7264657273006600020169640000000014ffffffff016e6f746500000004"
     "1300000018",
     false},
    {"Update orders, old row",
     "550000400c4f0002740000000231307400000001784e000274000000023130740000000179", false},
    {"Delete orders, old row", "440000400c4f0002740000000231316e", false},
    {"Truncate both, cascade and restart identity", "540000000203000040050000400c", false},
    {"Message, transactional", "4d0100000000015476a06175646974000000000674782d6d7367", false},
    {"Message, not transactional", "4d0000000000015477106175646974000000000200ff", false},
    {"Stream Start, first segment", "53000002e301", true},
    {"Relation orders in stream",
     "52000002e30000400c7075626c6963006f7264657273006600020169640000000014ffffffff016e6f7465"
     "000000041300000018",
     true},
    {"Insert orders in stream", "49000002e30000400c4e000274000000033130307400000006726f77313030",
     true},
    {"Stream Stop", "45", true},
    {"Stream Abort of the savepoint", "41000002e3000002e4", false},
    {"Stream Start, later segment", "53000002e300", false},
    {"Message in stream", "4d000002e30100000000015cea4061756469740000000009696e2d73747265616d",
     true},
    {"Truncate in stream, by the subtransaction", "54000002e500000001000000400c", true},
    {"Stream Commit", "63000002e30000000000015cf00000000000015cf0d8000303cfb71f9304", false},
};

std::string Bytes(std::string_view what) {
  for (const Captured& c : kCaptured) {
    if (what == c.what) return FromHex(c.hex);
  }
  ADD_FAILURE() << "no capture named " << what;
  return "";
}

TEST(PgoutputCapturedTest, EveryCapturedMessageDecodesAndReencodesToTheSameBytes) {
  for (const Captured& c : kCaptured) {
    SCOPED_TRACE(c.what);
    std::string bytes = FromHex(c.hex);
    Result<Message> decoded = Decode(bytes, c.in_stream);
    ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
    EXPECT_EQ(Encode(decoded.value(), c.in_stream), bytes);
  }
}

TEST(PgoutputCapturedTest, EveryStrictPrefixOfACapturedMessageIsRejected) {
  for (const Captured& c : kCaptured) {
    SCOPED_TRACE(c.what);
    std::string bytes = FromHex(c.hex);
    for (size_t length = 0; length < bytes.size(); ++length) {
      DecodeError(std::string_view(bytes).substr(0, length), c.in_stream);
    }
  }
}

TEST(PgoutputCapturedTest, BeginAndCommitCarryLsnsTimeAndXid) {
  Begin begin = DecodeAs<Begin>(Bytes("Begin"), false);
  EXPECT_EQ(begin.final_lsn.ToString(), "0/15441F8");
  EXPECT_EQ(begin.commit_time, kCommitTime);
  EXPECT_EQ(begin.xid, Xid{729});

  Commit commit = DecodeAs<Commit>(Bytes("Commit"), false);
  EXPECT_EQ(commit.commit_lsn, begin.final_lsn);
  EXPECT_EQ(commit.end_lsn.ToString(), "0/1544228");
  EXPECT_EQ(commit.commit_time, kCommitTime);
}

TEST(PgoutputCapturedTest, TypeAndRelationDescribeAnEnumColumn) {
  Type type = DecodeAs<Type>(Bytes("Type mood"), false);
  EXPECT_EQ(type.type_oid, 16385u);
  EXPECT_EQ(type.namespace_name, "public");
  EXPECT_EQ(type.type_name, "mood");

  Relation users = DecodeAs<Relation>(Bytes("Relation users"), false);
  EXPECT_EQ(users.relation_id, kUsers);
  EXPECT_EQ(users.namespace_name, "public");
  EXPECT_EQ(users.relation_name, "users");
  EXPECT_EQ(users.replica_identity, 'd');
  ASSERT_EQ(users.columns.size(), 4u);
  EXPECT_EQ(users.columns[0].name, "id");
  EXPECT_EQ(users.columns[0].flags, 1);
  EXPECT_EQ(users.columns[0].type_oid, 23u);
  EXPECT_EQ(users.columns[1].name, "name");
  EXPECT_EQ(users.columns[1].flags, 0);
  EXPECT_EQ(users.columns[3].name, "m");
  EXPECT_EQ(users.columns[3].type_oid, type.type_oid);
}

TEST(PgoutputCapturedTest, ReplicaIdentityFullMarksEveryColumnAsKeyAndKeepsTypmod) {
  Relation orders = DecodeAs<Relation>(Bytes("Relation orders, replica identity full"), false);
  EXPECT_EQ(orders.replica_identity, 'f');
  ASSERT_EQ(orders.columns.size(), 2u);
  EXPECT_EQ(orders.columns[0].flags, 1);
  EXPECT_EQ(orders.columns[0].type_oid, 20u);  // int8
  EXPECT_EQ(orders.columns[1].flags, 1);
  EXPECT_EQ(orders.columns[1].type_oid, 1043u);    // varchar
  EXPECT_EQ(orders.columns[1].type_modifier, 24);  // varchar(20): 20 + VARHDRSZ
}

TEST(PgoutputCapturedTest, InsertCarriesUnicodeTextAndNull) {
  Insert insert = DecodeAs<Insert>(Bytes("Insert users"), false);
  EXPECT_EQ(insert.relation_id, kUsers);
  EXPECT_EQ(insert.new_tuple, (Tuple{Text("1"), Text(kUnicode), Null(), Text("happy")}));
}

TEST(PgoutputCapturedTest, UpdateLeavesAnUntouchedToastedColumnOut) {
  Update update = DecodeAs<Update>(Bytes("Update users, TOASTed bio unchanged"), false);
  EXPECT_EQ(update.old_kind, 0);
  EXPECT_TRUE(update.old_tuple.empty());
  EXPECT_EQ(update.new_tuple, (Tuple{Text("2"), Text("bob"), UnchangedToast(), Text("sad")}));
}

TEST(PgoutputCapturedTest, UpdateOfTheKeySendsTheOldKeyWithOtherColumnsNull) {
  Update update = DecodeAs<Update>(Bytes("Update users, key changed"), false);
  EXPECT_EQ(update.old_kind, 'K');
  EXPECT_EQ(update.old_tuple, (Tuple{Text("1"), Null(), Null(), Null()}));
  EXPECT_EQ(update.new_tuple, (Tuple{Text("3"), Text(kUnicode), Null(), Text("happy")}));

  Delete del = DecodeAs<Delete>(Bytes("Delete users"), false);
  EXPECT_EQ(del.old_kind, 'K');
  EXPECT_EQ(del.old_tuple, (Tuple{Text("3"), Null(), Null(), Null()}));
}

TEST(PgoutputCapturedTest, ReplicaIdentityFullSendsTheOldRow) {
  Update update = DecodeAs<Update>(Bytes("Update orders, old row"), false);
  EXPECT_EQ(update.relation_id, kOrders);
  EXPECT_EQ(update.old_kind, 'O');
  EXPECT_EQ(update.old_tuple, (Tuple{Text("10"), Text("x")}));
  EXPECT_EQ(update.new_tuple, (Tuple{Text("10"), Text("y")}));

  Delete del = DecodeAs<Delete>(Bytes("Delete orders, old row"), false);
  EXPECT_EQ(del.old_kind, 'O');
  EXPECT_EQ(del.old_tuple, (Tuple{Text("11"), Null()}));
}

TEST(PgoutputCapturedTest, TruncateOfTwoTablesWithBothOptions) {
  Truncate truncate =
      DecodeAs<Truncate>(Bytes("Truncate both, cascade and restart identity"), false);
  EXPECT_EQ(truncate.options, kTruncateCascade | kTruncateRestartIdentity);
  EXPECT_EQ(truncate.relation_ids, (std::vector<RelationId>{kUsers, kOrders}));
}

TEST(PgoutputCapturedTest, LogicalMessagesKeepFlagPrefixAndBinaryContent) {
  LogicalMessage tx = DecodeAs<LogicalMessage>(Bytes("Message, transactional"), false);
  EXPECT_TRUE(tx.transactional);
  EXPECT_EQ(tx.lsn.ToString(), "0/15476A0");
  EXPECT_EQ(tx.prefix, "audit");
  EXPECT_EQ(tx.content, "tx-msg");

  LogicalMessage plain = DecodeAs<LogicalMessage>(Bytes("Message, not transactional"), false);
  EXPECT_FALSE(plain.transactional);
  EXPECT_EQ(plain.content, std::string("\x00\xff", 2));
}

TEST(PgoutputCapturedTest, StreamedTransactionCarriesXidsOfTopLevelAndSubtransactions) {
  StreamStart start = DecodeAs<StreamStart>(Bytes("Stream Start, first segment"), false);
  EXPECT_EQ(start.xid, Xid{739});
  EXPECT_TRUE(start.first_segment);

  Relation relation = DecodeAs<Relation>(Bytes("Relation orders in stream"), true);
  EXPECT_EQ(relation.xid, Xid{739});
  EXPECT_EQ(relation.relation_id, kOrders);

  Insert insert = DecodeAs<Insert>(Bytes("Insert orders in stream"), true);
  EXPECT_EQ(insert.xid, Xid{739});
  EXPECT_EQ(insert.new_tuple, (Tuple{Text("100"), Text("row100")}));

  EXPECT_FALSE(DecodeAs<StreamStart>(Bytes("Stream Start, later segment"), false).first_segment);

  // ROLLBACK TO SAVEPOINT aborts subtransaction 740 of 739.
  StreamAbort abort = DecodeAs<StreamAbort>(Bytes("Stream Abort of the savepoint"), false);
  EXPECT_EQ(abort.xid, Xid{739});
  EXPECT_EQ(abort.subxid, Xid{740});

  LogicalMessage message = DecodeAs<LogicalMessage>(Bytes("Message in stream"), true);
  EXPECT_EQ(message.xid, Xid{739});
  EXPECT_TRUE(message.transactional);
  EXPECT_EQ(message.content, "in-stream");

  // The change made after the savepoint carries the new subtransaction's xid, not 739.
  Truncate truncate = DecodeAs<Truncate>(Bytes("Truncate in stream, by the subtransaction"), true);
  EXPECT_EQ(truncate.xid, Xid{741});
  EXPECT_EQ(truncate.relation_ids, (std::vector<RelationId>{kOrders}));

  StreamCommit commit = DecodeAs<StreamCommit>(Bytes("Stream Commit"), false);
  EXPECT_EQ(commit.xid, Xid{739});
  EXPECT_EQ(commit.commit_lsn.ToString(), "0/15CF000");
  EXPECT_EQ(commit.end_lsn.ToString(), "0/15CF0D8");
}

}  // namespace
}  // namespace pgfanout::pgoutput
