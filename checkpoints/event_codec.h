#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "src/core/change_event.h"
#include "src/core/error.h"

namespace pgfanout {

// The binary form of events and schemas in the EventLog (layout in checkpoints/KEYS.md).
// Varints and length-prefixed bytes; a leading format byte so the layout can evolve.
//
// An encoded event carries neither its id nor its schema:
// - the id lives in the key of the events column family, and a spilled event has no
//   final id yet (its commit LSN and ordinal are known only at commit);
// - the schema is stored once under its Fingerprint() and referenced by it.
// Both are supplied by the caller, so one encoding serves the log and the spill.

// Appends the encoding of `event` (minus `id` and `table`) to `out`. `schema_fingerprint`
// is event.table->Fingerprint(), passed in because callers memoise it per table.
void EncodeEvent(const ChangeEvent& event, uint64_t schema_fingerprint, std::string& out);

// Decodes `bytes` into `event`, leaving `event.id` and `event.table` untouched, and
// returns the schema fingerprint to resolve `table` with. Corrupt or truncated bytes,
// unknown enum values and trailing bytes give kStorage; never reads past `bytes`.
Result<uint64_t> DecodeEvent(std::string_view bytes, ChangeEvent& event);

// Rewrites an encoded event's xid and commit time (the two fields a spilled change gets
// only at commit) into `out` without decoding its rows, and returns its schema
// fingerprint. kStorage when the bytes are not an event.
Result<uint64_t> RestampEvent(std::string_view bytes, Xid xid, int64_t commit_time_us,
                              std::string& out);

// What an encoded event says before its rows: enough to decide whether to decode it.
struct EventHeader {
  Op op = Op::kInsert;
  uint64_t schema_fingerprint = 0;
  std::optional<std::string_view> tenant;      // a view into the bytes
  std::optional<std::string_view> old_tenant;  // ChangeEvent::old_tenant, a view too
  bool has_old_row = false;
};

// Reads an encoded event's header and whether it carries an old row, without decoding
// (or allocating for) its values. kStorage when the bytes are not an event. An insert's
// rows are not looked at (inserts carry no old row): its bytes past the tenant are checked
// only when it is decoded.
Result<EventHeader> PeekEvent(std::string_view bytes);

// Appends the encoding of `schema` to `out`.
void EncodeSchema(const TableSchema& schema, std::string& out);

// Decodes a schema; rejects corrupt bytes with kStorage.
Result<TableSchema> DecodeSchema(std::string_view bytes);

}  // namespace pgfanout
