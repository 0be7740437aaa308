#include "src/sinks/clickhouse/type_mapping.h"

#include <gtest/gtest.h>

namespace pgfanout::clickhouse {
namespace {

ColumnSchema Col(uint32_t oid, int32_t typmod = -1) {
  return ColumnSchema{.name = "c", .type_oid = oid, .type_modifier = typmod};
}

// numeric(p, s) as Postgres stores it in atttypmod.
int32_t NumericMod(int precision, int scale) { return ((precision << 16) | (scale & 0x7ff)) + 4; }

TEST(ClickHouseTypeMapping, MapsEachSourceTypeAsTheReadmeSays) {
  const ServerFeatures old_server{.version = "18.16.1"};
  EXPECT_EQ(MapSourceType(Col(16), old_server), "UInt8");  // bool
  EXPECT_EQ(MapSourceType(Col(21), old_server), "Int16");
  EXPECT_EQ(MapSourceType(Col(23), old_server), "Int32");
  EXPECT_EQ(MapSourceType(Col(20), old_server), "Int64");
  EXPECT_EQ(MapSourceType(Col(700), old_server), "Float32");
  EXPECT_EQ(MapSourceType(Col(701), old_server), "Float64");
  for (uint32_t text_like : {25u, 1043u, 1042u, 114u, 3802u, 2950u, 17u, 1082u, 1114u, 1186u,
                             1007u /* int4[] */, 16385u /* an enum */}) {
    EXPECT_EQ(MapSourceType(Col(text_like), old_server), "String") << "oid " << text_like;
  }
}

TEST(ClickHouseTypeMapping, NumericTakesItsPrecisionAndScaleOrBecomesString) {
  const ServerFeatures f;
  EXPECT_EQ(MapSourceType(Col(1700, NumericMod(12, 2)), f), "Decimal(12, 2)");
  EXPECT_EQ(MapSourceType(Col(1700, NumericMod(38, 0)), f), "Decimal(38, 0)");
  EXPECT_EQ(MapSourceType(Col(1700), f), "String") << "unbounded numeric";
  EXPECT_EQ(MapSourceType(Col(1700, NumericMod(39, 2)), f), "String") << "beyond Decimal(38)";
  EXPECT_EQ(MapSourceType(Col(1700, NumericMod(2, -3)), f), "String") << "negative scale";
}

TEST(ClickHouseTypeMapping, TimestamptzIsDateTime64InUtcWhereTheServerHasIt) {
  EXPECT_EQ(MapSourceType(Col(1184), ServerFeatures{.datetime64 = true}), "DateTime64(6, 'UTC')");
  EXPECT_EQ(MapSourceType(Col(1184), ServerFeatures{.datetime64 = false}), "String");
}

TEST(ClickHouseTypeMapping, NonKeyColumnsAreNullableKeyColumnsAreNot) {
  const ServerFeatures f;
  EXPECT_EQ(ColumnDdlType(Col(23), /*in_key=*/false, f), "Nullable(Int32)");
  EXPECT_EQ(ColumnDdlType(Col(23), /*in_key=*/true, f), "Int32");
}

TEST(ClickHouseTypeMapping, ParsesTheTypesSystemColumnsReports) {
  auto t = ParseChType("Nullable(Decimal(12, 2))");
  EXPECT_EQ(t.family, ChType::Family::kDecimal);
  EXPECT_TRUE(t.nullable);
  EXPECT_EQ(ParseChType("LowCardinality(Nullable(String))").family, ChType::Family::kString);
  EXPECT_TRUE(ParseChType("LowCardinality(Nullable(String))").nullable);
  EXPECT_EQ(ParseChType("UInt64").family, ChType::Family::kUInt);
  EXPECT_EQ(ParseChType("Int32").family, ChType::Family::kInt);
  EXPECT_EQ(ParseChType("DateTime64(6, 'UTC')").timezone, "UTC");
  EXPECT_EQ(ParseChType("DateTime('Europe/Berlin')").family, ChType::Family::kDateTime);
  EXPECT_EQ(ParseChType("DateTime('Europe/Berlin')").timezone, "Europe/Berlin");
  EXPECT_EQ(ParseChType("Array(String)").family, ChType::Family::kUnsupported);
  EXPECT_EQ(ParseChType("UUID").family, ChType::Family::kOther);
  EXPECT_FALSE(ParseChType("String").nullable);
}

}  // namespace
}  // namespace pgfanout::clickhouse
