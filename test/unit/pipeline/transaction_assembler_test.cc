#include "src/pipeline/transaction_assembler.h"

#include <gtest/gtest.h>

#include "checkpoints/event_log.h"
#include "decoders/pgoutput/reader.h"
#include "test/support/pgoutput_builder.h"

namespace pgfanout {
namespace {

using namespace pgoutput;
using testing::Encode;
using testing::Text;
using testing::TextTuple;
using testing::UnchangedToast;

constexpr RelationId kUsers{16384};
constexpr RelationId kOther{16390};

class TransactionAssemblerTest : public ::testing::Test {
 protected:
  TransactionAssemblerTest()
      : log_(NewMemoryEventLog()),
        tables_{TableConfig{.schema = "public", .name = "users", .tenant_column = "tenant_id"}},
        assembler_(*log_, tables_) {}

  // Sends a message as the server would: encoded, then decoded as the pipeline does.
  void Feed(const Message& m) {
    auto decoded = Decode(Encode(m, assembler_.in_stream()), assembler_.in_stream());
    ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
    auto r = assembler_.Apply(std::move(decoded).value(), ready_);
    ASSERT_TRUE(r.has_value()) << r.error().message;
  }

  void DescribeTables(Xid xid = Xid{}) {
    Feed(Relation{.xid = xid,
                  .relation_id = kUsers,
                  .namespace_name = "public",
                  .relation_name = "users",
                  .replica_identity = 'd',
                  .columns = {{.flags = 1, .name = "id", .type_oid = 23},
                              {.flags = 0, .name = "tenant_id", .type_oid = 25},
                              {.flags = 0, .name = "name", .type_oid = 25}}});
    Feed(Relation{.xid = xid,
                  .relation_id = kOther,
                  .namespace_name = "public",
                  .relation_name = "other",
                  .replica_identity = 'd',
                  .columns = {{.flags = 1, .name = "id", .type_oid = 23}}});
  }

  std::vector<ChangeEvent> ReadAll() {
    PGF_ASSERT_OK(log_->Append(ready_));
    ready_.clear();
    auto events = log_->Read(EventId{}, 1'000'000);
    EXPECT_TRUE(events.has_value());
    return events.has_value() ? std::move(events).value() : std::vector<ChangeEvent>{};
  }

  static void PGF_ASSERT_OK(const Result<void>& r) {
    ASSERT_TRUE(r.has_value()) << r.error().message;
  }

  std::unique_ptr<EventLog> log_;
  std::vector<TableConfig> tables_;
  TransactionAssembler assembler_;
  std::vector<TransactionRecord> ready_;
};

TEST_F(TransactionAssemblerTest, AssignsIdsAtCommitInStatementOrder) {
  DescribeTables();
  Feed(Begin{.final_lsn = Lsn(0x200), .commit_time = 1'000'000, .xid = Xid{700}});
  Feed(Insert{.relation_id = kUsers, .new_tuple = TextTuple({"1", "7", "ada"})});
  Feed(Insert{.relation_id = kOther, .new_tuple = TextTuple({"5"})});  // untracked
  Feed(Update{.relation_id = kUsers,
              .old_kind = 'K',
              .old_tuple = {Text("1"), testing::Null(), testing::Null()},
              .new_tuple = TextTuple({"2", "9", "ada"})});
  Feed(Delete{.relation_id = kUsers,
              .old_kind = 'K',
              .old_tuple = {Text("2"), testing::Null(), testing::Null()}});
  EXPECT_TRUE(ready_.empty()) << "nothing is ready before Commit";
  Feed(Commit{.commit_lsn = Lsn(0x200), .end_lsn = Lsn(0x230), .commit_time = 1'000'000});
  ASSERT_EQ(ready_.size(), 1u);
  EXPECT_EQ(ready_[0].end_lsn, Lsn(0x230));
  auto events = ReadAll();
  ASSERT_EQ(events.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(events[i].id, (EventId{Lsn(0x200), i}));
  EXPECT_EQ(events[0].op, Op::kInsert);
  EXPECT_EQ(events[0].tenant, "7");
  EXPECT_EQ(events[1].tenant, "9") << "an update's tenant comes from the new row";
  EXPECT_EQ(events[2].tenant, std::nullopt) << "the old key does not carry tenant_id";
  EXPECT_EQ(events[0].xid, Xid{700});
  EXPECT_EQ(events[0].commit_time_us, 1'000'000 + kPostgresEpochOffsetUs);
  EXPECT_EQ(events[0].table->QualifiedName(), "public.users");
}

// A row that moved between tenants names its old tenant, which the log indexes it under
// too; an old row with the same tenant, or none, names none.
TEST_F(TransactionAssemblerTest, AnUpdateThatMovesARowNamesItsOldTenant) {
  DescribeTables();
  Feed(Begin{.final_lsn = Lsn(0x200), .xid = Xid{700}});
  Feed(Update{.relation_id = kUsers, .old_kind = 'O', .old_tuple = TextTuple({"1", "7", "a"}),
              .new_tuple = TextTuple({"1", "9", "a"})});
  Feed(Update{.relation_id = kUsers, .old_kind = 'O', .old_tuple = TextTuple({"1", "9", "a"}),
              .new_tuple = TextTuple({"1", "9", "b"})});
  Feed(Update{.relation_id = kUsers, .new_tuple = TextTuple({"1", "9", "c"})});
  Feed(Update{.relation_id = kUsers, .old_kind = 'O', .old_tuple = TextTuple({"1", "9", "c"}),
              .new_tuple = {Text("1"), testing::Null(), Text("c")}});
  Feed(Commit{.commit_lsn = Lsn(0x200), .end_lsn = Lsn(0x230)});
  auto events = ReadAll();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].old_tenant, "7");
  EXPECT_EQ(events[0].tenant, "9");
  EXPECT_EQ(events[1].old_tenant, std::nullopt) << "same tenant: not a move";
  EXPECT_EQ(events[2].old_tenant, std::nullopt) << "no old row";
  EXPECT_EQ(events[3].old_tenant, "9") << "to a NULL tenant is a move out of 9";
  EXPECT_EQ(events[3].tenant, std::nullopt);
}

TEST_F(TransactionAssemblerTest, KeepsUnchangedToastExplicit) {
  DescribeTables();
  Feed(Begin{.final_lsn = Lsn(0x300), .xid = Xid{701}});
  Feed(Update{.relation_id = kUsers, .new_tuple = {Text("1"), Text("7"), UnchangedToast()}});
  Feed(Commit{.commit_lsn = Lsn(0x300), .end_lsn = Lsn(0x310)});
  auto events = ReadAll();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].new_row[2].kind, ValueKind::kUnchangedToast);
  EXPECT_TRUE(events[0].old_row.empty());
}

TEST_F(TransactionAssemblerTest, StreamedTransactionDropsAbortedSubtransaction) {
  DescribeTables();
  const Xid top{800}, sub{801};
  Feed(StreamStart{.xid = top, .first_segment = true});
  Feed(Insert{.xid = top, .relation_id = kUsers, .new_tuple = TextTuple({"1", "7", "a"})});
  Feed(Insert{.xid = sub, .relation_id = kUsers, .new_tuple = TextTuple({"2", "7", "b"})});
  Feed(StreamStop{});
  // Another transaction commits while the streamed one is open.
  Feed(Begin{.final_lsn = Lsn(0x400), .xid = Xid{900}});
  Feed(Insert{.relation_id = kUsers, .new_tuple = TextTuple({"9", "9", "plain"})});
  Feed(Commit{.commit_lsn = Lsn(0x400), .end_lsn = Lsn(0x410)});
  Feed(StreamStart{.xid = top});
  Feed(Insert{.xid = top, .relation_id = kUsers, .new_tuple = TextTuple({"3", "7", "c"})});
  Feed(StreamStop{});
  Feed(StreamAbort{.xid = top, .subxid = sub});
  EXPECT_FALSE(assembler_.idle());
  Feed(StreamCommit{.xid = top, .commit_lsn = Lsn(0x500), .end_lsn = Lsn(0x510)});
  EXPECT_TRUE(assembler_.idle());
  ASSERT_EQ(ready_.size(), 2u);
  EXPECT_TRUE(ready_[1].events.empty()) << "a streamed transaction's events go to the log directly";
  auto events = ReadAll();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].new_row[2].text, "plain");
  EXPECT_EQ(events[1].id, (EventId{Lsn(0x500), 0}));
  EXPECT_EQ(events[1].new_row[0].text, "1");
  EXPECT_EQ(events[2].id, (EventId{Lsn(0x500), 1}));
  EXPECT_EQ(events[2].new_row[0].text, "3") << "row 2 was in the aborted subtransaction";
  EXPECT_EQ(events[2].xid, top);
}

TEST_F(TransactionAssemblerTest, AbortedStreamedTransactionLeavesNothing) {
  DescribeTables();
  Feed(StreamStart{.xid = Xid{810}, .first_segment = true});
  Feed(Insert{.xid = Xid{810}, .relation_id = kUsers, .new_tuple = TextTuple({"1", "7", "a"})});
  Feed(StreamStop{});
  Feed(StreamAbort{.xid = Xid{810}, .subxid = Xid{810}});
  EXPECT_TRUE(assembler_.idle());
  EXPECT_TRUE(ready_.empty());
  int spilled = 0;
  ASSERT_TRUE(log_->SpillScan(Xid{810}, [&](const ChangeEvent&) -> Result<void> {
    ++spilled;
    return boost::outcome_v2::success();
  }));
  EXPECT_EQ(spilled, 0);
}

TEST_F(TransactionAssemblerTest, TruncateBecomesOneEventPerTrackedTable) {
  DescribeTables();
  Feed(Begin{.final_lsn = Lsn(0x600), .xid = Xid{1}});
  Feed(Truncate{.options = 3, .relation_ids = {kOther, kUsers}});
  Feed(Commit{.commit_lsn = Lsn(0x600), .end_lsn = Lsn(0x610)});
  auto events = ReadAll();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].op, Op::kTruncate);
  EXPECT_EQ(events[0].truncate_flags, kTruncateCascade | kTruncateRestartIdentity);
  EXPECT_FALSE(events[0].tenant.has_value());
}

TEST_F(TransactionAssemblerTest, SkipsTransactionsTheLogAlreadyHolds) {
  TransactionRecord durable{.commit_lsn = Lsn(0x700), .end_lsn = Lsn(0x710)};
  ASSERT_TRUE(log_->Append(std::span<const TransactionRecord>(&durable, 1)));
  TransactionAssembler fresh(*log_, tables_);
  std::vector<TransactionRecord> ready;
  auto apply = [&](Message m) { ASSERT_TRUE(fresh.Apply(std::move(m), ready)); };
  apply(Relation{.relation_id = kUsers,
                 .namespace_name = "public",
                 .relation_name = "users",
                 .columns = {{.flags = 1, .name = "id", .type_oid = 23},
                             {.name = "tenant_id", .type_oid = 25},
                             {.name = "name", .type_oid = 25}}});
  apply(Begin{.final_lsn = Lsn(0x700), .xid = Xid{5}});
  apply(Insert{.relation_id = kUsers, .new_tuple = TextTuple({"1", "7", "resent"})});
  apply(Commit{.commit_lsn = Lsn(0x700), .end_lsn = Lsn(0x710)});
  EXPECT_TRUE(ready.empty());
  apply(Begin{.final_lsn = Lsn(0x720), .xid = Xid{6}});
  apply(Insert{.relation_id = kUsers, .new_tuple = TextTuple({"2", "7", "new"})});
  apply(Commit{.commit_lsn = Lsn(0x720), .end_lsn = Lsn(0x730)});
  EXPECT_EQ(ready.size(), 1u);
}

TEST_F(TransactionAssemblerTest, RejectsProtocolViolations) {
  DescribeTables();
  std::vector<TransactionRecord> ready;
  auto r = assembler_.Apply(Insert{.relation_id = kUsers, .new_tuple = TextTuple({"1", "7", "a"})},
                            ready);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kProtocol);

  r = assembler_.Apply(Begin{.final_lsn = Lsn(0x800), .xid = Xid{1}}, ready);
  ASSERT_TRUE(r.has_value());
  r = assembler_.Apply(Insert{.relation_id = RelationId{999}, .new_tuple = TextTuple({"1"})},
                       ready);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("relation 999"), std::string::npos) << r.error().message;

  r = assembler_.Apply(Insert{.relation_id = kUsers, .new_tuple = TextTuple({"1", "7"})}, ready);
  ASSERT_FALSE(r.has_value()) << "a tuple with too few columns";

  r = assembler_.Apply(Commit{.commit_lsn = Lsn(0x900), .end_lsn = Lsn(0x910)}, ready);
  ASSERT_FALSE(r.has_value()) << "a commit that does not match its begin";
}

TEST_F(TransactionAssemblerTest, MissingTenantColumnIsAConfigError) {
  std::vector<TableConfig> tables{
      TableConfig{.schema = "public", .name = "users", .tenant_column = "org_id"}};
  TransactionAssembler a(*log_, tables);
  std::vector<TransactionRecord> ready;
  auto r = a.Apply(Relation{.relation_id = kUsers,
                            .namespace_name = "public",
                            .relation_name = "users",
                            .columns = {{.flags = 1, .name = "id", .type_oid = 23}}},
                   ready);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("org_id"), std::string::npos);
}

TEST_F(TransactionAssemblerTest, FullReplicaIdentityKeysEventsByTheTablesRealKey) {
  // Under REPLICA IDENTITY FULL pgoutput flags every column as key; sinks upsert by the
  // table's key (from the source's primary key, filled into TableConfig::key).
  std::vector<TableConfig> tables{TableConfig{
      .schema = "public", .name = "users", .tenant_column = "tenant_id", .key = {"id"}}};
  TransactionAssembler a(*log_, tables);
  std::vector<TransactionRecord> ready;
  auto r = a.Apply(Relation{.relation_id = kUsers,
                            .namespace_name = "public",
                            .relation_name = "users",
                            .replica_identity = 'f',
                            .columns = {{.flags = 1, .name = "id", .type_oid = 23},
                                        {.flags = 1, .name = "tenant_id", .type_oid = 25}}},
                   ready);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_TRUE(a.Apply(Begin{.final_lsn = Lsn(0x200), .xid = Xid{700}}, ready).has_value());
  ASSERT_TRUE(a.Apply(Insert{.relation_id = kUsers, .new_tuple = TextTuple({"1", "7"})}, ready)
                  .has_value());
  ASSERT_TRUE(a.Apply(Commit{.commit_lsn = Lsn(0x200), .end_lsn = Lsn(0x210)}, ready).has_value());
  ASSERT_EQ(ready.size(), 1u);
  ASSERT_EQ(ready[0].events.size(), 1u);
  const auto& columns = ready[0].events[0].table->columns;
  EXPECT_TRUE(columns[0].part_of_key);
  EXPECT_FALSE(columns[1].part_of_key) << "tenant_id is in the identity, not in the key";
}

}  // namespace
}  // namespace pgfanout
