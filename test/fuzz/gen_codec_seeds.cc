// Writes the seed corpora of event_codec_fuzz and event_key_fuzz: events and schemas as the
// EventLog stores them, and event keys, spill keys, positions and cursors. Built on demand:
//   ninja -C build-fuzzreplay test/fuzz/gen_codec_seeds &&
//     build-fuzzreplay/test/fuzz/gen_codec_seeds test/fuzz/corpus

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "checkpoints/event_codec.h"
#include "checkpoints/rocksdb_keys.h"

namespace {

using namespace pgfanout;
namespace keys = pgfanout::rocksdb_keys;

void Write(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

Datum Text(std::string s) { return Datum{ValueKind::kText, std::move(s)}; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus root>\n", argv[0]);
    return 2;
  }
  std::filesystem::path root = argv[1];
  auto codec = root / "event_codec", key = root / "event_key";
  std::filesystem::create_directories(codec);
  std::filesystem::create_directories(key);

  const ChangeEvent events[] = {
      {.xid = Xid{731},
       .commit_time_us = 1'700'000'000'123'456,
       .op = Op::kInsert,
       .tenant = "acme",
       .new_row = {Text("1"), Text("acme"), Text("ünïcødé ✓"), Datum{}}},
      {.xid = Xid{732},
       .commit_time_us = 1'700'000'000'200'000,
       .op = Op::kUpdate,
       .tenant = "7",
       .new_row = {Text("2"), Text("7"), Datum{ValueKind::kUnchangedToast, ""}},
       .old_row = {Text("2"), Datum{}, Datum{}},
       .old_is_key_only = true},
      {.xid = Xid{733},
       .commit_time_us = -1,
       .op = Op::kUpdate,
       .new_row = {Text("3"), Text(std::string("a\0b", 3))},
       .old_row = {Text("3"), Text("old")}},
      {.xid = Xid{4'000'000'000u},
       .commit_time_us = 0,
       .op = Op::kDelete,
       .old_row = {Text("4"), Datum{}},
       .old_is_key_only = true},
      {.xid = Xid{735},
       .commit_time_us = 42,
       .op = Op::kTruncate,
       .truncate_flags = kTruncateCascade | kTruncateRestartIdentity},
      {.xid = Xid{736}, .op = Op::kInsert, .tenant = "", .new_row = {Text(std::string(300, 'x'))}},
  };
  uint64_t fingerprint = 0x0123456789abcdefULL;
  int n = 0;
  for (const ChangeEvent& e : events) {
    std::string bytes;
    EncodeEvent(e, fingerprint++, bytes);
    Write(codec / ("event-" + std::to_string(n++)), bytes);
  }
  const TableSchema schemas[] = {
      {.relation_id = RelationId{16389},
       .schema_name = "public",
       .table_name = "users",
       .replica_identity = 'f',
       .columns = {{"id", 23, -1, true}, {"tenant_id", 25, -1, false}, {"note", 1043, 24, false}}},
      {.relation_id = RelationId{16396},
       .schema_name = "app",
       .table_name = "Order Items",
       .replica_identity = 'i',
       .columns = {}},
  };
  n = 0;
  for (const TableSchema& s : schemas) {
    std::string bytes;
    EncodeSchema(s, bytes);
    Write(codec / ("schema-" + std::to_string(n++)), bytes);
  }

  // event_key_fuzz reads an input as: id a (12 bytes), id b (12 bytes), a selector byte,
  // and also as one key, a position or a cursor value.
  const EventId ids[] = {{Lsn(0x16B3748), 0},
                         {Lsn(0x16B3748), 1},
                         {Lsn(0x1'0000'0000), 0xffffffff},
                         {Lsn(UINT64_MAX), 0xffffffff},
                         {Lsn(0), 0}};
  n = 0;
  for (size_t i = 0; i + 1 < std::size(ids); ++i) {
    Write(key / ("pair-" + std::to_string(n++)),
          keys::EventKey(ids[i]) + keys::EventKey(ids[i + 1]) + std::string(1, char(i)));
  }
  Write(key / "event-key", keys::EventKey(ids[0]));
  Write(key / "spill-key", keys::SpillKey(Xid{731}, 5) + keys::SpillKey(Xid{731}, 6));
  Write(key / "position-empty", keys::EncodePosition(Lsn(0x16B3748), std::nullopt));
  Write(key / "position", keys::EncodePosition(Lsn(0x16B3800), ids[1]));
  Write(key / "cursor", keys::EncodeCursor(SinkCursor{ids[2], "0/16B3748#12 token"}));
  std::printf("wrote %s and %s\n", codec.c_str(), key.c_str());
  return 0;
}
