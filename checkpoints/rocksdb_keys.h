#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <rocksdb/slice.h>

#include "checkpoints/event_log.h"
#include "src/core/event_id.h"

// Keys and small fixed values of the RocksDB event log (layout in checkpoints/KEYS.md).
// Integers in keys are big-endian so that bytewise key order is numeric order.
namespace pgfanout::rocksdb_keys {

inline constexpr size_t kEventKeySize = 12;  // commit_lsn u64 BE + ordinal u32 BE
inline constexpr size_t kSpillKeySize = 12;  // xid u32 BE + seq u64 BE

inline std::string_view ToView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

inline void PutBe(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}

inline uint64_t GetBe(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(in[at + i]);
  return v;
}

inline std::string EventKey(EventId id) {
  std::string key;
  key.reserve(kEventKeySize + 1);
  PutBe(key, id.commit_lsn.value(), 8);
  PutBe(key, id.ordinal, 4);
  return key;
}

// The smallest key above EventKey(id): with a bytewise comparator, key + '\0' sorts after
// the key and before every other 12-byte key greater than it.
inline std::string KeyAfter(EventId id) { return EventKey(id).append(1, '\0'); }

// Sorts after every 12-byte key.
inline std::string KeyAfterAll() { return std::string(kEventKeySize + 1, '\xff'); }

inline std::optional<EventId> DecodeEventKey(std::string_view key) {
  if (key.size() != kEventKeySize) return std::nullopt;
  return EventId{Lsn(GetBe(key, 0, 8)), static_cast<uint32_t>(GetBe(key, 8, 4))};
}

// The schemas CF: fingerprint u64 BE.
inline std::string SchemaKey(uint64_t fingerprint) {
  std::string key;
  PutBe(key, fingerprint, 8);
  return key;
}

inline std::string SpillPrefix(Xid xid) {
  std::string key;
  PutBe(key, xid.value, 4);
  return key;
}

// Sorts after every spill key of `xid`.
inline std::string SpillPrefixEnd(Xid xid) {
  std::string key = SpillPrefix(xid);
  key.append(8, '\xff');
  key.push_back('\xff');
  return key;
}

inline std::string SpillKey(Xid xid, uint64_t seq) {
  std::string key = SpillPrefix(xid);
  PutBe(key, seq, 8);
  return key;
}

// The tenant index (the `tenants` CF): one empty-valued key per (bucket, event). A bucket
// is the shared one (0x00; TRUNCATEs) or a tenant's (0x01 + u32 BE length + the tenant's
// bytes); the event key follows. Every key of a bucket is its prefix + 12 bytes.
inline std::string SharedBucket() { return std::string(1, '\0'); }

inline std::string TenantBucket(std::string_view tenant) {
  std::string key(1, '\x01');
  PutBe(key, tenant.size(), 4);
  key.append(tenant);
  return key;
}

inline std::string IndexKey(std::string_view bucket, EventId id) {
  std::string key(bucket);
  key.append(EventKey(id));
  return key;
}

// The bucket of an index key (its bytes before the event key), or nullopt if malformed.
inline std::optional<std::string_view> BucketOf(std::string_view index_key) {
  if (index_key.size() < 1 + kEventKeySize) return std::nullopt;
  if (index_key[0] == '\0') {
    if (index_key.size() != 1 + kEventKeySize) return std::nullopt;
    return index_key.substr(0, 1);
  }
  if (index_key[0] != '\x01' || index_key.size() < 5 + kEventKeySize) return std::nullopt;
  const uint64_t n = GetBe(index_key, 1, 4);
  if (index_key.size() != 5 + n + kEventKeySize) return std::nullopt;
  return index_key.substr(0, 5 + n);
}

// The durable position, one value under kPositionKey in the default column family:
// end_lsn u64 BE, has_event u8 (0|1), last event commit_lsn u64 BE, ordinal u32 BE.
inline constexpr std::string_view kPositionKey = "position";
inline constexpr std::string_view kFormatKey = "format";
// Format 2 adds the tenant index and ChangeEvent::old_tenant in events; format 3 stores the
// meta records in their codec (meta_records.h) instead of text. An older log is upgraded
// on its first writable open (a format-1 log's events before kIndexFromKey are not indexed).
inline constexpr std::string_view kFormatVersion = "pgfanout-eventlog-3";
inline constexpr std::string_view kFormatVersion2 = "pgfanout-eventlog-2";
inline constexpr std::string_view kFormatVersion1 = "pgfanout-eventlog-1";
// The event key after which every event is in the tenant index (empty: all of them).
inline constexpr std::string_view kIndexFromKey = "index_from";
inline constexpr size_t kPositionSize = 21;

inline std::string EncodePosition(Lsn end_lsn, std::optional<EventId> last_event) {
  std::string v;
  PutBe(v, end_lsn.value(), 8);
  v.push_back(last_event ? 1 : 0);
  EventId id = last_event.value_or(EventId{});
  PutBe(v, id.commit_lsn.value(), 8);
  PutBe(v, id.ordinal, 4);
  return v;
}

inline bool DecodePosition(std::string_view v, Lsn& end_lsn, std::optional<EventId>& last_event) {
  if (v.size() != kPositionSize || static_cast<uint8_t>(v[8]) > 1) return false;
  end_lsn = Lsn(GetBe(v, 0, 8));
  last_event.reset();
  if (v[8] == 1) {
    last_event = EventId{Lsn(GetBe(v, 9, 8)), static_cast<uint32_t>(GetBe(v, 17, 4))};
  }
  return true;
}

// A cursor value: applied commit_lsn u64 BE, ordinal u32 BE, then the token's bytes.
inline std::string EncodeCursor(const SinkCursor& cursor) {
  std::string v = EventKey(cursor.applied);
  v.append(cursor.token);
  return v;
}

inline std::optional<SinkCursor> DecodeCursor(std::string_view v) {
  if (v.size() < kEventKeySize) return std::nullopt;
  return SinkCursor{*DecodeEventKey(v.substr(0, kEventKeySize)),
                    std::string(v.substr(kEventKeySize))};
}

}  // namespace pgfanout::rocksdb_keys
