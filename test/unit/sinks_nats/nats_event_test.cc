// What a NATS consumer sees of an event: its subject (tokens escaped so that no tenant or
// table name can add a level or a wildcard, and no two values share one), its headers
// (the id JetStream deduplicates by) and its JSON body.

#include "src/sinks/nats/nats_event.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace pgfanout::nats {
namespace {

using nlohmann::json;

constexpr uint32_t kBool = 16, kInt4 = 23, kText = 25, kNumeric = 1700, kJsonb = 3802;

std::shared_ptr<const TableSchema> Table(std::string schema = "public",
                                         std::string name = "accounts",
                                         bool full_identity = false) {
  return std::make_shared<const TableSchema>(TableSchema{
      .schema_name = std::move(schema),
      .table_name = std::move(name),
      .replica_identity = full_identity ? 'f' : 'd',
      .columns = {{.name = "tenant_id", .type_oid = kText, .part_of_key = true},
                  {.name = "id", .type_oid = kInt4, .part_of_key = true},
                  {.name = "balance", .type_oid = kNumeric, .part_of_key = full_identity},
                  {.name = "active", .type_oid = kBool, .part_of_key = full_identity},
                  {.name = "payload", .type_oid = kJsonb, .part_of_key = full_identity},
                  {.name = "note", .type_oid = kText, .part_of_key = full_identity}}});
}

Datum T(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }

ChangeEvent Insert(std::shared_ptr<const TableSchema> table, std::optional<std::string> tenant) {
  return ChangeEvent{.id = EventId{Lsn(0x16B3748), 12},
                     .xid = Xid{747},
                     .commit_time_us = 1'795'305'600'123'456,
                     .op = Op::kInsert,
                     .table = std::move(table),
                     .tenant = tenant,
                     .new_row = {T(tenant.value_or("x")), T("7"), T("2.50"), T("t"),
                                 T(R"({"a": [1, null, true], "s": "x\"y"})"), T("line\n\"two\"")}};
}

TEST(NatsSubjectTokenTest, KeepsPlainValuesAndEscapesTheRest) {
  EXPECT_EQ(SubjectToken("t1"), "t1");
  EXPECT_EQ(SubjectToken("acme_corp-2"), "acme_corp-2");
  EXPECT_EQ(SubjectToken("a.b"), "a%2Eb");
  EXPECT_EQ(SubjectToken("*"), "%2A");
  EXPECT_EQ(SubjectToken(">"), "%3E");
  EXPECT_EQ(SubjectToken("Order Items"), "Order%20Items");
  EXPECT_EQ(SubjectToken("tab\there"), "tab%09here");
  EXPECT_EQ(SubjectToken("100%"), "100%25");
  EXPECT_EQ(SubjectToken("ü"), "%C3%BC");
  EXPECT_EQ(SubjectToken("$JS"), "%24JS");
}

TEST(NatsSubjectTokenTest, TheNoTenantTokenAndTheEmptyValueAreNobodyElses) {
  EXPECT_EQ(SubjectToken("_"), "%5F");
  EXPECT_EQ(SubjectToken(""), "%00");
  EXPECT_EQ(SubjectToken("__"), "__");
  const std::vector<std::string> values = {"",    "_",   "%5F", "%00", "a.b", "a%2Eb", "a b",
                                           "a+b", "a*b", "a>b", ".",   "%",   "%25",   "ü"};
  std::set<std::string> tokens;
  for (const auto& v : values) {
    const std::string t = SubjectToken(v);
    EXPECT_TRUE(tokens.insert(t).second) << "two values share the token " << t;
    EXPECT_EQ(t.find_first_of(".*> \t\r\n"), std::string::npos) << t;
    EXPECT_NE(t, "_");
    EXPECT_NE(t, kTruncateToken);
  }
}

// Truncates used to share "_" with rows whose tenant is NULL: a consumer told to read
// `pgfanout._.>` for truncates got those rows too.
TEST(NatsEventEncoderTest, TruncatesHaveATokenOfTheirOwn) {
  NatsEventEncoder enc("pgfanout", "PGFANOUT");
  std::string subject, headers, body;
  ChangeEvent truncate = Insert(Table(), "t1");
  truncate.op = Op::kTruncate;
  truncate.tenant.reset();
  truncate.new_row.clear();
  enc.Encode(truncate, subject, headers, body);
  EXPECT_EQ(subject, "pgfanout.%truncate.public.accounts");
  ChangeEvent no_tenant = Insert(Table(), "t1");
  no_tenant.tenant.reset();
  enc.Encode(no_tenant, subject, headers, body);
  EXPECT_EQ(subject, "pgfanout._.public.accounts");
  for (const std::string v : {"%truncate", "%TRUNCATE", "truncate", "%"}) {
    EXPECT_NE(SubjectToken(v), kTruncateToken) << v;
  }
}

TEST(NatsEventEncoderTest, SubjectHasPrefixTenantSchemaTable) {
  NatsEventEncoder enc("pgfanout", "PGFANOUT");
  std::string subject, headers, body;
  enc.Encode(Insert(Table(), "t1"), subject, headers, body);
  EXPECT_EQ(subject, "pgfanout.t1.public.accounts");
  enc.Encode(Insert(Table("app", "Order Items"), std::nullopt), subject, headers, body);
  EXPECT_EQ(subject, "pgfanout._.app.Order%20Items");
  NatsEventEncoder deep("cdc.eu-1", "S");
  deep.Encode(Insert(Table(), "a.b"), subject, headers, body);
  EXPECT_EQ(subject, "cdc.eu-1.a%2Eb.public.accounts");
}

TEST(NatsEventEncoderTest, HeadersCarryTheEventIdForDeduplication) {
  NatsEventEncoder enc("pgfanout", "PGFANOUT");
  std::string subject, headers, body;
  enc.Encode(Insert(Table(), "t1"), subject, headers, body);
  EXPECT_EQ(headers,
            "NATS/1.0\r\nNats-Msg-Id: 0/16B3748#12\r\nNats-Expected-Stream: PGFANOUT\r\n\r\n");
}

TEST(NatsEventEncoderTest, BodyIsTheJsonlLineWithValuesInTheirKinds) {
  NatsEventEncoder enc("pgfanout", "PGFANOUT");
  std::string subject, headers, body;
  enc.Encode(Insert(Table(), "t1"), subject, headers, body);
  ASSERT_NE(body.back(), '\n');
  auto j = json::parse(body);
  EXPECT_EQ(j["id"], "0/16B3748#12");
  EXPECT_EQ(j["lsn"], "0/16B3748");
  EXPECT_EQ(j["commit_time"], "2026-11-22T00:00:00.123456Z");
  EXPECT_EQ(j["xid"], 747);
  EXPECT_EQ(j["schema"], "public");
  EXPECT_EQ(j["table"], "accounts");
  EXPECT_EQ(j["op"], "insert");
  EXPECT_EQ(j["tenant"], "t1");
  EXPECT_EQ(j["key"], json::parse(R"({"tenant_id":"t1","id":7})"));
  EXPECT_EQ(j["new"]["active"], true);
  EXPECT_EQ(j["new"]["payload"], json::parse(R"({"a":[1,null,true],"s":"x\"y"})"));
  EXPECT_EQ(j["new"]["note"], "line\n\"two\"");
  EXPECT_TRUE(j["old"].is_null());
  EXPECT_FALSE(j.contains("unchanged_toast"));
  // A numeric keeps its digits: "2.50" stays 2.50, not 2.5.
  EXPECT_NE(body.find("\"balance\":2.50,"), std::string::npos) << body;
}

TEST(NatsEventEncoderTest, UnchangedToastIsNamedNotSent) {
  NatsEventEncoder enc("p", "S");
  ChangeEvent ev = Insert(Table(), "t1");
  ev.op = Op::kUpdate;
  ev.new_row[5] = Datum{ValueKind::kUnchangedToast};
  std::string subject, headers, body;
  enc.Encode(ev, subject, headers, body);
  auto j = json::parse(body);
  EXPECT_FALSE(j["new"].contains("note"));
  EXPECT_EQ(j["unchanged_toast"], json::array({"note"}));
}

TEST(NatsEventEncoderTest, KeyIsTheConfiguredKeyEvenUnderFullReplicaIdentity) {
  auto full = Table("public", "events", /*full_identity=*/true);
  ChangeEvent del = Insert(full, "t2");
  del.op = Op::kDelete;
  del.old_row = del.new_row;
  del.new_row.clear();
  std::string subject, headers, body;
  NatsEventEncoder keyed("p", "S", {{"public.events", {"id"}}});
  keyed.Encode(del, subject, headers, body);
  auto j = json::parse(body);
  EXPECT_EQ(j["key"], json::parse(R"({"id":7})"));
  EXPECT_TRUE(j["new"].is_null());
  EXPECT_EQ(j["old"]["note"], "line\n\"two\"");  // the whole old row, as it came
  // Without a configured key: the replica identity's columns (every one, here).
  NatsEventEncoder unkeyed("p", "S");
  unkeyed.Encode(del, subject, headers, body);
  EXPECT_EQ(json::parse(body)["key"].size(), 6u);
}

TEST(NatsEventEncoderTest, TruncateOfAPerTenantSinkNamesItsTenants) {
  ChangeEvent tr{.id = EventId{Lsn(0x20), 0},
                 .op = Op::kTruncate,
                 .table = Table(),
                 .truncate_flags = kTruncateCascade};
  std::string subject, headers, body;
  NatsEventEncoder enc("p", "S", {}, {"t2", "t3"});
  enc.Encode(tr, subject, headers, body);
  EXPECT_EQ(subject, "p.%truncate.public.accounts");
  auto j = json::parse(body);
  EXPECT_EQ(j["op"], "truncate");
  EXPECT_EQ(j["only_tenants"], json::array({"t2", "t3"}));
  EXPECT_EQ(j["cascade"], true);
  EXPECT_EQ(j["restart_identity"], false);
  EXPECT_FALSE(j.contains("new"));
}

}  // namespace
}  // namespace pgfanout::nats
