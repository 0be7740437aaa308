#include "checkpoints/event_codec.h"

#include <fmt/format.h>

#include <cstring>

#include "checkpoints/wire.h"

namespace pgfanout {
namespace {

constexpr uint8_t kEventFormat = 1;
constexpr uint8_t kSchemaFormat = 1;
constexpr uint8_t kFlagOldIsKeyOnly = 1;
constexpr uint8_t kFlagHasTenant = 2;
constexpr uint8_t kFlagHasOldTenant = 4;  // since eventlog-2
constexpr uint8_t kKnownFlags = kFlagOldIsKeyOnly | kFlagHasTenant | kFlagHasOldTenant;

using wire::PutBytes;
using wire::PutFixed64;
using wire::PutVarint;
using wire::Reader;
using wire::UnZigZag;
using wire::ZigZag;

void PutRow(std::string& out, const std::vector<Datum>& row) {
  PutVarint(out, row.size());
  for (const Datum& d : row) {
    if (d.kind == ValueKind::kText) {
      PutVarint(out, (uint64_t{d.text.size()} << 2) | static_cast<uint8_t>(ValueKind::kText));
      out.append(d.text);
    } else {
      PutVarint(out, static_cast<uint8_t>(d.kind));
    }
  }
}

bool ReadRow(Reader& r, std::vector<Datum>& row) {
  uint64_t n;
  if (!r.Count(n)) return false;
  row.resize(n);
  for (Datum& d : row) {
    uint64_t header;
    if (!r.Varint(header)) return false;
    uint64_t kind = header & 3;
    uint64_t len = header >> 2;
    if (kind == static_cast<uint8_t>(ValueKind::kText)) {
      std::string_view text;
      if (!r.Bytes(len, text)) return false;
      d.kind = ValueKind::kText;
      d.text.assign(text);
    } else if (len == 0 && (kind == static_cast<uint8_t>(ValueKind::kNull) ||
                            kind == static_cast<uint8_t>(ValueKind::kUnchangedToast))) {
      d.kind = static_cast<ValueKind>(kind);
      d.text.clear();
    } else {
      return false;
    }
  }
  return true;
}

bool IsKnownOp(uint8_t op) {
  switch (static_cast<Op>(op)) {
    case Op::kInsert:
    case Op::kUpdate:
    case Op::kDelete:
    case Op::kTruncate:
      return true;
  }
  return false;
}

// Steps over one encoded row without copying its values.
bool SkipRow(Reader& r) {
  uint64_t n;
  if (!r.Count(n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t header;
    std::string_view ignored;
    if (!r.Varint(header)) return false;
    if ((header & 3) == static_cast<uint8_t>(ValueKind::kText) && !r.Bytes(header >> 2, ignored)) {
      return false;
    }
  }
  return true;
}

}  // namespace

void EncodeEvent(const ChangeEvent& event, uint64_t schema_fingerprint, std::string& out) {
  uint8_t flags = (event.old_is_key_only ? kFlagOldIsKeyOnly : 0) |
                  (event.tenant.has_value() ? kFlagHasTenant : 0) |
                  (event.old_tenant.has_value() ? kFlagHasOldTenant : 0);
  const char head[4] = {static_cast<char>(kEventFormat), static_cast<char>(event.op),
                        static_cast<char>(flags), static_cast<char>(event.truncate_flags)};
  out.append(head, sizeof(head));
  PutVarint(out, event.xid.value);
  PutVarint(out, ZigZag(event.commit_time_us));
  PutFixed64(out, schema_fingerprint);
  if (event.tenant) PutBytes(out, *event.tenant);
  if (event.old_tenant) PutBytes(out, *event.old_tenant);
  PutRow(out, event.new_row);
  PutRow(out, event.old_row);
}

Result<EventHeader> PeekEvent(std::string_view bytes) {
  Reader r(bytes, "event");
  uint8_t format, op, flags, truncate_flags;
  uint32_t xid;
  uint64_t commit_time;
  EventHeader h;
  if (!r.Byte(format) || format != kEventFormat) return r.Fail("unknown event format");
  if (!r.Byte(op) || !IsKnownOp(op)) return r.Fail("unknown op");
  if (!r.Byte(flags) || (flags & ~kKnownFlags) != 0) return r.Fail("unknown flags");
  if (!r.Byte(truncate_flags) || !r.Varint32(xid) || !r.Varint(commit_time)) {
    return r.Fail("truncated header");
  }
  if (!r.Fixed64(h.schema_fingerprint)) return r.Fail("truncated schema fingerprint");
  h.op = static_cast<Op>(op);
  if (flags & kFlagHasTenant) {
    uint64_t n;
    std::string_view tenant;
    if (!r.Varint(n) || !r.Bytes(n, tenant)) return r.Fail("bad tenant");
    h.tenant = tenant;
  }
  if (flags & kFlagHasOldTenant) {
    uint64_t n;
    std::string_view old_tenant;
    if (!r.Varint(n) || !r.Bytes(n, old_tenant)) return r.Fail("bad old tenant");
    h.old_tenant = old_tenant;
  }
  // An insert carries no old row, so its values are not walked to learn so: every sink
  // peeks at every event, and with 100 one-tenant sinks PeekEvent was 17 % of their CPU
  // (perf, bench/e2e_postgres.sh, 1000-row inserts).
  if (h.op == Op::kInsert) return h;
  uint64_t old_columns;
  if (!SkipRow(r) || !r.Count(old_columns)) return r.Fail("bad row");
  h.has_old_row = old_columns > 0;
  return h;
}

Result<uint64_t> RestampEvent(std::string_view bytes, Xid xid, int64_t commit_time_us,
                              std::string& out) {
  Reader r(bytes, "event");
  uint8_t format, op, flags, truncate_flags;
  uint32_t old_xid;
  uint64_t old_time, fingerprint;
  if (!r.Byte(format) || format != kEventFormat) return r.Fail("unknown event format");
  if (!r.Byte(op) || !r.Byte(flags) || !r.Byte(truncate_flags)) return r.Fail("truncated header");
  if (!r.Varint32(old_xid)) return r.Fail("bad xid");
  if (!r.Varint(old_time)) return r.Fail("bad commit time");
  const size_t rest = bytes.size() - r.remaining();  // the fingerprint and what follows
  if (!r.Fixed64(fingerprint)) return r.Fail("truncated schema fingerprint");
  out.append(bytes.data(), 4);
  PutVarint(out, xid.value);
  PutVarint(out, ZigZag(commit_time_us));
  out.append(bytes.data() + rest, bytes.size() - rest);
  return fingerprint;
}

Result<uint64_t> DecodeEvent(std::string_view bytes, ChangeEvent& event) {
  Reader r(bytes, "event");
  uint8_t format, op, flags, truncate_flags;
  if (!r.Byte(format) || format != kEventFormat) return r.Fail("unknown event format");
  if (!r.Byte(op) || !IsKnownOp(op)) return r.Fail("unknown op");
  if (!r.Byte(flags) || (flags & ~kKnownFlags) != 0) return r.Fail("unknown flags");
  if (!r.Byte(truncate_flags)) return r.Fail("truncated header");
  uint64_t commit_time, fingerprint;
  if (!r.Varint32(event.xid.value)) return r.Fail("bad xid");
  if (!r.Varint(commit_time)) return r.Fail("bad commit time");
  if (!r.Fixed64(fingerprint)) return r.Fail("truncated schema fingerprint");
  event.op = static_cast<Op>(op);
  event.old_is_key_only = (flags & kFlagOldIsKeyOnly) != 0;
  event.truncate_flags = truncate_flags;
  event.commit_time_us = UnZigZag(commit_time);
  if (flags & kFlagHasTenant) {
    if (!r.String(event.tenant.emplace())) return r.Fail("bad tenant");
  } else {
    event.tenant.reset();
  }
  if (flags & kFlagHasOldTenant) {
    if (!r.String(event.old_tenant.emplace())) return r.Fail("bad old tenant");
  } else {
    event.old_tenant.reset();
  }
  if (!ReadRow(r, event.new_row)) return r.Fail("bad new row");
  if (!ReadRow(r, event.old_row)) return r.Fail("bad old row");
  if (r.remaining() != 0) return r.Fail("trailing bytes");
  return fingerprint;
}

void EncodeSchema(const TableSchema& schema, std::string& out) {
  out.push_back(static_cast<char>(kSchemaFormat));
  PutVarint(out, schema.relation_id.value);
  PutBytes(out, schema.schema_name);
  PutBytes(out, schema.table_name);
  out.push_back(schema.replica_identity);
  PutVarint(out, schema.columns.size());
  for (const ColumnSchema& c : schema.columns) {
    PutBytes(out, c.name);
    PutVarint(out, c.type_oid);
    PutVarint(out, ZigZag(c.type_modifier));
    out.push_back(c.part_of_key ? 1 : 0);
  }
}

Result<TableSchema> DecodeSchema(std::string_view bytes) {
  Reader r(bytes, "schema");
  TableSchema s;
  uint8_t format, identity;
  uint64_t ncols;
  if (!r.Byte(format) || format != kSchemaFormat) return r.Fail("unknown schema format");
  if (!r.Varint32(s.relation_id.value)) return r.Fail("bad relation id");
  if (!r.String(s.schema_name) || !r.String(s.table_name)) return r.Fail("bad name");
  if (!r.Byte(identity)) return r.Fail("truncated replica identity");
  s.replica_identity = static_cast<char>(identity);
  if (!r.Count(ncols)) return r.Fail("bad column count");
  s.columns.resize(ncols);
  for (ColumnSchema& c : s.columns) {
    uint64_t modifier;
    uint8_t key;
    if (!r.String(c.name)) return r.Fail("bad column name");
    if (!r.Varint32(c.type_oid)) return r.Fail("bad type oid");
    if (!r.Varint(modifier)) return r.Fail("bad type modifier");
    int64_t mod = UnZigZag(modifier);
    if (mod < INT32_MIN || mod > INT32_MAX) return r.Fail("type modifier out of range");
    c.type_modifier = static_cast<int32_t>(mod);
    if (!r.Byte(key) || key > 1) return r.Fail("bad key flag");
    c.part_of_key = key == 1;
  }
  if (r.remaining() != 0) return r.Fail("trailing bytes");
  return s;
}

}  // namespace pgfanout
