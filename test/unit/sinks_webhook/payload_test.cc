#include "src/sinks/webhook/payload.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace pgfanout::webhook {
namespace {

using nlohmann::json;

std::shared_ptr<const TableSchema> Accounts() {
  auto t = std::make_shared<TableSchema>();
  t->schema_name = "public";
  t->table_name = "accounts";
  t->columns = {{.name = "tenant_id", .type_oid = 25, .part_of_key = true},
                {.name = "id", .type_oid = 23, .part_of_key = true},
                {.name = "balance", .type_oid = 1700},
                {.name = "note", .type_oid = 25},
                {.name = "active", .type_oid = 16},
                {.name = "meta", .type_oid = 3802}};
  return t;
}

Datum T(std::string s) { return {.kind = ValueKind::kText, .text = std::move(s)}; }
Datum Null() { return {}; }
Datum Toast() { return {.kind = ValueKind::kUnchangedToast}; }

ChangeEvent Event(Op op, uint32_t ordinal) {
  return {.id = {Lsn(0x16B3748), ordinal},
          .xid = {747},
          .commit_time_us = 1'700'000'000'123'456,
          .op = op,
          .table = Accounts(),
          .tenant = "t1"};
}

// Formats `events` into one body the way the sink does, and parses it back.
json Body(const PayloadFormatter& f, const std::vector<ChangeEvent>& events,
          const std::string& id = "0/16B3748#0+1") {
  fmt::memory_buffer pieces, body;
  for (const auto& e : events) f.AppendEvent(e, 1'700'000'001'000, pieces);
  f.AppendBody(id, events, std::string_view(pieces.data(), pieces.size()), body);
  return json::parse(std::string_view(body.data(), body.size()));
}

TEST(PgfanoutEnvelopeTest, CarriesEachEventWithItsIdempotencyKeyAndTypedValues) {
  PayloadFormatter f({.sink_id = "hook-t1"});
  ChangeEvent update = Event(Op::kUpdate, 3);
  update.new_row = {T("t1"), T("7"), T("12.50"), Toast(), T("t"), T(R"({"a": [1, null]})")};
  update.old_row = {T("t1"), T("6"), Null(), Null(), Null(), Null()};
  update.old_is_key_only = true;
  ChangeEvent del = Event(Op::kDelete, 4);
  del.old_row = {T("t1"), T("9"), Null(), Null(), Null(), Null()};
  del.old_is_key_only = true;
  json b = Body(f, {update, del}, "0/16B3748#3+2");
  EXPECT_EQ(b["type"], "pgfanout.changes");
  EXPECT_EQ(b["timestamp"], "2023-11-14T22:13:20.123456Z") << "the last event's commit time";
  EXPECT_EQ(b["data"]["sink"], "hook-t1");
  EXPECT_EQ(b["data"]["batch"], "0/16B3748#3+2");
  EXPECT_EQ(b["data"]["count"], 2);
  ASSERT_EQ(b["data"]["events"].size(), 2u);
  const json& u = b["data"]["events"][0];
  EXPECT_EQ(u["id"], "0/16B3748#3");
  EXPECT_EQ(u["lsn"], "0/16B3748");
  EXPECT_EQ(u["commit_time"], "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(u["xid"], 747);
  EXPECT_EQ(u["schema"], "public");
  EXPECT_EQ(u["table"], "accounts");
  EXPECT_EQ(u["op"], "update");
  EXPECT_EQ(u["tenant"], "t1");
  EXPECT_EQ(u["key"], json::parse(R"({"tenant_id": "t1", "id": 7})"));
  EXPECT_EQ(u["new"], json::parse(R"({"tenant_id": "t1", "id": 7, "balance": 12.50,
                                      "active": true, "meta": {"a": [1, null]}})"))
      << "the unchanged TOAST value is left out of new";
  EXPECT_EQ(u["unchanged_toast"], json::parse(R"(["note"])"));
  EXPECT_EQ(u["old"], json::parse(R"({"tenant_id": "t1", "id": 6})")) << "the old key";
  const json& d = b["data"]["events"][1];
  EXPECT_EQ(d["op"], "delete");
  EXPECT_EQ(d["key"], json::parse(R"({"tenant_id": "t1", "id": 9})")) << "from the old row";
  EXPECT_TRUE(d["new"].is_null());
  EXPECT_FALSE(d.contains("unchanged_toast"));
}

TEST(PgfanoutEnvelopeTest, EscapesStringsAndKeepsNanAndNullsAsJsonCan) {
  PayloadFormatter f({.sink_id = "s"});
  ChangeEvent ins = Event(Op::kInsert, 0);
  ins.new_row = {T("t1"), T("1"), T("NaN"), T("a \"q\" \\ \n\t\x01 \xc3\xbc"), Null(), Null()};
  json e = Body(f, {ins})["data"]["events"][0];
  EXPECT_EQ(e["new"]["balance"], "NaN");
  EXPECT_EQ(e["new"]["note"], "a \"q\" \\ \n\t\x01 \xc3\xbc");
  EXPECT_TRUE(e["new"]["active"].is_null());
  EXPECT_TRUE(e["old"].is_null());
}

TEST(PgfanoutEnvelopeTest, ATruncateInAPerTenantSinkNamesTheTenantsItAppliesTo) {
  ChangeEvent tr = Event(Op::kTruncate, 0);
  tr.tenant.reset();
  tr.truncate_flags = kTruncateCascade;
  json scoped = Body(PayloadFormatter({.sink_id = "s", .truncate_scope = {"t2", "t3"}}), {tr});
  const json& e = scoped["data"]["events"][0];
  EXPECT_EQ(e["op"], "truncate");
  EXPECT_EQ(e["only_tenants"], json::parse(R"(["t2", "t3"])"));
  EXPECT_EQ(e["cascade"], true);
  EXPECT_EQ(e["restart_identity"], false);
  EXPECT_FALSE(e.contains("key"));
  json all = Body(PayloadFormatter({.sink_id = "s"}), {tr});
  EXPECT_FALSE(all["data"]["events"][0].contains("only_tenants")) << "a \"*\" sink: every row";
}

TEST(DebeziumEnvelopeTest, EachEventHasDebeziumsShape) {
  PayloadFormatter f({.envelope = Envelope::kDebezium, .sink_id = "hook-dbz"});
  ChangeEvent ins = Event(Op::kInsert, 0);
  ins.new_row = {T("t1"), T("7"), T("1.25"), T("n"), T("f"), Null()};
  ChangeEvent upd = Event(Op::kUpdate, 1);
  upd.new_row = {T("t1"), T("7"), T("2.25"), Toast(), T("f"), Null()};
  ChangeEvent del = Event(Op::kDelete, 2);
  del.old_row = {T("t1"), T("7"), Null(), Null(), Null(), Null()};
  del.old_is_key_only = true;
  ChangeEvent tr = Event(Op::kTruncate, 3);
  tr.tenant.reset();
  json b = Body(f, {ins, upd, del, tr});
  ASSERT_TRUE(b.is_array());
  ASSERT_EQ(b.size(), 4u);
  const json& c = b[0];
  EXPECT_EQ(c["op"], "c");
  EXPECT_TRUE(c["before"].is_null());
  EXPECT_EQ(c["after"], json::parse(R"({"tenant_id": "t1", "id": 7, "balance": 1.25,
                                        "note": "n", "active": false, "meta": null})"));
  EXPECT_EQ(c["ts_ms"], 1'700'000'001'000) << "when the batch was formatted";
  EXPECT_TRUE(c.contains("transaction") && c["transaction"].is_null());
  const json& s = c["source"];
  EXPECT_EQ(s["connector"], "pgfanout");
  EXPECT_EQ(s["name"], "hook-dbz");
  EXPECT_EQ(s["ts_ms"], 1'700'000'000'123) << "the commit time";
  EXPECT_EQ(s["schema"], "public");
  EXPECT_EQ(s["table"], "accounts");
  EXPECT_EQ(s["txId"], 747);
  EXPECT_EQ(s["lsn"], 0x16B3748) << "Debezium's lsn is a number";
  EXPECT_EQ(s["event_id"], "0/16B3748#0");
  EXPECT_TRUE(s["version"].is_string());
  EXPECT_TRUE(s.contains("db"));
  EXPECT_EQ(b[1]["op"], "u");
  EXPECT_TRUE(b[1]["before"].is_null()) << "default replica identity, key unchanged";
  EXPECT_EQ(b[1]["after"]["note"], PayloadFormatter::kDebeziumUnavailable);
  EXPECT_EQ(b[2]["op"], "d");
  EXPECT_TRUE(b[2]["after"].is_null());
  EXPECT_EQ(b[2]["before"]["id"], 7);
  EXPECT_TRUE(b[2]["before"]["balance"].is_null());
  EXPECT_EQ(b[3]["op"], "t");
  EXPECT_TRUE(b[3]["before"].is_null() && b[3]["after"].is_null());
  EXPECT_FALSE(b[3]["source"].contains("only_tenants"));
}

TEST(DebeziumEnvelopeTest, BatchSizeOneSendsTheBareEventAsDebeziumServerDoes) {
  PayloadFormatter f({.envelope = Envelope::kDebezium, .sink_id = "s", .bare_single = true});
  ChangeEvent ins = Event(Op::kInsert, 0);
  ins.new_row = {T("t1"), T("7"), Null(), Null(), Null(), Null()};
  json b = Body(f, {ins});
  ASSERT_TRUE(b.is_object());
  EXPECT_EQ(b["op"], "c");
  ChangeEvent tr = Event(Op::kTruncate, 1);
  json scoped = Body(
      PayloadFormatter({.envelope = Envelope::kDebezium, .sink_id = "s", .truncate_scope = {"t1"}}),
      {tr});
  EXPECT_EQ(scoped[0]["source"]["only_tenants"], json::parse(R"(["t1"])"));
}

TEST(PayloadFormatterTest, TheSameEventsGiveTheSameBody) {
  PayloadFormatter f({.sink_id = "s"});
  ChangeEvent ins = Event(Op::kInsert, 0);
  ins.new_row = {T("t1"), T("7"), Null(), Null(), Null(), Null()};
  EXPECT_EQ(Body(f, {ins, ins}).dump(), Body(f, {ins, ins}).dump());
}

}  // namespace
}  // namespace pgfanout::webhook
