// Writes the seed corpora of event_codec_fuzz, event_key_fuzz and meta_records_fuzz: events
// and schemas as the EventLog stores them; event keys, spill keys, positions and cursors;
// every meta record, and the text older logs stored under each legacy key. Built on demand:
//   ninja -C build-fuzzreplay test/fuzz/gen_codec_seeds &&
//     build-fuzzreplay/test/fuzz/gen_codec_seeds test/fuzz/corpus

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "checkpoints/event_codec.h"
#include "checkpoints/meta_records.h"
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

  // Meta records, and legacy text: a first byte choosing the key (meta_records_fuzz.cc's
  // list), then the value as eventlog-2 stored it.
  auto records = root / "meta_records";
  std::filesystem::create_directories(records);
  TableCopyState copy{.splits = {{"7", "100"}},
                      .last = {KeyValues{"7", "42"}, std::nullopt},
                      .done = {true, false}};
  Write(records / "log-id", meta::Encode(meta::LogId{"0123456789abcdef0123456789abcdef"}));
  Write(records / "source", meta::Encode(meta::Source{"7310000000000000001", "pgfanout", 2}));
  Write(records / "trim-mark", meta::Encode(meta::TrimMark{ids[1]}));
  Write(records / "flag", meta::Encode(meta::Flag{}));
  Write(records / "sink-state", meta::Encode(meta::SinkState{false, 1700000000123, "a\tb"}));
  Write(records / "refill", meta::Encode(meta::Refill{{"public.users", "public.teams"}}));
  Write(records / "baseline", meta::Encode(meta::Baseline{"4096"}));
  Write(records / "sink-tables", meta::Encode(meta::SinkTables{{"public.users"}}));
  Write(records / "backfill-progress",
        meta::Encode(meta::BackfillProgress{.first = Lsn(0x16B3748),
                                            .resume_at = ids[0],
                                            .tables = {"public.users"},
                                            .states = {copy},
                                            .rows_done = {42},
                                            .replace = true}));
  Write(records / "backfill-status", meta::Encode(meta::BackfillStatus{"backfill 1 of ~2"}));
  Write(records / "registry",
        meta::Encode(meta::Registry{.applied = ids[0],
                                    .rows = {meta::Registry::Row{.sink_id = "p1",
                                                                 .template_name = "tenant-db",
                                                                 .tenants = {"acme"},
                                                                 .params = {{"host", "db1"}},
                                                                 .enabled = false}}}));
  // `index` is the key's place in meta_records_fuzz.cc's list; the text must upgrade.
  auto legacy = [&](const char* name, char index, const char* key, const std::string& text) {
    if (!meta::UpgradeLegacy({{key, text}})) {
      std::fprintf(stderr, "legacy seed %s does not upgrade\n", name);
      std::exit(1);
    }
    Write(records / (std::string("legacy-") + name), std::string(1, index) + text);
  };
  legacy("timeline", 3, "source.timeline", "2");
  legacy("trimmed-through", 4, "log.trimmed_through", "0/16B3748#12");
  legacy("state", 7, "sink.s.state", "1\t1700000000123\tboom");
  legacy("refill", 8, "sink.s.refill", std::string("public.users\0", 13));
  legacy("tables", 10, "sink.s.tables", "12:public.users");
  auto f = [](const std::string& v) { return std::to_string(v.size()) + ":" + v; };
  const std::string state =
      f("1") + f("1") + f("7") + f("2") + f("1") + f("1") + f("1") + f("7") + f("0") + f("0");
  legacy("backfill", 11, "sink.s.backfill",
         f("0/16B3748") + f("0/16B3747#4294967295") + f("1") + f("public.users") + f(state) +
             f("42") + f("2"));
  std::printf("wrote %s and %s\n", codec.c_str(), key.c_str());
  return 0;
}
