// Fuzz target: the EventLog's key and small-value layouts, checkpoints/rocksdb_keys.h (see
// checkpoints/KEYS.md). Build and run: test/fuzz/README.md. Seeds: corpus/event_key/.
//
// The log is read in key order and bounded by these keys, so a codec slip would read an
// event twice, skip one, or read past the durable position. Asserted:
// - DecodeEventKey accepts exactly 12-byte keys, and EventKey(decoded) == input;
// - for ids a, b taken from the input: DecodeEventKey(EventKey(a)) == a, and a < b iff
//   EventKey(a) < EventKey(b) bytewise (what RocksDB's comparator sees);
// - KeyAfter(a) sorts after EventKey(a) and not after EventKey(c) for any c > a;
//   KeyAfterAll() sorts after every event key;
// - spill keys: (xid, seq) order is byte order, and SpillPrefix(xid) <= SpillKey(xid, seq)
//   < SpillPrefixEnd(xid) < every spill key of a larger xid;
// - position and cursor values: decode(encode(x)) == x, and whatever decodes re-encodes to
//   something that decodes to the same value.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "checkpoints/rocksdb_keys.h"

namespace {

using namespace pgfanout;
namespace keys = pgfanout::rocksdb_keys;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "event_key_fuzz: %s\n", what);
    std::abort();
  }
}

// Bytes [at, at + n) of the input as a big-endian number, zero past its end.
uint64_t Take(std::string_view in, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    size_t k = at + static_cast<size_t>(i);
    v = (v << 8) | (k < in.size() ? static_cast<uint8_t>(in[k]) : 0u);
  }
  return v;
}

// Byte order as RocksDB's default comparator sees it (memcmp, then length).
int Compare(std::string_view a, std::string_view b) {
  int c = a.compare(b);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

int Compare3(auto a, auto b) { return a < b ? -1 : b < a ? 1 : 0; }

void CheckEventKeys(std::string_view in) {
  auto decoded = keys::DecodeEventKey(in);
  Check(decoded.has_value() == (in.size() == keys::kEventKeySize),
        "DecodeEventKey accepts a key of the wrong size or rejects a 12-byte one");
  if (decoded) Check(keys::EventKey(*decoded) == in, "EventKey(DecodeEventKey(k)) != k");

  // Two ids from the input; b near a half the time, so neighbours get compared.
  EventId a{Lsn(Take(in, 0, 8)), static_cast<uint32_t>(Take(in, 8, 4))};
  EventId b{Lsn(Take(in, 12, 8)), static_cast<uint32_t>(Take(in, 20, 4))};
  if (Take(in, 24, 1) & 1) {
    b = a;
    if (Take(in, 24, 1) & 2) {
      b.ordinal = a.ordinal + 1;
      if (b.ordinal == 0) b.commit_lsn = Lsn(a.commit_lsn.value() + 1);
    } else {
      b.commit_lsn = Lsn(a.commit_lsn.value() + 1);
      b.ordinal = static_cast<uint32_t>(Take(in, 25, 4));
    }
  }
  for (EventId id : {a, b}) {
    std::string key = keys::EventKey(id);
    Check(key.size() == keys::kEventKeySize, "EventKey size");
    Check(keys::DecodeEventKey(key) == id, "DecodeEventKey(EventKey(id)) != id");
    Check(Compare(key, keys::KeyAfter(id)) < 0, "KeyAfter(id) does not sort after the key");
    Check(Compare(key, keys::KeyAfterAll()) < 0, "KeyAfterAll() does not sort after a key");
  }
  std::string ka = keys::EventKey(a), kb = keys::EventKey(b);
  Check(Compare(ka, kb) == Compare3(a, b), "event key order differs from EventId order");
  // KeyAfter(x) is an exclusive upper bound that includes x and excludes everything above.
  if (a < b) Check(Compare(keys::KeyAfter(a), kb) <= 0, "KeyAfter(a) sorts after a larger key");
  if (b < a) Check(Compare(keys::KeyAfter(b), ka) <= 0, "KeyAfter(b) sorts after a larger key");
}

void CheckSpillKeys(std::string_view in) {
  Xid xa{static_cast<uint32_t>(Take(in, 0, 4))}, xb{static_cast<uint32_t>(Take(in, 12, 4))};
  uint64_t sa = Take(in, 4, 8), sb = Take(in, 16, 8);
  if (Take(in, 24, 1) & 4) xb = xa;
  std::string ka = keys::SpillKey(xa, sa), kb = keys::SpillKey(xb, sb);
  Check(ka.size() == keys::kSpillKeySize, "SpillKey size");
  int want = xa.value != xb.value ? Compare3(xa.value, xb.value) : Compare3(sa, sb);
  Check(Compare(ka, kb) == want, "spill key order differs from (xid, seq) order");
  Check(Compare(keys::SpillPrefix(xa), ka) <= 0, "SpillPrefix sorts after its key");
  Check(Compare(ka, keys::SpillPrefixEnd(xa)) < 0, "SpillPrefixEnd sorts before its key");
  if (xa < xb) Check(Compare(keys::SpillPrefixEnd(xa), kb) < 0, "SpillPrefixEnd reaches xid+");
}

void CheckValues(std::string_view in) {
  // Position: decode whatever the input is; re-encoding what decoded is stable.
  Lsn end;
  std::optional<EventId> last;
  if (keys::DecodePosition(in, end, last)) {
    Lsn end2;
    std::optional<EventId> last2;
    Check(keys::DecodePosition(keys::EncodePosition(end, last), end2, last2) && end2 == end &&
              last2 == last,
          "position does not survive re-encoding");
  }
  Lsn e{Take(in, 0, 8)};
  std::optional<EventId> l;
  if (Take(in, 8, 1) & 1) l = EventId{Lsn(Take(in, 9, 8)), static_cast<uint32_t>(Take(in, 17, 4))};
  std::string pos = keys::EncodePosition(e, l);
  Check(pos.size() == keys::kPositionSize, "position size");
  Check(keys::DecodePosition(pos, end, last) && end == e && last == l, "position round trip");

  // Cursor: applied id, then the token's bytes (the rest).
  if (auto cursor = keys::DecodeCursor(in)) {
    Check(keys::EncodeCursor(*cursor) == in, "EncodeCursor(DecodeCursor(v)) != v");
  } else {
    Check(in.size() < keys::kEventKeySize, "DecodeCursor rejects a long enough value");
  }
  SinkCursor c{EventId{e, static_cast<uint32_t>(Take(in, 8, 4))},
               std::string(in.substr(std::min<size_t>(in.size(), 12)))};
  Check(keys::DecodeCursor(keys::EncodeCursor(c)) == c, "cursor round trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckEventKeys(in);
  CheckSpillKeys(in);
  CheckValues(in);
  return 0;
}
