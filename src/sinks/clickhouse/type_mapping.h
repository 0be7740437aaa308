#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "src/core/change_event.h"

namespace pgfanout::clickhouse {

// Postgres type OIDs the ClickHouse sink treats specially (pg_type.dat).
namespace pg_oid {
inline constexpr uint32_t kBool = 16;
inline constexpr uint32_t kInt8 = 20;
inline constexpr uint32_t kInt2 = 21;
inline constexpr uint32_t kInt4 = 23;
inline constexpr uint32_t kOid = 26;
inline constexpr uint32_t kFloat4 = 700;
inline constexpr uint32_t kFloat8 = 701;
inline constexpr uint32_t kDate = 1082;
inline constexpr uint32_t kTimestamp = 1114;
inline constexpr uint32_t kTimestamptz = 1184;
inline constexpr uint32_t kNumeric = 1700;
}  // namespace pg_oid

// What the server can do, detected at Open() from its system tables (not from a version
// table kept here: backports and builds differ).
struct ServerFeatures {
  std::string version;               // SELECT version(), for messages and logs
  bool datetime64 = false;           // DateTime64 exists (20.1 and later)
  bool dedup_token = false;          // the insert_deduplication_token setting exists (22.x)
  bool nonreplicated_dedup = false;  // MergeTree setting non_replicated_deduplication_window
};

// A ClickHouse column type as system.columns spells it, reduced to what value encoding
// needs. Nullable(...) and LowCardinality(...) are unwrapped into flags.
struct ChType {
  enum class Family : uint8_t {
    kString,      // String, FixedString(N)
    kInt,         // Int8..Int256
    kUInt,        // UInt8..UInt256
    kFloat,       // Float32, Float64
    kDecimal,     // Decimal(P, S), Decimal32(S)...
    kBool,        // Bool (22.x)
    kDate,        // Date (1970-01-01 .. 2149-06-06)
    kDateTime,    // DateTime, DateTime('tz'): seconds
    kDateTime64,  // DateTime64(P[, 'tz'])
    kOther,       // UUID, Enum, IPv4... : sent as a JSON string, parsed by the server
    kUnsupported  // Array, Tuple, Map, Nested...: no text of a Postgres value fits
  };
  Family family = Family::kOther;
  bool nullable = false;
  std::string timezone;  // DateTime/DateTime64 argument, "" when none
  std::string text;      // the type as given, for messages and CAST
};

ChType ParseChType(std::string_view type);

// The ClickHouse type the sink gives a column it creates for source column `column`
// (without Nullable): see the table in README.md. `features` decides DateTime64.
std::string MapSourceType(const ColumnSchema& column, const ServerFeatures& features);

// MapSourceType, wrapped in Nullable unless the column is part of the table's key
// (ClickHouse refuses a Nullable sorting key; key columns are NOT NULL at the source).
std::string ColumnDdlType(const ColumnSchema& column, bool in_key, const ServerFeatures& features);

}  // namespace pgfanout::clickhouse
