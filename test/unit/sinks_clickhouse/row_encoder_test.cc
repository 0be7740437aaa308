#include "src/sinks/clickhouse/row_encoder.h"

#include <gtest/gtest.h>

#include "src/sinks/clickhouse/table_target.h"

namespace pgfanout::clickhouse {
namespace {

Datum T(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }

std::shared_ptr<const TableSchema> Accounts() {
  return std::make_shared<const TableSchema>(TableSchema{
      .schema_name = "public",
      .table_name = "accounts",
      .columns = {{.name = "tenant_id", .type_oid = 25, .part_of_key = true},
                  {.name = "id", .type_oid = 23, .part_of_key = true},
                  {.name = "balance", .type_oid = 1700, .type_modifier = ((12 << 16) | 2) + 4},
                  {.name = "active", .type_oid = 16},
                  {.name = "updated_at", .type_oid = 1184}}});
}

SinkBasics Sink(std::vector<std::string> tenants = {"*"}) {
  return SinkBasics{.id = "ch", .tenants = std::move(tenants)};
}
const ClickHouseSinkOptions kOptions{.database = "analytics"};

TableConfig Tracked() {
  return TableConfig{.schema = "public", .name = "accounts", .tenant_column = "tenant_id"};
}

class ClickHouseRows : public ::testing::Test {
 protected:
  void SetUp() override {
    const TableConfig tracked = Tracked();
    auto t = ResolveTarget(Sink(), kOptions, &tracked, *schema_);
    ASSERT_TRUE(t && t.value());
    target_ = *t.value();
  }
  RowEncoder Encoder() const {
    return RowEncoder(
        target_, *schema_,
        {ParseChType("String"), ParseChType("Int32"), ParseChType("Nullable(Decimal(12, 2))"),
         ParseChType("Nullable(UInt8)"), ParseChType("Nullable(String)")});
  }

  std::shared_ptr<const TableSchema> schema_ = Accounts();
  TableTarget target_;
};

TEST_F(ClickHouseRows, ALiveRowIsOneJsonLineWithVersionAndMarker) {
  PlannedRow row{.row = {T("t1"), T("7"), T("12.50"), T("t"), T("2026-01-01 01:00:00+01")},
                 .version = Lsn(0x16B3748)};
  std::string out;
  ASSERT_TRUE(Encoder().Append(row, out));
  EXPECT_EQ(out,
            "{\"tenant_id\":\"t1\",\"id\":7,\"balance\":12.50,\"active\":1,"
            "\"updated_at\":\"2026-01-01 00:00:00.000000\",\"pgfanout_version\":23803720,"
            "\"pgfanout_is_deleted\":0}\n");
}

TEST_F(ClickHouseRows, ADeletedRowCarriesWhatItsDeleteSentAndMarkerOne) {
  PlannedRow row{
      .deleted = true, .row = {T("t1"), T("7"), Datum{}, Datum{}, Datum{}}, .version = Lsn(99)};
  std::string out;
  ASSERT_TRUE(Encoder().Append(row, out));
  EXPECT_EQ(out,
            "{\"tenant_id\":\"t1\",\"id\":7,\"pgfanout_version\":99,\"pgfanout_is_deleted\":1}\n");
}

TEST_F(ClickHouseRows, AValueThatDoesNotFitNamesSinkTableAndColumn) {
  PlannedRow row{.row = {T("t1"), T("7"), T("NaN"), Datum{}, Datum{}}, .version = Lsn(1)};
  std::string out;
  auto r = Encoder().Append(row, out);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kMismatch);
  EXPECT_EQ(r.error().message.rfind("sink ch: table public.accounts -> analytics.accounts: column "
                                    "\"balance\": a value (3 bytes)",
                                    0),
            0u)
      << r.error().message;
}

TEST_F(ClickHouseRows, StatementsNameEveryColumnAndCastKeysToTheirTypes) {
  RowEncoder e = Encoder();
  EXPECT_EQ(e.InsertStatement(),
            "INSERT INTO `analytics`.`accounts` (`tenant_id`, `id`, `balance`, `active`, "
            "`updated_at`, `pgfanout_version`, `pgfanout_is_deleted`) FORMAT JSONEachRow");
  std::vector<Datum> a = {T("t1"), T("7")}, b = {T("t'2"), T("8")};
  auto sql = e.LookupSql({&a, &b}, {4});
  ASSERT_TRUE(sql);
  const std::string keys =
      "(CAST('t1' AS String), CAST('7' AS Int32)), (CAST('t\\'2' AS String), CAST('8' AS Int32))";
  EXPECT_EQ(sql.value(), "SELECT indexOf([" + keys +
                             "], (`tenant_id`, `id`)), `updated_at` FROM "
                             "`analytics`.`accounts` FINAL WHERE (`tenant_id`, `id`) IN (" +
                             keys + ") AND `pgfanout_is_deleted` = 0 FORMAT TabSeparated");
  EXPECT_EQ(e.TenantCondition({"t1", "t2"}), "toString(`tenant_id`) IN ('t1', 't2')");
}

TEST_F(ClickHouseRows, CreatedTablesAreReplacingMergeTreeOrderedByTheKey) {
  EXPECT_EQ(CreateTableSql(target_, *schema_, ServerFeatures{}),
            "CREATE TABLE IF NOT EXISTS `analytics`.`accounts` ("
            "`tenant_id` String COMMENT 'pgfanout: source column', "
            "`id` Int32 COMMENT 'pgfanout: source column', "
            "`balance` Nullable(Decimal(12, 2)) COMMENT 'pgfanout: source column', "
            "`active` Nullable(UInt8) COMMENT 'pgfanout: source column', "
            "`updated_at` Nullable(String) COMMENT 'pgfanout: source column', "
            "`pgfanout_version` UInt64, `pgfanout_is_deleted` UInt8) "
            "ENGINE = ReplacingMergeTree(`pgfanout_version`) ORDER BY (`tenant_id`, `id`)");
  const ServerFeatures modern{.datetime64 = true, .dedup_token = true, .nonreplicated_dedup = true};
  const std::string sql = CreateTableSql(target_, *schema_, modern);
  EXPECT_NE(sql.find("`updated_at` Nullable(DateTime64(6, 'UTC'))"), std::string::npos);
  EXPECT_NE(sql.find(" SETTINGS non_replicated_deduplication_window = 1000"), std::string::npos)
      << "a dedup token needs the window on a table that is not replicated";
}

TEST(ClickHouseTarget, ATableWithoutKeyOrWithTheSinksColumnNamesIsRefused) {
  SinkBasics sink = Sink();
  TableSchema keyless{.schema_name = "public", .table_name = "t", .columns = {{.name = "a"}}};
  auto r = ResolveTarget(sink, kOptions, nullptr, keyless);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  TableSchema clash{
      .schema_name = "public",
      .table_name = "t",
      .columns = {{.name = "id", .part_of_key = true}, {.name = "pgfanout_is_deleted"}}};
  EXPECT_FALSE(ResolveTarget(sink, kOptions, nullptr, clash));
}

TEST(ClickHouseTarget, TheTargetIsInTheSinksDatabaseUnlessQualified) {
  SinkBasics sink = Sink();
  sink.tables = {SinkTableConfig{.source = "public.t", .target_schema = "public", .target = "t2"},
                 SinkTableConfig{.source = "public.u", .target_schema = "raw", .target = "u"}};
  TableSchema t{
      .schema_name = "public", .table_name = "t", .columns = {{.name = "id", .part_of_key = true}}};
  TableSchema u = t;
  u.table_name = "u";
  EXPECT_EQ(ResolveTarget(sink, kOptions, nullptr, t).value()->Qualified(), "`analytics`.`t2`");
  EXPECT_EQ(ResolveTarget(sink, kOptions, nullptr, u).value()->Qualified(), "`raw`.`u`");
}

}  // namespace
}  // namespace pgfanout::clickhouse
