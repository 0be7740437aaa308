#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/core/event_id.h"
#include "src/core/lsn.h"

namespace pgfanout {

// A column value as it arrived. pgoutput distinguishes three cases and so do we: SQL NULL,
// a value in text form, and "unchanged TOASTed value" (the server did not send it because
// the UPDATE did not touch it and it lives out of line).
enum class ValueKind : uint8_t { kNull = 0, kText = 1, kUnchangedToast = 2 };

struct Datum {
  ValueKind kind = ValueKind::kNull;
  std::string text;  // set only when kind == kText

  friend bool operator==(const Datum&, const Datum&) = default;
};

struct ColumnSchema {
  std::string name;
  uint32_t type_oid = 0;
  int32_t type_modifier = -1;
  bool part_of_key = false;  // in the replica identity

  friend bool operator==(const ColumnSchema&, const ColumnSchema&) = default;
};

// A table's shape as the stream last described it (pgoutput Relation message). Shared,
// immutable: every event of a table points at the schema that was current when it was
// decoded, so ALTER TABLE mid-stream changes the shape of later events only.
struct TableSchema {
  RelationId relation_id;
  std::string schema_name;
  std::string table_name;
  char replica_identity = 'd';  // 'd' default, 'n' nothing, 'f' full, 'i' index
  std::vector<ColumnSchema> columns;

  // A stable 64-bit hash of every field, used as the schema's key in the event log.
  uint64_t Fingerprint() const;
  std::string QualifiedName() const { return schema_name + "." + table_name; }

  friend bool operator==(const TableSchema&, const TableSchema&) = default;
};

enum class Op : char { kInsert = 'I', kUpdate = 'U', kDelete = 'D', kTruncate = 'T' };

inline constexpr uint8_t kTruncateCascade = 1;
inline constexpr uint8_t kTruncateRestartIdentity = 2;

// One committed change of one row (or one truncated table), in commit order.
struct ChangeEvent {
  EventId id;
  Xid xid;
  int64_t commit_time_us = 0;  // microseconds since the Unix epoch
  Op op = Op::kInsert;
  std::shared_ptr<const TableSchema> table;
  // The tenant column's value (new row for insert/update, old row for delete); nullopt
  // when the table has no tenant column, the value is NULL, or op is truncate.
  std::optional<std::string> tenant;
  // An update whose old row carries a tenant other than `tenant` (the row moved between
  // tenants): that old tenant, set at decode like `tenant`. The event log indexes the
  // event under both, so each tenant's sink finds it; the router takes it from here.
  std::optional<std::string> old_tenant;
  std::vector<Datum> new_row;    // insert, update: one Datum per column of `table`
  std::vector<Datum> old_row;    // update, delete: old key or old row; empty if not sent
  bool old_is_key_only = false;  // old_row came as 'K' (only key columns are non-null)
  uint8_t truncate_flags = 0;    // kTruncateCascade | kTruncateRestartIdentity
};

}  // namespace pgfanout
