// The same WAL read through wal2json (format-version 2) and through pgoutput, captured from
// PostgreSQL 15 with wal2json 2.5 by test/unit/decoders/capture_wal2json.sh (the workload is
// in the script): every change must come out of the wal2json reader as pgoutput describes
// it, with the same commit LSN, ordinal, xid and commit time, the same Relation in effect
// and the same values in the same text form. The few ways wal2json itself loses
// information are checked as what they are.

#include <gtest/gtest.h>

#include <set>

#include "test/unit/decoders/wal2json_test_util.h"

namespace pgfanout::wal2json {
namespace {

using testutil::Change;
using testutil::DataPath;
using testutil::Fields;
using testutil::ReadLines;
using testutil::Resolve;
using testutil::Resolved;

constexpr uint32_t kFloat4 = 700, kFloat8 = 701, kNumeric = 1700;

class CapturedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    docs_ = ReadLines(DataPath("wal2json_stream.jsonl"));
    ASSERT_GT(docs_.size(), 50u);
    Reader reader(ReaderOptions{.tables = testutil::LoadHints()});
    wal2json_ = Resolve(testutil::DecodeAll(reader, docs_));
    pgoutput_ = Resolve(testutil::DecodePgoutput(ReadLines(DataPath("pgoutput_stream.hex"))));
    ASSERT_FALSE(HasFailure());
  }

  // The changes of `table` under one decoder, in order.
  static std::vector<const Change*> Of(const Resolved& r, const std::string& table) {
    std::vector<const Change*> out;
    for (const auto& c : r.changes) {
      if (c.table == table) out.push_back(&c);
    }
    return out;
  }

  static size_t Column(const Change& c, const std::string& name) {
    for (size_t i = 0; i < c.columns.size(); ++i) {
      if (std::get<1>(c.columns[i]) == name) return i;
    }
    ADD_FAILURE() << "no column " << name << " in " << c;
    return 0;
  }

  std::vector<std::string> docs_;
  Resolved wal2json_;
  Resolved pgoutput_;
};

TEST_F(CapturedTest, EveryChangeMatchesPgoutputButForWhatWal2jsonCannotSay) {
  ASSERT_EQ(wal2json_.changes.size(), pgoutput_.changes.size());
  ASSERT_GT(pgoutput_.changes.size(), 30u);
  size_t lost_specials = 0, lost_truncate_options = 0;
  for (size_t i = 0; i < pgoutput_.changes.size(); ++i) {
    Change want = pgoutput_.changes[i];
    // wal2json 2.5 prints NaN and +-Infinity of float and numeric columns as JSON null.
    for (size_t c = 0; c < want.columns.size() && c < want.new_tuple.size(); ++c) {
      uint32_t oid = std::get<2>(want.columns[c]);
      Datum& d = want.new_tuple[c];
      if ((oid == kFloat4 || oid == kFloat8 || oid == kNumeric) && d.kind == ValueKind::kText &&
          (d.text == "NaN" || d.text == "Infinity" || d.text == "-Infinity")) {
        d = Datum{};
        ++lost_specials;
      }
    }
    // ... and does not say whether a TRUNCATE had CASCADE or RESTART IDENTITY.
    if (want.truncate_options != 0) {
      want.truncate_options = 0;
      ++lost_truncate_options;
    }
    EXPECT_EQ(Fields(wal2json_.changes[i]), Fields(want)) << "change " << i << ": " << want;
  }
  EXPECT_EQ(lost_specials, 3u) << "types row 2 holds NaN, -Infinity and NaN";
  EXPECT_EQ(lost_truncate_options, 2u) << "TRUNCATE users RESTART IDENTITY CASCADE (users, child)";
}

TEST_F(CapturedTest, UnchangedToastedValueIsMarkedUnchanged) {
  auto users = Of(wal2json_, "public.users");
  ASSERT_GE(users.size(), 3u);
  const Change& update = *users[2];  // UPDATE users SET name = 'bob' WHERE id = 2
  ASSERT_EQ(update.op, 'U');
  EXPECT_EQ(update.new_tuple[Column(update, "name")], ::pgfanout::testing::Text("bob"));
  EXPECT_EQ(update.new_tuple[Column(update, "bio")].kind, ValueKind::kUnchangedToast);
  EXPECT_EQ(update.old_kind, 0) << "the key did not change: no old tuple, as pgoutput";
  // The last UPDATE comes right after ALTER TABLE users ADD COLUMN score: the document
  // leaves bio out and brings a column the stream has not shown before.
  const Change& last = *users.back();
  EXPECT_EQ(last.new_tuple[Column(last, "bio")].kind, ValueKind::kUnchangedToast);
  EXPECT_EQ(last.new_tuple[Column(last, "score")], ::pgfanout::testing::Text("0"));
}

TEST_F(CapturedTest, FullIdentityUpdateCarriesTheWholeOldRow) {
  auto orders = Of(wal2json_, "public.orders");
  const Change* toast = nullptr;
  for (const Change* c : orders) {
    if (c->op == 'U' && c->new_tuple[0].text == "12") toast = c;
  }
  ASSERT_NE(toast, nullptr);
  EXPECT_EQ(toast->replica_identity, 'f');
  EXPECT_EQ(toast->old_kind, 'O');
  EXPECT_EQ(toast->old_tuple[Column(*toast, "big")].text.size(), 200u * 32);
  EXPECT_EQ(toast->new_tuple[Column(*toast, "big")].kind, ValueKind::kUnchangedToast);
}

TEST_F(CapturedTest, ValuesHaveTheTextFormPgoutputSends) {
  auto types = Of(wal2json_, "public.types");
  ASSERT_GE(types.size(), 3u);
  const Change& row = *types[0];
  auto text = [&](const char* column) { return row.new_tuple[Column(row, column)].text; };
  EXPECT_EQ(text("b"), "t");
  EXPECT_EQ(text("i8"), "-9223372036854775808");
  EXPECT_EQ(text("o"), "4294967295");
  EXPECT_EQ(text("f8"), "-0") << "a JSON -0 keeps its sign";
  EXPECT_EQ(text("n"), "123456789012345678901234567890.123456789") << "no trip through double";
  EXPECT_EQ(text("n2"), "1.50");
  EXPECT_EQ(text("by"), "\\x00ff10") << "wal2json strips the \\x; pgoutput sends it";
  EXPECT_EQ(text("j"), "{\"b\": 1,  \"a\" : [1, 2]}") << "json keeps its spacing";
  EXPECT_EQ(text("jb"), "{\"a\": [1, 2], \"b\": 1}");
  EXPECT_EQ(text("at"), "{\"a b\",\"c\\\"d\",NULL}");
  EXPECT_EQ(text("tstz"), "2024-01-02 08:34:05.678901+05:30");
  for (const auto& column : row.columns) EXPECT_NE(std::get<1>(column), "g") << "generated";
  EXPECT_EQ(types[2]->new_tuple[Column(*types[2], "b")].text, "f");
  EXPECT_EQ(types[2]->new_tuple[Column(*types[2], "f8")].text, "1e-300");
  EXPECT_EQ(types[2]->new_tuple[Column(*types[2], "n")].text, "0.000001000");
  // The type modifiers wal2json prints as text come back as pgoutput's numbers.
  EXPECT_EQ(std::get<3>(row.columns[Column(row, "vc")]), 24);
  EXPECT_EQ(std::get<3>(row.columns[Column(row, "n2")]), (10 << 16 | 2) + 4);
  EXPECT_EQ(std::get<3>(row.columns[Column(row, "iv2")]), (0x1c08 << 16) | 3);
}

TEST_F(CapturedTest, NanAndInfinityArriveAsNull) {
  auto types = Of(wal2json_, "public.types");
  auto pg = Of(pgoutput_, "public.types");
  ASSERT_GE(types.size(), 2u);
  ASSERT_GE(pg.size(), 2u);
  for (const char* column : {"f4", "f8", "n"}) {
    EXPECT_EQ(types[1]->new_tuple[Column(*types[1], column)].kind, ValueKind::kNull) << column;
    EXPECT_EQ(pg[1]->new_tuple[Column(*pg[1], column)].kind, ValueKind::kText) << column;
  }
}

TEST_F(CapturedTest, TruncateCascadeIsNotReported) {
  std::vector<const Change*> w, p;
  for (const auto& c : wal2json_.changes) {
    if (c.op == 'T') w.push_back(&c);
  }
  for (const auto& c : pgoutput_.changes) {
    if (c.op == 'T') p.push_back(&c);
  }
  ASSERT_EQ(w.size(), 3u);  // users and child (one TRUNCATE ... CASCADE), then orders
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(w[0]->commit_lsn, w[1]->commit_lsn);
  EXPECT_EQ(w[1]->ordinal, 1u);
  EXPECT_EQ(p[0]->truncate_options, kTruncateCascade | kTruncateRestartIdentity);
  EXPECT_EQ(w[0]->truncate_options, 0);
}

TEST_F(CapturedTest, LogicalMessagesMatch) {
  ASSERT_EQ(wal2json_.messages.size(), 2u);
  ASSERT_EQ(pgoutput_.messages.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(wal2json_.messages[i].transactional, pgoutput_.messages[i].transactional);
    EXPECT_EQ(wal2json_.messages[i].lsn, pgoutput_.messages[i].lsn);
    EXPECT_EQ(wal2json_.messages[i].prefix, pgoutput_.messages[i].prefix);
    EXPECT_EQ(wal2json_.messages[i].content, pgoutput_.messages[i].content);
  }
  EXPECT_EQ(wal2json_.messages[1].content, "non-tx \"msg\"");
}

TEST_F(CapturedTest, SchemaChangesMidStreamAreFollowed) {
  auto orders = Of(wal2json_, "public.orders");
  auto pg = Of(pgoutput_, "public.orders");
  ASSERT_EQ(orders.size(), pg.size());
  const Change& last = *orders.back();  // DELETE after REPLICA IDENTITY DEFAULT
  EXPECT_EQ(last.replica_identity, 'd');
  EXPECT_EQ(last.old_kind, 'K');
  std::set<std::string> names;
  for (const auto& c : last.columns) names.insert(std::get<1>(c));
  EXPECT_EQ(names, (std::set<std::string>{"id", "amount", "big", "extra"}));
  EXPECT_EQ(std::get<3>(last.columns[Column(last, "amount")]), (12 << 16 | 3) + 4);
}

// Without hints (a table the catalog did not describe) the reader learns shapes from the
// documents alone: the values still match; the relation ids are made up, and what only the
// catalog knows (generated columns, an identity index before its first UPDATE, FULL before
// its first UPDATE) is learned late or not at all.
TEST_F(CapturedTest, WithoutHintsTheValuesStillMatch) {
  Reader reader(ReaderOptions{});
  Resolved bare = Resolve(testutil::DecodeAll(reader, docs_));
  ASSERT_EQ(bare.changes.size(), pgoutput_.changes.size());
  for (size_t i = 0; i < bare.changes.size(); ++i) {
    const Change& got = bare.changes[i];
    const Change& want = pgoutput_.changes[i];
    EXPECT_EQ(std::tie(got.commit_lsn, got.ordinal, got.op, got.table),
              std::tie(want.commit_lsn, want.ordinal, want.op, want.table));
    if (want.table == "public.types" || want.table == "public.orders") continue;
    EXPECT_EQ(got.new_tuple, want.new_tuple) << want;
    if (want.table != "public.Mixed Case") {
      EXPECT_EQ(got.old_tuple, want.old_tuple) << want;
    }
  }
}

}  // namespace
}  // namespace pgfanout::wal2json
