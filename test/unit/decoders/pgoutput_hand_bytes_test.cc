// Bytes written by hand from the protocol docs, so the builder and the reader cannot
// share a mistake.
#include "test/unit/decoders/pgoutput_hand_bytes.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
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
using testutil::AsBytes;
using testutil::DecodeAs;

// --- Bytes written by hand from the protocol docs, not by the builder ------------------

// Begin: final LSN 0/16B3748, commit time 2024-01-01 00:00:00.123456 UTC, xid 742.

TEST(PgoutputHandWrittenBytesTest, BeginDecodesAndReencodesIdentically) {
  Begin m = DecodeAs<Begin>(AsBytes(kHandBegin), false);
  EXPECT_EQ(m.final_lsn, Lsn(0x16B3748));
  EXPECT_EQ(m.final_lsn.ToString(), "0/16B3748");
  EXPECT_EQ(m.commit_time, kHandTime);
  EXPECT_EQ(m.xid, Xid{742});
  EXPECT_EQ(Encode(m), AsBytes(kHandBegin));
}

TEST(PgoutputHandWrittenBytesTest, RelationDecodesColumnsAndKeyFlag) {
  Relation m = DecodeAs<Relation>(AsBytes(kHandRelation), false);
  EXPECT_EQ(m.xid, Xid{0});
  EXPECT_EQ(m.relation_id, RelationId{16384});
  EXPECT_EQ(m.namespace_name, "public");
  EXPECT_EQ(m.relation_name, "users");
  EXPECT_EQ(m.replica_identity, 'd');
  ASSERT_EQ(m.columns.size(), 2u);
  EXPECT_EQ(m.columns[0].flags, 1);
  EXPECT_EQ(m.columns[0].name, "id");
  EXPECT_EQ(m.columns[0].type_oid, 23u);
  EXPECT_EQ(m.columns[0].type_modifier, -1);
  EXPECT_EQ(m.columns[1].flags, 0);
  EXPECT_EQ(m.columns[1].name, "name");
  EXPECT_EQ(m.columns[1].type_oid, 25u);
  EXPECT_EQ(Encode(m), AsBytes(kHandRelation));
}

TEST(PgoutputHandWrittenBytesTest, InsertDecodesTextUtf8AndNull) {
  Insert m = DecodeAs<Insert>(AsBytes(kHandInsert), false);
  EXPECT_EQ(m.relation_id, RelationId{16384});
  EXPECT_EQ(m.new_tuple, (Tuple{Text("42"), Text("é"), Null()}));
  EXPECT_EQ(Encode(m), AsBytes(kHandInsert));
}

TEST(PgoutputHandWrittenBytesTest, UpdateDecodesOldKeyAndUnchangedToast) {
  Update m = DecodeAs<Update>(AsBytes(kHandUpdate), false);
  EXPECT_EQ(m.relation_id, RelationId{16384});
  EXPECT_EQ(m.old_kind, 'K');
  EXPECT_EQ(m.old_tuple, (Tuple{Text("7"), Null()}));
  EXPECT_EQ(m.new_tuple, (Tuple{Text("8"), UnchangedToast()}));
  EXPECT_EQ(Encode(m), AsBytes(kHandUpdate));
}

TEST(PgoutputHandWrittenBytesTest, StreamedDeleteReadsXidBeforeRelationId) {
  Delete m = DecodeAs<Delete>(AsBytes(kHandStreamDelete), true);
  EXPECT_EQ(m.xid, Xid{1000});
  EXPECT_EQ(m.relation_id, RelationId{16384});
  EXPECT_EQ(m.old_kind, 'O');
  EXPECT_EQ(m.old_tuple, (Tuple{Text("7")}));
  EXPECT_EQ(Encode(m, true), AsBytes(kHandStreamDelete));
}

TEST(PgoutputHandWrittenBytesTest, TruncateDecodesCountOptionsAndIds) {
  Truncate m = DecodeAs<Truncate>(AsBytes(kHandTruncate), false);
  EXPECT_EQ(m.options, kTruncateCascade | kTruncateRestartIdentity);
  EXPECT_EQ(m.relation_ids, (std::vector<RelationId>{RelationId{16384}, RelationId{16385}}));
  EXPECT_EQ(Encode(m), AsBytes(kHandTruncate));
}

TEST(PgoutputHandWrittenBytesTest, StreamedMessageReadsXidThenFlags) {
  LogicalMessage m = DecodeAs<LogicalMessage>(AsBytes(kHandStreamMessage), true);
  EXPECT_EQ(m.xid, Xid{1000});
  EXPECT_TRUE(m.transactional);
  EXPECT_EQ(m.lsn, Lsn(0x16B3748));
  EXPECT_EQ(m.prefix, "px");
  EXPECT_EQ(m.content, "hi");
  EXPECT_EQ(Encode(m, true), AsBytes(kHandStreamMessage));
}

TEST(PgoutputHandWrittenBytesTest, CommitDecodesBothLsns) {
  Commit m = DecodeAs<Commit>(AsBytes(kHandCommit), false);
  EXPECT_EQ(m.flags, 0);
  EXPECT_EQ(m.commit_lsn, Lsn(0x16B3748));
  EXPECT_EQ(m.end_lsn, Lsn(0x16B3778));
  EXPECT_EQ(m.commit_time, kHandTime);
  EXPECT_EQ(Encode(m), AsBytes(kHandCommit));
}

TEST(PgoutputHandWrittenBytesTest, StreamControlMessagesDecode) {
  StreamStart start = DecodeAs<StreamStart>(AsBytes(kHandStreamStart), false);
  EXPECT_EQ(start.xid, Xid{1000});
  EXPECT_TRUE(start.first_segment);
  EXPECT_EQ(Encode(start), AsBytes(kHandStreamStart));

  StreamCommit commit = DecodeAs<StreamCommit>(AsBytes(kHandStreamCommit), false);
  EXPECT_EQ(commit.xid, Xid{1000});
  EXPECT_EQ(commit.commit_lsn, Lsn(0x16B3748));
  EXPECT_EQ(commit.end_lsn, Lsn(0x16B3778));
  EXPECT_EQ(commit.commit_time, kHandTime);
  EXPECT_EQ(Encode(commit), AsBytes(kHandStreamCommit));

  StreamAbort abort = DecodeAs<StreamAbort>(AsBytes(kHandStreamAbort), false);
  EXPECT_EQ(abort.xid, Xid{1000});
  EXPECT_EQ(abort.subxid, Xid{1001});
  EXPECT_EQ(Encode(abort), AsBytes(kHandStreamAbort));

  EXPECT_TRUE(std::holds_alternative<StreamStop>(Decode("E", true).value()));
}

}  // namespace
}  // namespace pgfanout::pgoutput
