// The meta records' codec (checkpoints/meta_records.h): every record round-trips, any
// damage is refused rather than read as something else, and the text an older pgfanout
// stored converts to the same records.
#include "checkpoints/meta_records.h"

#include <gtest/gtest.h>

#include "checkpoints/memory_event_log.h"

namespace pgfanout::meta {
namespace {

TableCopyState Planned() {
  TableCopyState s;
  s.splits = {{"7", "100"}, {"9", std::string("a:b\t\n\"'\0x", 9)}};
  s.last = {KeyValues{"7", "42"}, std::nullopt, KeyValues{"9", ""}};
  s.done = {true, false, false};
  return s;
}

BackfillProgress Progress() {
  return BackfillProgress{.first = Lsn(0x16B3748),
                          .resume_at = EventId{Lsn(0x16B3747), UINT32_MAX},
                          .tables = {"public.users", "public.teams"},
                          .states = {Planned(), TableCopyState{}},
                          .rows_done = {12345678901ull, 0},
                          .replace = true,
                          .replace_begun = true};
}

// Each record of each type, its encoding, and a check that it decodes back.
template <class R>
void ExpectRoundTrip(const R& record) {
  const std::string bytes = Encode(record);
  auto back = Decode<R>(bytes);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back.value(), record);
  // Every shorter prefix and any trailing byte are refused.
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(Decode<R>(bytes.substr(0, n)).has_value()) << "a prefix of " << n << " bytes";
  }
  EXPECT_FALSE(Decode<R>(bytes + '\0').has_value()) << "a trailing byte";
}

TEST(MetaRecordsTest, EveryRecordRoundTripsAndRefusesTruncationAndTrailingBytes) {
  ExpectRoundTrip(LogId{"0123456789abcdef0123456789abcdef"});
  ExpectRoundTrip(Source{.system_id = "7310000000000000001", .slot = "pgfanout", .timeline = 3});
  ExpectRoundTrip(Source{.system_id = "7310000000000000001"});
  ExpectRoundTrip(TrimMark{EventId{Lsn(UINT64_MAX), UINT32_MAX}});
  ExpectRoundTrip(Flag{});
  ExpectRoundTrip(SinkState{.stopped = true, .retry_at_ms = 0, .message = "a\tb\nc"});
  ExpectRoundTrip(SinkState{.stopped = false, .retry_at_ms = 1'700'000'000'123, .message = ""});
  ExpectRoundTrip(Refill{{"public.users", std::string("odd\0name", 8)}});
  ExpectRoundTrip(Baseline{"12345"});
  ExpectRoundTrip(SinkTables{{}});
  ExpectRoundTrip(SinkTables{{"public.users"}});
  ExpectRoundTrip(Progress());
  ExpectRoundTrip(BackfillProgress{});
  ExpectRoundTrip(BackfillStatus{"backfill 10 of ~20 rows"});
  ExpectRoundTrip(Registry{});
  ExpectRoundTrip(Signals{});
  ExpectRoundTrip(Signals{.applied = EventId{Lsn(0x16B3748), 3},
                          .pending = {{.id = EventId{Lsn(0x16B3748), 1}, .sink_id = "pg"},
                                      {.id = EventId{Lsn(0x16B3748), 2},
                                       .sink_id = "ch",
                                       .table = "public.users",
                                       .replace = false}}});
  ExpectRoundTrip(Resnapshot{.tables = {"public.users"},
                             .replace = false,
                             .requested_at_ms = 1765000000000,
                             .origin = "http"});
  ExpectRoundTrip(Resnapshot{
      .tables = {"public.users"}, .replace = false, .origin = "http", .where = "plan = 'pro'"});
  ExpectRoundTrip(Registry{
      .applied = EventId{Lsn(0x16B3748), 2},
      .rows = {Registry::Row{.sink_id = "p1",
                             .template_name = "tenant-db",
                             .tenants = {"acme"},
                             .params = {{"database", "acme"}, {"host", "db1"}},
                             .enabled = false,
                             .error = "tenants: \"07\" is written \"7\""},
               Registry::Row{.sink_id = "p2", .template_name = "t", .tenants = {"a", "b"}}},
      .dropping = {"p3"}});
}

TEST(MetaRecordsTest, ARecordIsNeverReadAsAnotherOrAsAnUnknownVersion) {
  const std::string refill = Encode(Refill{{"public.users"}});
  EXPECT_TRUE(Decode<Refill>(refill).has_value());
  // The same layout (a list of strings) under another tag.
  auto as_tables = Decode<SinkTables>(refill);
  ASSERT_FALSE(as_tables.has_value());
  EXPECT_NE(as_tables.error().message.find("not this kind of record"), std::string::npos)
      << as_tables.error().message;
  std::string newer = refill;
  newer[1] = 2;
  auto v2 = Decode<Refill>(newer);
  ASSERT_FALSE(v2.has_value());
  EXPECT_NE(v2.error().message.find("unknown record version"), std::string::npos);
}

TEST(MetaRecordsTest, InconsistentProgressIsRefused) {
  std::string bytes = Encode(BackfillProgress{.replace = false});
  bytes.back() = 1;  // replace_begun without replace
  EXPECT_FALSE(Decode<BackfillProgress>(bytes).has_value());
  bytes.back() = 2;  // not a bool
  EXPECT_FALSE(Decode<BackfillProgress>(bytes).has_value());
  // A copy state whose range count is not one more than its splits.
  BackfillProgress p = Progress();
  p.states[0].done.pop_back();
  p.states[0].last.pop_back();
  EXPECT_FALSE(Decode<BackfillProgress>(Encode(p)).has_value());
}

TEST(MetaRecordsTest, AResnapshotRecordWrittenBeforeWhereExistedStillReads) {
  // Version 1, as the previous version wrote it: tag 12, version 1, tables, replace,
  // requested_at, origin; no where.
  const std::string v1 = std::string("\x0c\x01", 2) + "\x01\x08public.a" + "\x01" +
                         std::string("\x00", 1) + "\x04http";
  auto read = Decode<Resnapshot>(v1);
  ASSERT_TRUE(read.has_value()) << read.error().message;
  EXPECT_EQ(read.value(), (Resnapshot{.tables = {"public.a"}, .replace = true, .origin = "http"}));
  // Written now: version 2, with the where.
  const std::string v2 =
      Encode(Resnapshot{.tables = {"public.a"}, .origin = "http", .where = "a = 1"});
  EXPECT_EQ(v2[1], '\x02');
  EXPECT_FALSE(Decode<Resnapshot>(std::string("\x0c\x03", 2) + v2.substr(2)).has_value())
      << "a version newer than this one";
}

TEST(MetaRecordsTest, AResnapshotOfNoTableIsRefused) {
  std::string bytes = Encode(Resnapshot{.tables = {}, .origin = "http"});
  EXPECT_FALSE(Decode<Resnapshot>(bytes).has_value());
  EXPECT_TRUE(Decode<Resnapshot>(Encode(Resnapshot{.tables = {"public.a"}})).has_value());
}

TEST(MetaRecordsTest, LoadSaysWhichKeyIsDamagedAndErasedIsAbsent) {
  MemoryEventLog log;
  ASSERT_TRUE(Store(log, SinkStateKey("a"), SinkState{.message = "boom"}).has_value());
  EXPECT_EQ(Load(log, SinkStateKey("a")).value()->message, "boom");
  ASSERT_TRUE(Erase(log, SinkStateKey("a")).has_value());
  EXPECT_FALSE(Load(log, SinkStateKey("a")).value().has_value());
  ASSERT_TRUE(log.PutMeta(TrimmedPastKey("a").name, "0/16B3748#12").has_value());
  auto damaged = Load(log, TrimmedPastKey("a"));
  ASSERT_FALSE(damaged.has_value());
  EXPECT_EQ(damaged.error().kind, ErrorKind::kStorage);
  EXPECT_NE(damaged.error().message.find("sink.a.trimmed_past"), std::string::npos)
      << damaged.error().message;
}

// What pgfanout 0.1 to this version's predecessor stored, key by key (KEYS.md, "Formats 1
// and 2"), written here by hand as those versions wrote it.
std::string LegacyProgressText() {
  auto f = [](std::string_view s) { return std::to_string(s.size()) + ":" + std::string(s); };
  auto key = [&](const KeyValues& k) {
    std::string out = f(std::to_string(k.size()));
    for (const auto& v : k) out += f(v);
    return out;
  };
  const TableCopyState s = Planned();
  std::string state = f("2") + key(s.splits[0]) + key(s.splits[1]) + f("3");
  state += f("1") + f("1") + key(*s.last[0]);
  state += f("0") + f("0");
  state += f("0") + f("1") + key(*s.last[2]);
  return f("0/16B3748") + f("0/16B3747#4294967295") + f("2") + f("public.users") + f(state) +
         f("12345678901") + f("public.teams") + f(f("0") + f("0")) + f("0") + f("2");
}

TEST(MetaRecordsTest, TextFromOlderLogsConvertsToTheSameRecords) {
  std::map<std::string, std::string> legacy = {
      {"log.id", "0123456789abcdef0123456789abcdef"},
      {"source.system_id", "7310000000000000001"},
      {"source.slot", "pgfanout"},
      {"source.timeline", "3"},
      {"log.trimmed_through", "0/16B3748#12"},
      {"log.trim_marks_per_sink", "1"},
      {"sink.pg.trimmed_past", "0/16B3748#12"},
      {"sink.pg.state", "1\t1700000000123\tboom\twith a tab"},
      {"sink.pg.refill", std::string("public.users\0public.teams\0", 26)},
      {"sink.pg.baseline", "4096"},
      {"sink.pg.tables", "12:public.users12:public.teams"},
      {"sink.pg.backfill", LegacyProgressText()},
      {"sink.pg.backfill_status", "backfill done: 3 rows"},
      {"sink.ok.state", ""},  // cleared: erased
      {"sink.ok.backfill", ""},
      {"sink.bad.state", "not a state"},  // display only: dropped
      {"unknown.key", "kept"},
  };
  auto upgraded = UpgradeLegacy(legacy);
  ASSERT_TRUE(upgraded.has_value()) << upgraded.error().message;
  const auto& m = upgraded.value();
  auto get = [&]<class R>(const Key<R>& key) -> std::optional<R> {
    auto it = m.find(key.name);
    if (it == m.end()) return std::nullopt;
    auto r = Decode<R>(it->second);
    EXPECT_TRUE(r.has_value()) << key.name << ": " << r.error().message;
    return r ? std::optional<R>(r.value()) : std::nullopt;
  };
  EXPECT_EQ(get(LogIdKey()), LogId{"0123456789abcdef0123456789abcdef"});
  EXPECT_EQ(get(SourceKey()),
            (Source{.system_id = "7310000000000000001", .slot = "pgfanout", .timeline = 3}));
  EXPECT_EQ(get(TrimmedThroughKey()), TrimMark{(EventId{Lsn(0x16B3748), 12})});
  EXPECT_EQ(get(TrimMarksPerSinkKey()), Flag{});
  EXPECT_EQ(get(TrimmedPastKey("pg")), TrimMark{(EventId{Lsn(0x16B3748), 12})});
  EXPECT_EQ(get(SinkStateKey("pg")),
            (SinkState{
                .stopped = true, .retry_at_ms = 1'700'000'000'123, .message = "boom\twith a tab"}));
  EXPECT_EQ(get(RefillKey("pg")), (Refill{{"public.users", "public.teams"}}));
  EXPECT_EQ(get(BaselineKey("pg")), Baseline{"4096"});
  EXPECT_EQ(get(SinkTablesKey("pg")), (SinkTables{{"public.users", "public.teams"}}));
  EXPECT_EQ(get(BackfillProgressKey("pg")), Progress());
  EXPECT_EQ(get(BackfillStatusKey("pg")), BackfillStatus{"backfill done: 3 rows"});
  for (const char* gone : {"source.system_id", "source.slot", "source.timeline", "sink.ok.state",
                           "sink.ok.backfill", "sink.bad.state"}) {
    EXPECT_FALSE(m.contains(gone)) << gone;
  }
  EXPECT_EQ(m.at("unknown.key"), "kept");
  EXPECT_EQ(m.size(), 12u);
}

TEST(MetaRecordsTest, UnreadableTextThatMattersStopsTheUpgradeNamingTheKey) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"sink.pg.backfill", "3:0/1"},
           {"sink.pg.backfill", "99999999999999999999:x"},
           {"sink.pg.tables", "5:abc"},
           {"sink.pg.trimmed_past", "yesterday"},
           {"source.timeline", "three"}}) {
    auto upgraded = UpgradeLegacy({{key, value}});
    ASSERT_FALSE(upgraded.has_value()) << key;
    EXPECT_NE(upgraded.error().message.find(key), std::string::npos) << upgraded.error().message;
  }
}

}  // namespace
}  // namespace pgfanout::meta
