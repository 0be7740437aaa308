#include "src/pipeline/router.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pgfanout {
namespace {

std::shared_ptr<const TableSchema> Table(std::string schema, std::string name) {
  return std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{16384},
                  .schema_name = std::move(schema),
                  .table_name = std::move(name),
                  .columns = {{.name = "id", .type_oid = 23, .part_of_key = true}}});
}

// A sink entry as ParseConfig produces it: table sources are qualified.
SinkConfig Sink(std::vector<std::string> tenants, std::vector<std::string> tables = {}) {
  SinkConfig sink{.id = "s", .type = "jsonl", .tenants = std::move(tenants), .path = "s.jsonl"};
  for (auto& t : tables) sink.tables.push_back({.source = t, .target = t});
  return sink;
}

class RouterTest : public ::testing::Test {
 protected:
  ChangeEvent On(const std::shared_ptr<const TableSchema>& table, std::optional<std::string> tenant,
                 Op op = Op::kInsert) const {
    return ChangeEvent{.op = op, .table = table, .tenant = std::move(tenant)};
  }

  std::shared_ptr<const TableSchema> users_ = Table("public", "users");
  std::shared_ptr<const TableSchema> teams_ = Table("public", "teams");
  std::shared_ptr<const TableSchema> billing_users_ = Table("billing", "users");
};

TEST_F(RouterTest, TenantSinkAcceptsOnlyItsTenants) {
  Router router(Sink({"7", "9"}));
  EXPECT_TRUE(router.Accepts(On(users_, "7")));
  EXPECT_TRUE(router.Accepts(On(users_, "9")));
  EXPECT_FALSE(router.Accepts(On(users_, "8")));
  EXPECT_FALSE(router.Accepts(On(users_, "70"))) << "tenant values match whole, not by prefix";
  EXPECT_FALSE(router.Accepts(On(users_, "")));
  EXPECT_FALSE(router.Accepts(On(users_, "*"))) << "a tenant named * is not a wildcard";
}

TEST_F(RouterTest, TenantSinkRejectsEventsWithoutTenant) {
  Router router(Sink({"7"}));
  EXPECT_FALSE(router.Accepts(On(teams_, std::nullopt))) << "a table with no tenant column";
  EXPECT_FALSE(router.Accepts(On(users_, std::nullopt, Op::kTruncate)))
      << "a truncate removes every tenant's rows: never for one tenant's sink";
}

TEST_F(RouterTest, AllTenantsSinkAcceptsEventsWithAndWithoutTenant) {
  Router router(Sink({"*"}));
  EXPECT_TRUE(router.Accepts(On(users_, "7")));
  EXPECT_TRUE(router.Accepts(On(users_, "123456")));
  EXPECT_TRUE(router.Accepts(On(teams_, std::nullopt)));
  EXPECT_TRUE(router.Accepts(On(users_, std::nullopt, Op::kTruncate)));
}

TEST_F(RouterTest, TableFilterKeepsListedTablesOnly) {
  Router router(Sink({"*"}, {"public.users"}));
  EXPECT_TRUE(router.Accepts(On(users_, "7")));
  EXPECT_TRUE(router.Accepts(On(users_, std::nullopt, Op::kTruncate)));
  EXPECT_FALSE(router.Accepts(On(teams_, "7")));
  EXPECT_FALSE(router.Accepts(On(billing_users_, "7"))) << "same name, other schema";
}

TEST_F(RouterTest, NoTableFilterAcceptsEveryTable) {
  Router router(Sink({"7"}));
  EXPECT_TRUE(router.Accepts(On(users_, "7")));
  EXPECT_TRUE(router.Accepts(On(teams_, "7")));
  EXPECT_TRUE(router.Accepts(On(billing_users_, "7")));
}

TEST_F(RouterTest, TenantAndTableFiltersBothApply) {
  Router router(Sink({"7"}, {"public.users", "billing.users"}));
  EXPECT_TRUE(router.Accepts(On(users_, "7")));
  EXPECT_TRUE(router.Accepts(On(billing_users_, "7")));
  EXPECT_FALSE(router.Accepts(On(users_, "9")));
  EXPECT_FALSE(router.Accepts(On(teams_, "7")));
}

}  // namespace
}  // namespace pgfanout
