#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <string>
#include <vector>

// Options of the RocksDB event log, one place to read why each knob is set.
namespace pgfanout::rocksdb_tuning {

// Column family names, in the order Open() passes them (index = position in handles).
inline constexpr const char* kDefault = "default";  // format and position records
inline constexpr const char* kEvents = "events";
inline constexpr const char* kSchemas = "schemas";
inline constexpr const char* kCursors = "cursors";
inline constexpr const char* kMeta = "meta";
inline constexpr const char* kSpill = "spill";
inline constexpr const char* kTenants = "tenants";  // the tenant index (since eventlog-2)

rocksdb::DBOptions DbOptions();

// Every column family, each tuned for its traffic; they share one block cache.
std::vector<rocksdb::ColumnFamilyDescriptor> ColumnFamilies();

// Options of one column family by name (used again when the spill is recreated).
rocksdb::ColumnFamilyOptions CfOptions(const std::string& name);

}  // namespace pgfanout::rocksdb_tuning
