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
#include "test/unit/decoders/pgoutput_hand_bytes.h"
#include "test/unit/decoders/pgoutput_test_util.h"

// Messages here are built with designated initialisers that leave fields out on purpose
// (value-initialised). GCC 12 warns about that for every member without a default member
// initialiser, which is most of messages.h.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace pgfanout::pgoutput {
namespace {

using ::pgfanout::testing::Encode;
using ::pgfanout::testing::Null;
using ::pgfanout::testing::Text;
using ::pgfanout::testing::TextTuple;
using ::pgfanout::testing::UnchangedToast;
using testutil::AsBytes;
using testutil::DecodeAs;
using testutil::DecodeError;
using testutil::ExpectRoundTrip;

constexpr Lsn kLsn((uint64_t{0x16} << 32) | 0xB374D848);
constexpr RelationId kUsers{16384};
constexpr RelationId kOrders{16390};
constexpr Xid kXid{742};

Relation UsersRelation() {
  return Relation{.relation_id = kUsers,
                  .namespace_name = "public",
                  .relation_name = "users",
                  .replica_identity = 'd',
                  .columns = {{.flags = 1, .name = "id", .type_oid = 23, .type_modifier = -1},
                              {.flags = 0, .name = "name", .type_oid = 1043, .type_modifier = 68},
                              {.flags = 0, .name = "bio", .type_oid = 25, .type_modifier = -1}}};
}

// One valid message of each shape, with its in_stream flag: the seed corpus of the
// malformed-input tests.
struct Sample {
  std::string name;
  std::string bytes;
  bool in_stream = false;
};

std::vector<Sample> ValidSamples() {
  const std::vector<std::pair<std::string, Message>> messages = {
      {"Begin", Begin{.final_lsn = kLsn, .commit_time = 757382400123456, .xid = kXid}},
      {"Commit",
       Commit{
           .commit_lsn = kLsn, .end_lsn = Lsn(kLsn.value() + 48), .commit_time = 757382400123456}},
      {"Origin", Origin{.commit_lsn = kLsn, .name = "pg_16401"}},
      {"Relation", UsersRelation()},
      {"Type",
       Type{.xid = kXid, .type_oid = 16500, .namespace_name = "public", .type_name = "mood"}},
      {"Insert", Insert{.xid = kXid,
                        .relation_id = kUsers,
                        .new_tuple = {Text("1"), Text("ünïcødé ✓"), Null()}}},
      {"Update K", Update{.xid = kXid,
                          .relation_id = kUsers,
                          .old_kind = 'K',
                          .old_tuple = {Text("1"), Null(), Null()},
                          .new_tuple = {Text("2"), Text(""), UnchangedToast()}}},
      {"Update O", Update{.xid = kXid,
                          .relation_id = kUsers,
                          .old_kind = 'O',
                          .old_tuple = TextTuple({"1", "a", "b"}),
                          .new_tuple = TextTuple({"1", "a", "c"})}},
      {"Update N", Update{.xid = kXid,
                          .relation_id = kUsers,
                          .new_tuple = {Text("1"), Text("x"), UnchangedToast()}}},
      {"Delete", Delete{.xid = kXid,
                        .relation_id = kUsers,
                        .old_kind = 'K',
                        .old_tuple = {Text("1"), Null(), Null()}}},
      {"Truncate", Truncate{.xid = kXid, .options = 3, .relation_ids = {kUsers, kOrders}}},
      {"Message", LogicalMessage{.xid = kXid,
                                 .transactional = true,
                                 .lsn = kLsn,
                                 .prefix = "audit",
                                 .content = std::string("a\0b", 3)}},
      {"Stream Start", StreamStart{.xid = kXid, .first_segment = true}},
      {"Stream Stop", StreamStop{}},
      {"Stream Commit",
       StreamCommit{.xid = kXid, .commit_lsn = kLsn, .end_lsn = kLsn, .commit_time = 1}},
      {"Stream Abort", StreamAbort{.xid = kXid, .subxid = Xid{743}}},
  };
  std::vector<Sample> samples;
  for (const auto& [name, message] : messages) {
    for (bool in_stream : {false, true}) {
      samples.push_back(Sample{.name = name + (in_stream ? " (in stream)" : ""),
                               .bytes = Encode(message, in_stream),
                               .in_stream = in_stream});
    }
  }
  return samples;
}

// --- Round trips -----------------------------------------------------------------------

TEST(PgoutputRoundTripTest, BeginKeepsLsnTimeAndXid) {
  for (bool in_stream : {false, true}) {
    ExpectRoundTrip(Begin{.final_lsn = kLsn, .commit_time = 757382400123456, .xid = kXid},
                    in_stream);
  }
}

TEST(PgoutputRoundTripTest, BeginKeepsExtremeValues) {
  ExpectRoundTrip(
      Begin{.final_lsn = Lsn(~uint64_t{0}), .commit_time = INT64_MIN, .xid = Xid{UINT32_MAX}},
      false);
  ExpectRoundTrip(Begin{.final_lsn = Lsn(0), .commit_time = -1, .xid = Xid{0}}, false);
}

TEST(PgoutputRoundTripTest, CommitKeepsBothLsnsAndTime) {
  ExpectRoundTrip(
      Commit{.commit_lsn = kLsn, .end_lsn = Lsn(kLsn.value() + 48), .commit_time = 757382400123456},
      false);
}

TEST(PgoutputRoundTripTest, OriginKeepsNameIncludingEmpty) {
  ExpectRoundTrip(Origin{.commit_lsn = kLsn, .name = "pg_16401"}, false);
  ExpectRoundTrip(Origin{.commit_lsn = kLsn, .name = ""}, false);
}

TEST(PgoutputRoundTripTest, RelationKeepsKeyFlagsTypesAndModifiers) {
  ExpectRoundTrip(UsersRelation(), false);
}

TEST(PgoutputRoundTripTest, RelationInStreamCarriesXid) {
  Relation m = UsersRelation();
  m.xid = kXid;
  ExpectRoundTrip(m, true);
}

TEST(PgoutputRoundTripTest, RelationInPgCatalogWithNoColumnsAndEveryReplicaIdentity) {
  for (char identity : {'d', 'n', 'f', 'i'}) {
    ExpectRoundTrip(Relation{.relation_id = RelationId{1},
                             .namespace_name = "",
                             .relation_name = "t",
                             .replica_identity = identity},
                    false);
  }
}

TEST(PgoutputRoundTripTest, RelationWithUnicodeNames) {
  ExpectRoundTrip(Relation{.relation_id = kUsers,
                           .namespace_name = "模式",
                           .relation_name = "Ünïcødé table",
                           .replica_identity = 'f',
                           .columns = {{.name = "naïve", .type_oid = 25}}},
                  false);
}

TEST(PgoutputRoundTripTest, TypeKeepsOidAndNames) {
  ExpectRoundTrip(Type{.type_oid = 16500, .namespace_name = "public", .type_name = "mood"}, false);
}

TEST(PgoutputRoundTripTest, TypeInStreamCarriesXid) {
  ExpectRoundTrip(
      Type{.xid = kXid, .type_oid = 16500, .namespace_name = "public", .type_name = "mood"}, true);
}

TEST(PgoutputRoundTripTest, InsertKeepsTextNullAndUnchangedToastColumns) {
  ExpectRoundTrip(
      Insert{.relation_id = kUsers, .new_tuple = {Text("1"), Null(), UnchangedToast(), Text("x")}},
      false);
}

TEST(PgoutputRoundTripTest, InsertKeepsUnicodeEmptyAndEmbeddedNulText) {
  ExpectRoundTrip(Insert{.relation_id = kUsers,
                         .new_tuple = {Text("ünïcødé ✓ 日本語 🐘"), Text(""),
                                       Text(std::string("a\0b", 3)), Text("\xff\xfe")}},
                  false);
}

TEST(PgoutputRoundTripTest, InsertWithNoColumns) {
  ExpectRoundTrip(Insert{.relation_id = kUsers}, false);
}

TEST(PgoutputRoundTripTest, InsertWithOneMebibyteValue) {
  ExpectRoundTrip(Insert{.relation_id = kUsers, .new_tuple = {Text(std::string(1 << 20, 'z'))}},
                  false);
}

TEST(PgoutputRoundTripTest, InsertInStreamCarriesXid) {
  ExpectRoundTrip(Insert{.xid = kXid, .relation_id = kUsers, .new_tuple = TextTuple({"1", "a"})},
                  true);
}

TEST(PgoutputRoundTripTest, UpdateWithOldKey) {
  ExpectRoundTrip(Update{.relation_id = kUsers,
                         .old_kind = 'K',
                         .old_tuple = {Text("1"), Null(), Null()},
                         .new_tuple = {Text("2"), Text("bob"), UnchangedToast()}},
                  false);
}

TEST(PgoutputRoundTripTest, UpdateWithOldRow) {
  ExpectRoundTrip(Update{.relation_id = kUsers,
                         .old_kind = 'O',
                         .old_tuple = TextTuple({"1", "alice", ""}),
                         .new_tuple = TextTuple({"1", "bob", ""})},
                  false);
}

TEST(PgoutputRoundTripTest, UpdateWithoutOldTuple) {
  ExpectRoundTrip(
      Update{.relation_id = kUsers, .new_tuple = {Text("1"), Text("bob"), UnchangedToast()}},
      false);
}

TEST(PgoutputRoundTripTest, UpdateInStreamWithEachOldTupleShape) {
  for (char old_kind : {'K', 'O', '\0'}) {
    SCOPED_TRACE(old_kind);
    Update m{
        .xid = kXid, .relation_id = kUsers, .old_kind = old_kind, .new_tuple = TextTuple({"2"})};
    if (old_kind != 0) m.old_tuple = TextTuple({"1"});
    ExpectRoundTrip(m, true);
  }
}

TEST(PgoutputRoundTripTest, DeleteWithOldKey) {
  ExpectRoundTrip(
      Delete{.relation_id = kUsers, .old_kind = 'K', .old_tuple = {Text("1"), Null(), Null()}},
      false);
}

TEST(PgoutputRoundTripTest, DeleteWithOldRow) {
  ExpectRoundTrip(
      Delete{.relation_id = kUsers, .old_kind = 'O', .old_tuple = {Text("1"), Text("ünï"), Null()}},
      false);
}

TEST(PgoutputRoundTripTest, DeleteInStreamCarriesXid) {
  ExpectRoundTrip(
      Delete{.xid = kXid, .relation_id = kUsers, .old_kind = 'K', .old_tuple = {Text("1")}}, true);
}

TEST(PgoutputRoundTripTest, TruncateOfSeveralRelationsWithCascadeAndRestartIdentity) {
  ExpectRoundTrip(Truncate{.options = kTruncateCascade | kTruncateRestartIdentity,
                           .relation_ids = {kUsers, kOrders, RelationId{UINT32_MAX}}},
                  false);
}

TEST(PgoutputRoundTripTest, TruncateWithEachOptionAlone) {
  for (uint8_t options : {0, 1, 2}) {
    ExpectRoundTrip(Truncate{.options = options, .relation_ids = {kUsers}}, false);
  }
}

TEST(PgoutputRoundTripTest, TruncateInStreamCarriesXid) {
  ExpectRoundTrip(Truncate{.xid = kXid, .options = 1, .relation_ids = {kUsers, kOrders}}, true);
}

TEST(PgoutputRoundTripTest, TransactionalMessageWithBinaryContent) {
  ExpectRoundTrip(LogicalMessage{.transactional = true,
                                 .lsn = kLsn,
                                 .prefix = "audit",
                                 .content = std::string("\0\x01\xff\n", 4)},
                  false);
}

TEST(PgoutputRoundTripTest, NonTransactionalMessageWithEmptyPrefixAndContent) {
  ExpectRoundTrip(LogicalMessage{.transactional = false, .lsn = kLsn}, false);
}

TEST(PgoutputRoundTripTest, MessageInStreamCarriesXidBeforeFlags) {
  LogicalMessage m{.xid = kXid, .transactional = true, .lsn = kLsn, .prefix = "p", .content = "c"};
  ExpectRoundTrip(m, true);
  std::string bytes = Encode(m, true);
  ASSERT_GE(bytes.size(), 6u);
  EXPECT_EQ(bytes.substr(1, 4), std::string("\x00\x00\x02\xe6", 4));  // xid 742
  EXPECT_EQ(bytes[5], '\x01');                                        // flags
}

TEST(PgoutputRoundTripTest, StreamStartFirstAndLaterSegments) {
  ExpectRoundTrip(StreamStart{.xid = kXid, .first_segment = true}, false);
  ExpectRoundTrip(StreamStart{.xid = kXid, .first_segment = false}, true);
}

TEST(PgoutputRoundTripTest, StreamStopIsOneByte) {
  ExpectRoundTrip(StreamStop{}, true);
  EXPECT_EQ(Encode(StreamStop{}), "E");
}

TEST(PgoutputRoundTripTest, StreamCommitKeepsXidLsnsAndTime) {
  ExpectRoundTrip(StreamCommit{.xid = kXid,
                               .commit_lsn = kLsn,
                               .end_lsn = Lsn(kLsn.value() + 8),
                               .commit_time = 757382400123456},
                  false);
}

TEST(PgoutputRoundTripTest, StreamAbortOfSubtransactionAndOfWholeTransaction) {
  ExpectRoundTrip(StreamAbort{.xid = kXid, .subxid = Xid{743}}, false);
  ExpectRoundTrip(StreamAbort{.xid = kXid, .subxid = kXid}, true);
}

// --- Malformed input -------------------------------------------------------------------

TEST(PgoutputMalformedTest, EveryStrictPrefixOfEveryValidMessageIsRejected) {
  std::vector<Sample> samples = ValidSamples();
  for (std::string_view hand :
       {AsBytes(kHandBegin), AsBytes(kHandRelation), AsBytes(kHandInsert), AsBytes(kHandUpdate),
        AsBytes(kHandTruncate), AsBytes(kHandCommit), AsBytes(kHandStreamStart),
        AsBytes(kHandStreamCommit), AsBytes(kHandStreamAbort)}) {
    samples.push_back(Sample{.name = "hand-written", .bytes = std::string(hand)});
  }
  samples.push_back(Sample{.name = "hand-written stream delete",
                           .bytes = std::string(AsBytes(kHandStreamDelete)),
                           .in_stream = true});
  samples.push_back(Sample{.name = "hand-written stream message",
                           .bytes = std::string(AsBytes(kHandStreamMessage)),
                           .in_stream = true});
  for (const Sample& s : samples) {
    SCOPED_TRACE(s.name);
    ASSERT_TRUE(Decode(s.bytes, s.in_stream).has_value())
        << Decode(s.bytes, s.in_stream).error().message;
    for (size_t length = 0; length < s.bytes.size(); ++length) {
      SCOPED_TRACE(length);
      std::string message = DecodeError(std::string_view(s.bytes).substr(0, length), s.in_stream);
      EXPECT_EQ(message.rfind("pgoutput", 0), 0u) << message;
    }
  }
}

TEST(PgoutputMalformedTest, TruncatedFieldSaysHowManyBytesItNeeds) {
  std::string begin = Encode(Begin{.final_lsn = kLsn, .commit_time = 1, .xid = kXid});
  EXPECT_EQ(DecodeError(begin.substr(0, 11)),
            "pgoutput Begin ('B') at offset 9: needs 8 bytes, 2 left");
}

TEST(PgoutputMalformedTest, TruncatedStringSaysItHasNoTerminator) {
  std::string origin = Encode(Origin{.commit_lsn = kLsn, .name = "abc"});
  origin.pop_back();  // the NUL
  EXPECT_EQ(DecodeError(origin),
            "pgoutput Origin ('O') at offset 9: string has no terminating NUL (3 bytes left)");
}

TEST(PgoutputMalformedTest, EmptyInputIsRejected) {
  EXPECT_EQ(DecodeError(""), "pgoutput: empty message");
  EXPECT_EQ(DecodeError("", true), "pgoutput: empty message");
}

TEST(PgoutputMalformedTest, UnknownMessageTypeIsRejectedNamingTheByte) {
  EXPECT_EQ(DecodeError("X"), "pgoutput: unknown message type 'X' at offset 0");
  EXPECT_EQ(DecodeError(std::string("\x00\x01", 2)),
            "pgoutput: unknown message type 0x00 at offset 0");
  // Protocol v3 (two-phase) and v4 messages are not part of v1/v2.
  for (std::string_view v3 : {"b", "P", "K", "r", "p"}) {
    EXPECT_NE(DecodeError(v3).find("unknown message type"), std::string::npos) << v3;
  }
}

TEST(PgoutputMalformedTest, UnknownTupleKindNamesKindAndOffset) {
  std::string update = Encode(Update{.relation_id = kUsers, .new_tuple = TextTuple({"1"})});
  update[8] = 'X';  // 'U', relation id (4), 'N', count (2), then the first column's kind
  EXPECT_EQ(DecodeError(update), "pgoutput Update ('U') at offset 8: unknown tuple kind 'X'");
}

TEST(PgoutputMalformedTest, BinaryColumnIsRejectedAsUnsupported) {
  constexpr unsigned char kBinaryInsert[] = {
      'I', 0x00, 0x00, 0x40, 0x00, 'N', 0x00, 0x01, 'b', 0x00, 0x00, 0x00, 0x01, 0x2A,
  };
  std::string message = DecodeError(AsBytes(kBinaryInsert));
  EXPECT_EQ(message.rfind("pgoutput Insert ('I') at offset 8: binary column data", 0), 0u)
      << message;
}

TEST(PgoutputMalformedTest, NegativeTextLengthIsRejected) {
  constexpr unsigned char kNegative[] = {
      'I', 0x00, 0x00, 0x40, 0x00, 'N', 0x00, 0x01, 't', 0xFF, 0xFF, 0xFF, 0xFE,
  };
  EXPECT_EQ(DecodeError(AsBytes(kNegative)),
            "pgoutput Insert ('I') at offset 9: negative length -2");
}

TEST(PgoutputMalformedTest, HugeCountsFailWithoutAllocating) {
  // 65535 columns, 2^31-1 relations, 2 GiB of text: each claims more than is there.
  constexpr unsigned char kManyColumns[] = {'I', 0, 0, 0x40, 0, 'N', 0xFF, 0xFF, 'n'};
  EXPECT_EQ(DecodeError(AsBytes(kManyColumns)),
            "pgoutput Insert ('I') at offset 8: needs 65535 bytes, 1 left");
  constexpr unsigned char kManyRelations[] = {'T', 0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1};
  EXPECT_NE(DecodeError(AsBytes(kManyRelations)).find("needs 8589934588 bytes, 4 left"),
            std::string::npos);
  constexpr unsigned char kLongText[] = {'I', 0,   0,    0x40, 0,    'N',  0,
                                         1,   't', 0x7F, 0xFF, 0xFF, 0xFF, 'a'};
  EXPECT_NE(DecodeError(AsBytes(kLongText)).find("needs 2147483647 bytes, 1 left"),
            std::string::npos);
  constexpr unsigned char kManyRelationColumns[] = {'R', 0, 0, 0, 1, 0, 't', 0, 'd', 0xFF, 0xFF};
  EXPECT_NE(DecodeError(AsBytes(kManyRelationColumns)).find("needs 655350 bytes, 0 left"),
            std::string::npos);
}

TEST(PgoutputMalformedTest, NegativeTruncateCountIsRejected) {
  constexpr unsigned char kNegative[] = {'T', 0xFF, 0xFF, 0xFF, 0xFF, 0x00};
  EXPECT_EQ(DecodeError(AsBytes(kNegative)),
            "pgoutput Truncate ('T') at offset 1: negative relation count -1");
}

TEST(PgoutputMalformedTest, CommitWithNonZeroFlagsIsRejected) {
  std::string commit = std::string(AsBytes(kHandCommit));
  commit[1] = 0x01;
  EXPECT_EQ(DecodeError(commit),
            "pgoutput Commit ('C') at offset 1: unknown commit flags 0x01 (must be 0)");
}

TEST(PgoutputMalformedTest, StreamCommitWithNonZeroFlagsIsRejected) {
  std::string commit = std::string(AsBytes(kHandStreamCommit));
  commit[5] = 0x02;
  EXPECT_NE(DecodeError(commit).find("at offset 5: unknown stream commit flags 0x02"),
            std::string::npos);
}

TEST(PgoutputMalformedTest, TruncateWithUnknownOptionBitsIsRejected) {
  for (uint8_t options : {4, 8, 0x80, 0xFF}) {
    std::string truncate = Encode(Truncate{.options = options, .relation_ids = {kUsers}});
    EXPECT_NE(DecodeError(truncate).find("pgoutput Truncate ('T') at offset 5: unknown truncate "
                                         "options"),
              std::string::npos)
        << int{options};
  }
}

TEST(PgoutputMalformedTest, MessageWithUnknownFlagsIsRejected) {
  std::string message = Encode(LogicalMessage{.prefix = "p"});
  message[1] = 0x02;
  EXPECT_NE(DecodeError(message).find("pgoutput Message ('M') at offset 1: unknown message "
                                      "flags 0x02"),
            std::string::npos);
  std::string streamed = Encode(LogicalMessage{.xid = kXid, .prefix = "p"}, true);
  streamed[5] = 0x03;
  EXPECT_NE(DecodeError(streamed, true).find("at offset 5: unknown message flags 0x03"),
            std::string::npos);
}

TEST(PgoutputMalformedTest, StreamStartFirstSegmentMustBeZeroOrOne) {
  std::string start = std::string(AsBytes(kHandStreamStart));
  start[5] = 0x02;
  EXPECT_NE(DecodeError(start).find("at offset 5: unknown first-segment value 0x02"),
            std::string::npos);
}

TEST(PgoutputMalformedTest, UpdateOldTupleMarkerMustBeKOOrN) {
  std::string update = std::string(AsBytes(kHandUpdate));
  update[5] = 'Q';
  EXPECT_EQ(DecodeError(update),
            "pgoutput Update ('U') at offset 5: unknown tuple marker 'Q' "
            "(expected 'K', 'O' or 'N')");
  // After an old tuple only 'N' may follow.
  update = std::string(AsBytes(kHandUpdate));
  update[15] = 'K';
  EXPECT_EQ(DecodeError(update),
            "pgoutput Update ('U') at offset 15: unknown tuple marker 'K' (expected 'N')");
}

TEST(PgoutputMalformedTest, DeleteMarkerMustBeKOrO) {
  std::string del = Encode(Delete{.relation_id = kUsers, .old_kind = 'N', .old_tuple = {}});
  EXPECT_EQ(DecodeError(del),
            "pgoutput Delete ('D') at offset 5: unknown tuple marker 'N' "
            "(expected 'K' or 'O')");
}

TEST(PgoutputMalformedTest, InsertMarkerMustBeN) {
  std::string insert = std::string(AsBytes(kHandInsert));
  insert[5] = 'K';
  EXPECT_EQ(DecodeError(insert),
            "pgoutput Insert ('I') at offset 5: unknown tuple marker 'K' (expected 'N')");
}

TEST(PgoutputMalformedTest, RelationWithUnknownReplicaIdentityOrColumnFlagsIsRejected) {
  Relation relation = UsersRelation();
  relation.replica_identity = 'x';
  EXPECT_NE(DecodeError(Encode(relation)).find("unknown replica identity 'x'"), std::string::npos);
  relation = UsersRelation();
  relation.columns[1].flags = 2;
  EXPECT_NE(DecodeError(Encode(relation)).find("unknown column flags 0x02"), std::string::npos);
}

TEST(PgoutputMalformedTest, TrailingBytesAreRejectedForEveryMessageType) {
  for (const Sample& s : ValidSamples()) {
    SCOPED_TRACE(s.name);
    std::string message = DecodeError(s.bytes + "zz", s.in_stream);
    EXPECT_NE(message.find(": 2 trailing bytes"), std::string::npos) << message;
  }
  EXPECT_EQ(DecodeError("E!"), "pgoutput Stream Stop ('E') at offset 1: 1 trailing byte");
}

// --- Robustness ------------------------------------------------------------------------

// Applies one random edit of the kinds that break length-prefixed formats.
void Mutate(std::string& bytes, std::mt19937& rng) {
  auto pick = [&rng](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  static constexpr unsigned char kInteresting[] = {0x00, 0x01, 0x02, 0x7F, 0x80, 0xFF, 'n', 'u',
                                                   't',  'b',  'K',  'O',  'N',  'E',  'B'};
  switch (pick(7)) {
    case 0:  // flip a bit
      if (!bytes.empty()) bytes[pick(bytes.size())] ^= static_cast<char>(1 << pick(8));
      break;
    case 1:  // set a byte to an interesting value
      if (!bytes.empty()) {
        bytes[pick(bytes.size())] = static_cast<char>(kInteresting[pick(sizeof(kInteresting))]);
      }
      break;
    case 2:  // truncate
      bytes.resize(pick(bytes.size() + 1));
      break;
    case 3:  // insert a random byte
      bytes.insert(bytes.begin() + static_cast<ptrdiff_t>(pick(bytes.size() + 1)),
                   static_cast<char>(pick(256)));
      break;
    case 4:  // erase a byte
      if (!bytes.empty()) bytes.erase(pick(bytes.size()), 1);
      break;
    case 5:  // overwrite four bytes with a large or negative length
      if (bytes.size() >= 4) {
        static constexpr uint32_t kLengths[] = {0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0x0000FFFF,
                                                0x00010000};
        uint32_t v = kLengths[pick(std::size(kLengths))];
        size_t at = pick(bytes.size() - 3);
        for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>(v >> (24 - 8 * i));
      }
      break;
    default:  // append random bytes
      for (size_t n = 1 + pick(4); n > 0; --n) bytes.push_back(static_cast<char>(pick(256)));
      break;
  }
}

TEST(PgoutputRobustnessTest, RandomMutationsOfValidMessagesNeverCrash) {
  constexpr int kIterations = 200'000;
  const std::vector<Sample> samples = ValidSamples();
  std::mt19937 rng(20240101);
  int accepted = 0;
  int rejected = 0;
  for (int i = 0; i < kIterations; ++i) {
    std::string bytes = samples[static_cast<size_t>(i) % samples.size()].bytes;
    for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0; --edits) Mutate(bytes, rng);
    for (bool in_stream : {false, true}) {
      Result<Message> decoded = Decode(bytes, in_stream);
      if (!decoded) {
        ++rejected;
        if (decoded.error().kind != ErrorKind::kDecode ||
            decoded.error().message.rfind("pgoutput", 0) != 0) {
          FAIL() << "iteration " << i << ": unexpected error " << decoded.error().message;
        }
        continue;
      }
      ++accepted;
      // Whatever the reader accepts, it understood completely: encoding it back gives the
      // very same bytes.
      if (Encode(decoded.value(), in_stream) != bytes) {
        FAIL() << "iteration " << i << ": accepted bytes do not re-encode identically";
      }
    }
  }
  // Both outcomes occur, so the mutations exercise more than the first check.
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(rejected, 1000);
}

}  // namespace
}  // namespace pgfanout::pgoutput
