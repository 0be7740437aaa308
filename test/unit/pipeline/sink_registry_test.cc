// The sink registry's rows: decoded from the registry table's events, applied in order,
// taken out of the group commit they came in, stored with the position they are as of.
#include "src/pipeline/sink_registry.h"

#include <gtest/gtest.h>

#include "checkpoints/memory_event_log.h"

namespace pgfanout {
namespace {

const SinkRegistryConfig kRegistry{.schema = "public", .table = "pgfanout_sinks"};

std::shared_ptr<const TableSchema> RegistrySchema() {
  static auto schema = std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{42},
                  .schema_name = "public",
                  .table_name = "pgfanout_sinks",
                  .columns = {{.name = "sink_id", .part_of_key = true},
                              {.name = "template"},
                              {.name = "tenants"},
                              {.name = "params"},
                              {.name = "enabled"}}});
  return schema;
}

std::shared_ptr<const TableSchema> UsersSchema() {
  static auto schema = std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{43},
                  .schema_name = "public",
                  .table_name = "users",
                  .columns = {{.name = "id", .part_of_key = true}, {.name = "tenant_id"}}});
  return schema;
}

Datum Text(std::string s) { return Datum{ValueKind::kText, std::move(s)}; }
const Datum kToast{ValueKind::kUnchangedToast, ""};

ChangeEvent Upsert(EventId id, Op op, const std::string& sink_id, const std::string& tenants,
                   const Datum& params = Text("{\"host\": \"db1\", \"port\": 5432}"),
                   const char* enabled = "t") {
  return ChangeEvent{
      .id = id,
      .op = op,
      .table = RegistrySchema(),
      .new_row = {Text(sink_id), Text("tenant-db"), Text(tenants), params, Text(enabled)}};
}

ChangeEvent Delete(EventId id, const std::string& sink_id) {
  return ChangeEvent{.id = id,
                     .op = Op::kDelete,
                     .table = RegistrySchema(),
                     .old_row = {Text(sink_id), {}, {}, {}, {}},
                     .old_is_key_only = true};
}

EventId At(uint64_t lsn, uint32_t ordinal = 0) { return EventId{Lsn(lsn), ordinal}; }

TEST(SinkRegistryTest, TextArraysParseAsPostgresWritesThem) {
  EXPECT_EQ(ParseTextArray("{}"), std::vector<std::string>{});
  EXPECT_EQ(ParseTextArray("{a,b}"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ParseTextArray(R"({"a b","c,d","e\"f","NULL"})"),
            (std::vector<std::string>{"a b", "c,d", "e\"f", "NULL"}));
  EXPECT_EQ(ParseTextArray("{NULL}"), std::nullopt) << "a NULL element";
  EXPECT_EQ(ParseTextArray("{a,}"), std::nullopt);
  EXPECT_EQ(ParseTextArray("{{a},{b}}"), std::nullopt) << "two dimensions";
  EXPECT_EQ(ParseTextArray("{\"a}"), std::nullopt);
  EXPECT_EQ(ParseTextArray("a,b"), std::nullopt);
}

TEST(SinkRegistryTest, ChangesApplyInOrderAndSayWhichSinksTheyTouched) {
  SinkRegistry registry(kRegistry);
  registry.Seed({}, At(10));
  auto delta = registry.Apply({Upsert(At(20), Op::kInsert, "p1", "{acme}"),
                               Upsert(At(20, 1), Op::kInsert, "p2", "{\"big co\"}"),
                               Upsert(At(30), Op::kUpdate, "p1", "{acme}", kToast, "f")});
  EXPECT_EQ(delta.changed, (std::vector<std::string>{"p1", "p2"}));
  EXPECT_TRUE(delta.deleted.empty());
  ASSERT_EQ(registry.rows().size(), 2u);
  const auto* p1 = registry.Find("p1");
  ASSERT_NE(p1, nullptr);
  EXPECT_FALSE(p1->enabled);
  // The update did not send the TOASTed params it left alone: they are the row's as before.
  EXPECT_EQ(p1->params,
            (std::vector<std::pair<std::string, std::string>>{{"host", "db1"}, {"port", "5432"}}));
  EXPECT_EQ(registry.Find("p2")->tenants, std::vector<std::string>{"big co"});
  EXPECT_EQ(registry.applied(), At(30));

  // Deleted and added again in one group commit: the delta says both.
  delta = registry.Apply(
      {Delete(At(40), "p2"), Upsert(At(41), Op::kInsert, "p2", "{x}"), Delete(At(42), "p1")});
  EXPECT_EQ(delta.changed, (std::vector<std::string>{"p2", "p1"}));
  EXPECT_EQ(delta.deleted, (std::set<std::string>{"p1", "p2"}));
  ASSERT_EQ(registry.rows().size(), 1u);
  EXPECT_EQ(registry.rows()[0].tenants, std::vector<std::string>{"x"});
}

TEST(SinkRegistryTest, ARowThatDoesNotDecodeIsKeptWithItsError) {
  SinkRegistry registry(kRegistry);
  registry.Seed({}, At(1));
  registry.Apply({Upsert(At(2), Op::kInsert, "p1", "{acme}", Text("[1, 2]")),
                  Upsert(At(3), Op::kInsert, "p2", "{acme}", Text("{\"a\": {\"b\": 1}}")),
                  Upsert(At(4), Op::kInsert, "p3", "{NULL}")});
  ASSERT_EQ(registry.rows().size(), 3u);
  EXPECT_EQ(registry.Find("p1")->error, "params: expected a JSON object");
  EXPECT_EQ(registry.Find("p2")->error, "params: values are strings, numbers or booleans");
  EXPECT_EQ(registry.Find("p3")->error, "tenants: expected a text array without NULLs");
  Config config;
  config.sink_templates = {SinkTemplate{.name = "tenant-db", .yaml = "type: discard\n"}};
  const auto resolved = registry.Resolve(config);
  EXPECT_TRUE(resolved.sinks.empty());
  EXPECT_EQ(resolved.errors.at("p1"), "registry: sink p1: params: expected a JSON object");
  // Fixed by an update: the error goes.
  registry.Apply({Upsert(At(5), Op::kUpdate, "p1", "{acme}")});
  EXPECT_EQ(registry.Find("p1")->error, "");
  EXPECT_EQ(registry.Resolve(config).sinks.size(), 1u);
}

TEST(SinkRegistryTest, ExtractTakesOnlyTheRegistrysEventsAndSkipsThoseAlreadyApplied) {
  SinkRegistry registry(kRegistry);
  registry.Seed({}, At(20));
  std::vector<TransactionRecord> txs = {
      {.commit_lsn = Lsn(20),
       .end_lsn = Lsn(21),
       .events = {Upsert(At(20), Op::kInsert, "old", "{a}"),
                  ChangeEvent{.id = At(20, 1), .table = UsersSchema()}}},
      {.commit_lsn = Lsn(30),
       .end_lsn = Lsn(31),
       .events = {ChangeEvent{.id = At(30), .table = UsersSchema()},
                  Upsert(At(30, 1), Op::kInsert, "new", "{a}"),
                  ChangeEvent{.id = At(30, 2), .table = UsersSchema()}}}};
  auto taken = registry.Extract(txs);
  ASSERT_EQ(taken.size(), 1u) << "the change at 20 is already applied";
  EXPECT_EQ(taken[0].id, At(30, 1));
  ASSERT_EQ(txs[0].events.size(), 1u);
  EXPECT_EQ(txs[0].events[0].id, At(20, 1));
  ASSERT_EQ(txs[1].events.size(), 2u);
  EXPECT_EQ(txs[1].events[0].id, At(30));
  EXPECT_EQ(txs[1].events[1].id, At(30, 2)) << "the others keep their ids";
}

TEST(SinkRegistryTest, RowsAreStoredWithThePositionTheyAreAsOf) {
  MemoryEventLog log;
  SinkRegistry registry(kRegistry);
  auto none = registry.Load(log);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none.value());
  registry.Seed({DecodeRegistryRow("p9", "tenant-db", "{z}", "{\"port\": 1}", true),
                 DecodeRegistryRow("p1", "tenant-db", "{a}", "{}", false)},
                At(5));
  registry.Apply({Upsert(At(7), Op::kInsert, "p5", "{m}"), Delete(At(8), "p9"),
                  ChangeEvent{.id = At(9), .op = Op::kTruncate, .table = UsersSchema()}});
  ASSERT_TRUE(registry.Store(log));
  SinkRegistry again(kRegistry);
  auto loaded = again.Load(log);
  ASSERT_TRUE(loaded);
  EXPECT_TRUE(loaded.value());
  EXPECT_EQ(again.applied(), At(9));
  ASSERT_EQ(again.rows().size(), 0u) << "a TRUNCATE of the registry deletes every row";

  SinkRegistry seeded(kRegistry);
  seeded.Seed({DecodeRegistryRow("p9", "t", "{z}", "{}", true),
               DecodeRegistryRow("p1", "t", "{a}", "{}", false)},
              At(5));
  ASSERT_EQ(seeded.rows().size(), 2u);
  EXPECT_EQ(seeded.rows()[0].sink_id, "p1") << "kept in sink_id order";
}

}  // namespace
}  // namespace pgfanout
