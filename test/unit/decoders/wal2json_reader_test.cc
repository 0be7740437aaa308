// decoders/wal2json/reader.h: documents in, pgoutput messages out. Transaction framing
// (empty transactions, large ones streamed), Relations and their shapes (hints, TOAST left
// out, DDL, replica identity), and rejections of documents out of order. Documents from a
// real server: wal2json_captured_test.cc.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "test/unit/decoders/wal2json_test_util.h"

namespace pgfanout::wal2json {
namespace {

using ::pgfanout::testing::Null;
using ::pgfanout::testing::Text;
using ::pgfanout::testing::UnchangedToast;
using testutil::Resolve;

constexpr char kTs[] = R"("timestamp":"2024-01-01 00:00:00+00")";

std::string B(uint32_t xid = 700, const char* lsn = "0/1000", const char* next = "0/1030") {
  return fmt::format(R"({{"action":"B","xid":{},{},"lsn":"{}","nextlsn":"{}"}})", xid, kTs, lsn,
                     next);
}
std::string C(uint32_t xid = 700, const char* lsn = "0/1000", const char* next = "0/1030") {
  return fmt::format(R"({{"action":"C","xid":{},{},"lsn":"{}","nextlsn":"{}"}})", xid, kTs, lsn,
                     next);
}
// A column of public.t: {"name":..,"type":..,"typeoid":..,"value":..,"position":..}.
std::string Col(const char* name, int position, const char* value, const char* type = "text",
                int oid = 25) {
  return fmt::format(R"({{"name":"{}","type":"{}","typeoid":{},"value":{},"position":{}}})", name,
                     type, oid, value, position);
}
std::string Change(char action, const std::string& columns, const std::string& identity = "",
                   const char* pk = R"([{"name":"id","type":"integer","typeoid":23}])") {
  std::string doc = fmt::format(R"({{"action":"{}","xid":700,{},"lsn":"0/1000","schema":"public",)"
                                R"("table":"t")",
                                action, kTs);
  if (!columns.empty()) doc += R"(,"columns":[)" + columns + "]";
  if (!identity.empty()) doc += R"(,"identity":[)" + identity + "]";
  return doc + R"(,"pk":)" + pk + "}";
}
std::string Id(const char* value) {
  return fmt::format(R"({{"name":"id","type":"integer","typeoid":23,"value":{}}})", value);
}
std::string Row(const char* id, const char* name, const char* bio) {
  return Col("id", 1, id, "integer", 23) + "," + Col("name", 2, name) + "," + Col("bio", 3, bio);
}

// public.t (id int PRIMARY KEY, name text, bio text), OID 16400, as the catalog says.
TableHint Hint(char identity = 'd') {
  return TableHint{.schema = "public",
                   .table = "t",
                   .relation_id = 16400,
                   .replica_identity = identity,
                   .columns = {{.attnum = 1,
                                .name = "id",
                                .type_oid = 23,
                                .type_text = "integer",
                                .in_primary_key = true},
                               {.attnum = 2, .name = "name", .type_oid = 25, .type_text = "text"},
                               {.attnum = 3, .name = "bio", .type_oid = 25, .type_text = "text"}}};
}

std::vector<pgoutput::Message> Decoded(const std::vector<std::string>& docs,
                                       ReaderOptions options = ReaderOptions{.tables = {Hint()}}) {
  Reader reader(options);
  return testutil::DecodeAll(reader, docs);
}

template <class T>
std::vector<T> All(const std::vector<pgoutput::Message>& messages) {
  std::vector<T> out;
  for (const auto& m : messages) {
    if (auto* t = std::get_if<T>(&m)) out.push_back(*t);
  }
  return out;
}

std::string Rejection(const std::vector<std::string>& docs) {
  Reader reader(ReaderOptions{.tables = {Hint()}});
  std::vector<pgoutput::Message> out;
  for (size_t i = 0; i < docs.size(); ++i) {
    auto r = reader.Decode(docs[i], out);
    if (!r) {
      EXPECT_EQ(r.error().kind, ErrorKind::kDecode);
      EXPECT_EQ(i, docs.size() - 1) << "rejected early: " << r.error().message;
      return r.error().message;
    }
  }
  ADD_FAILURE() << "all accepted";
  return "";
}

TEST(Wal2jsonReaderTest, TransactionBecomesBeginRelationChangeCommit) {
  auto out = Decoded({B(), Change('I', Row("1", R"("ada")", "null")), C()});
  ASSERT_EQ(out.size(), 4u);
  auto begin = std::get<pgoutput::Begin>(out[0]);
  EXPECT_EQ(begin.final_lsn, Lsn(0x1000)) << "B's lsn is the commit LSN, pgoutput's final_lsn";
  EXPECT_EQ(begin.xid.value, 700u);
  EXPECT_EQ(begin.commit_time, 757'382'400'000'000);
  auto rel = std::get<pgoutput::Relation>(out[1]);
  EXPECT_EQ(rel.relation_id.value, 16400u);
  EXPECT_EQ(rel.replica_identity, 'd');
  ASSERT_EQ(rel.columns.size(), 3u);
  EXPECT_EQ(rel.columns[0].flags, 1);
  EXPECT_EQ(rel.columns[1].flags, 0);
  auto insert = std::get<pgoutput::Insert>(out[2]);
  EXPECT_EQ(insert.xid.value, 0u) << "outside a stream pgoutput sends no xid";
  EXPECT_EQ(insert.new_tuple, (pgoutput::Tuple{Text("1"), Text("ada"), Null()}));
  auto commit = std::get<pgoutput::Commit>(out[3]);
  EXPECT_EQ(commit.commit_lsn, Lsn(0x1000));
  EXPECT_EQ(commit.end_lsn, Lsn(0x1030));
}

TEST(Wal2jsonReaderTest, TransactionWithNothingTrackedSendsNothing) {
  Reader reader(ReaderOptions{});
  std::vector<pgoutput::Message> out;
  ASSERT_TRUE(reader.Decode(B(), out));
  EXPECT_TRUE(out.empty()) << "Begin waits for the first change";
  EXPECT_FALSE(reader.idle());
  ASSERT_TRUE(reader.Decode(C(), out));
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(reader.idle());
}

TEST(Wal2jsonReaderTest, LargeTransactionGoesOutAsStreamSegments) {
  std::vector<std::string> docs = {B()};
  for (int i = 1; i <= 12; ++i) {
    std::string id = std::to_string(i);
    docs.push_back(Change('I', Row(id.c_str(), R"("x")", "null")));
  }
  docs.push_back(C());
  auto plain = Decoded(docs);
  auto streamed = Decoded(docs, ReaderOptions{.tables = {Hint()}, .stream_threshold_bytes = 600});
  EXPECT_TRUE(All<pgoutput::StreamStart>(plain).empty());
  auto starts = All<pgoutput::StreamStart>(streamed);
  ASSERT_GE(starts.size(), 2u);
  EXPECT_TRUE(starts[0].first_segment);
  EXPECT_FALSE(starts[1].first_segment);
  EXPECT_EQ(All<pgoutput::StreamStop>(streamed).size(), starts.size());
  EXPECT_TRUE(All<pgoutput::Begin>(streamed).empty());
  ASSERT_EQ(All<pgoutput::StreamCommit>(streamed).size(), 1u);
  EXPECT_TRUE(std::holds_alternative<pgoutput::StreamCommit>(streamed.back()));
  for (const auto& insert : All<pgoutput::Insert>(streamed)) EXPECT_EQ(insert.xid.value, 700u);
  // The same changes, ids and values either way.
  auto a = Resolve(plain).changes;
  auto b = Resolve(streamed).changes;
  ASSERT_EQ(a.size(), 12u);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(testutil::Fields(a[i]), testutil::Fields(b[i]));
}

TEST(Wal2jsonReaderTest, RelationGoesOutOnlyWhenTheShapeChanges) {
  auto out = Decoded(
      {B(), Change('I', Row("1", "null", "null")), Change('I', Row("2", "null", "null")),
       Change('I', Row("3", "null", "null") + "," + Col("extra", 4, "5", "integer", 23)), C()});
  auto rels = All<pgoutput::Relation>(out);
  ASSERT_EQ(rels.size(), 2u);
  EXPECT_EQ(rels[1].columns.size(), 4u);
  EXPECT_EQ(rels[1].columns[3].name, "extra");
}

TEST(Wal2jsonReaderTest, ColumnLeftOutOfAnUpdateIsUnchangedToast) {
  auto out = Decoded(
      {B(), Change('U', Col("id", 1, "1", "integer", 23) + "," + Col("name", 2, R"("b")"), Id("1")),
       C()});
  auto updates = All<pgoutput::Update>(out);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].new_tuple, (pgoutput::Tuple{Text("1"), Text("b"), UnchangedToast()}));
  EXPECT_EQ(updates[0].old_kind, 0) << "identity equals the new key: the key did not change";
}

TEST(Wal2jsonReaderTest, FixedLengthColumnLeftOutWasDropped) {
  TableHint hint = Hint();
  hint.columns.push_back({.attnum = 4, .name = "n", .type_oid = 23, .type_text = "integer"});
  auto out = Decoded({B(), Change('U', Row("1", R"("b")", R"("c")"), Id("1")), C()},
                     ReaderOptions{.tables = {hint}});
  auto rel = All<pgoutput::Relation>(out);
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].columns.size(), 3u) << "an integer is never TOASTed: n is gone";
}

TEST(Wal2jsonReaderTest, KeyChangeSendsTheOldKey) {
  auto out = Decoded({B(), Change('U', Row("2", R"("b")", "null"), Id("1")), C()});
  auto update = All<pgoutput::Update>(out).at(0);
  EXPECT_EQ(update.old_kind, 'K');
  EXPECT_EQ(update.old_tuple, (pgoutput::Tuple{Text("1"), Null(), Null()}));
}

TEST(Wal2jsonReaderTest, DeleteSendsTheKey) {
  auto out = Decoded({B(), Change('D', "", Id("1")), C()});
  auto del = All<pgoutput::Delete>(out).at(0);
  EXPECT_EQ(del.old_kind, 'K');
  EXPECT_EQ(del.old_tuple, (pgoutput::Tuple{Text("1"), Null(), Null()}));
}

TEST(Wal2jsonReaderTest, ReplicaIdentityChangesAreFollowed) {
  // ALTER TABLE t REPLICA IDENTITY FULL: the identity becomes the whole old row.
  std::string full = Id("1") + "," + Col("name", 0, R"("a")") + "," + Col("bio", 0, R"("x")");
  full = std::regex_replace(full, std::regex(R"(,"position":0)"), "");
  auto out = Decoded({B(), Change('U', Row("1", R"("b")", R"("x")"), full), C(), B(701, "0/2000"),
                      Change('D', "", Id("1")), C(701, "0/2000")});
  auto rels = All<pgoutput::Relation>(out);
  ASSERT_EQ(rels.size(), 2u);
  EXPECT_EQ(rels[0].replica_identity, 'f');
  for (const auto& c : rels[0].columns) EXPECT_EQ(c.flags, 1) << "FULL flags every column";
  auto update = All<pgoutput::Update>(out).at(0);
  EXPECT_EQ(update.old_kind, 'O');
  EXPECT_EQ(update.old_tuple, (pgoutput::Tuple{Text("1"), Text("a"), Text("x")}));
  // ... and back to DEFAULT: the identity is the primary key again.
  EXPECT_EQ(rels[1].replica_identity, 'd');
  EXPECT_EQ(All<pgoutput::Delete>(out).at(0).old_kind, 'K');
}

TEST(Wal2jsonReaderTest, GeneratedColumnsAreLeftOutAsPgoutputDoes) {
  TableHint hint = Hint();
  hint.columns.push_back(
      {.attnum = 4, .name = "g", .type_oid = 23, .type_text = "integer", .generated = true});
  auto out = Decoded(
      {B(), Change('I', Row("1", "null", "null") + "," + Col("g", 4, "2", "integer", 23)), C()},
      ReaderOptions{.tables = {hint}});
  EXPECT_EQ(All<pgoutput::Relation>(out).at(0).columns.size(), 3u);
  EXPECT_EQ(All<pgoutput::Insert>(out).at(0).new_tuple.size(), 3u);
}

TEST(Wal2jsonReaderTest, TruncateAnnouncesTheTableFirst) {
  std::string truncate = fmt::format(
      R"({{"action":"T","xid":700,{},"lsn":"0/1000","schema":"public","table":"t"}})", kTs);
  auto out = Decoded({B(), truncate, C()});
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(std::get<pgoutput::Relation>(out[1]).relation_id.value, 16400u);
  auto t = std::get<pgoutput::Truncate>(out[2]);
  EXPECT_EQ(t.relation_ids, (std::vector<RelationId>{RelationId{16400}}));
  EXPECT_EQ(t.options, 0) << "wal2json does not report CASCADE or RESTART IDENTITY";
}

TEST(Wal2jsonReaderTest, MessagesInAndOutsideTransactions) {
  std::string tx = R"({"action":"M","xid":700,"lsn":"0/1010","transactional":true,"prefix":"p",)"
                   R"("content":"in"})";
  std::string nontx = R"({"action":"M","xid":null,"timestamp":null,"lsn":"0/1020",)"
                      R"("transactional":false,"prefix":"p","content":"out"})";
  auto out = Decoded({nontx, B(), tx, C()});
  ASSERT_EQ(out.size(), 4u) << "a message-only transaction is still sent, as pgoutput does";
  EXPECT_EQ(std::get<pgoutput::LogicalMessage>(out[0]).content, "out");
  EXPECT_FALSE(std::get<pgoutput::LogicalMessage>(out[0]).transactional);
  EXPECT_EQ(std::get<pgoutput::LogicalMessage>(out[2]).content, "in");
  EXPECT_EQ(Rejection({tx}), "wal2json 'M' document: transactional, outside B ... C");
}

TEST(Wal2jsonReaderTest, RejectsDocumentsOutOfOrderOrIncomplete) {
  EXPECT_EQ(Rejection({Change('I', Row("1", "null", "null"))}),
            "wal2json 'I' document: outside B ... C");
  EXPECT_EQ(Rejection({C()}), "wal2json 'C' document: without B");
  EXPECT_EQ(Rejection({B(), B()}), "wal2json 'B' document: inside an open transaction");
  EXPECT_EQ(Rejection({B(), C(700, "0/1008")}),
            "wal2json 'C' document: for xid 700 at 0/1008, but B was xid 700 at 0/1000");
  EXPECT_EQ(Rejection({R"({"action":"B","xid":1,"lsn":"0/1","nextlsn":"0/2"})"}),
            "wal2json 'B' document: no \"timestamp\"");
  EXPECT_EQ(Rejection({B(), Change('I', "")}),
            "wal2json 'I' document for public.t: no \"columns\"");
  EXPECT_EQ(Rejection({B(), Change('D', "")}),
            "wal2json 'D' document for public.t: no \"identity\"");
  EXPECT_EQ(Rejection({B(), R"({"action":"I","columns":[]})"}),
            "wal2json 'I' document for ?.?: no \"schema\" or \"table\"");
  EXPECT_EQ(Rejection({B(), Change('D', "", R"({"name":"nope","value":1})")}),
            "wal2json 'D' document for public.t: its identity names column nope that the "
            "table does not have");
}

TEST(Wal2jsonReaderTest, ResetForgetsTheOpenTransactionAndAnnouncesAgain) {
  Reader reader(ReaderOptions{.tables = {Hint()}});
  std::vector<pgoutput::Message> out;
  for (const auto& d : {B(), Change('I', Row("1", "null", "null")), C()}) {
    ASSERT_TRUE(reader.Decode(d, out));
  }
  ASSERT_TRUE(reader.Decode(B(701, "0/2000"), out));
  reader.Reset();
  EXPECT_TRUE(reader.idle());
  out.clear();
  for (const auto& d :
       {B(701, "0/2000"), Change('I', Row("2", "null", "null")), C(701, "0/2000")}) {
    ASSERT_TRUE(reader.Decode(d, out)) << d;
  }
  EXPECT_EQ(All<pgoutput::Relation>(out).size(), 1u);
}

}  // namespace
}  // namespace pgfanout::wal2json
