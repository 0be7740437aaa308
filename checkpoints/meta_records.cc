#include "checkpoints/meta_records.h"

#include <fmt/format.h>

#include <charconv>

#include "checkpoints/wire.h"

namespace pgfanout::meta {
namespace {

using wire::PutBytes;
using wire::PutVarint;
using wire::Reader;

constexpr uint8_t kVersion = 1;

// One tag per record type; never reused.
constexpr uint8_t kLogIdTag = 1;
constexpr uint8_t kSourceTag = 2;
constexpr uint8_t kTrimMarkTag = 3;
constexpr uint8_t kFlagTag = 4;
constexpr uint8_t kSinkStateTag = 5;
constexpr uint8_t kRefillTag = 6;
constexpr uint8_t kBaselineTag = 7;
constexpr uint8_t kSinkTablesTag = 8;
constexpr uint8_t kBackfillProgressTag = 9;
constexpr uint8_t kBackfillStatusTag = 10;
constexpr uint8_t kRegistryTag = 11;
constexpr uint8_t kResnapshotTag = 12;
constexpr uint8_t kSignalsTag = 13;

template <class Record>
struct Traits;
template <>
struct Traits<LogId> {
  static constexpr uint8_t kTag = kLogIdTag;
  static constexpr const char* kName = "log id";
};
template <>
struct Traits<Source> {
  static constexpr uint8_t kTag = kSourceTag;
  static constexpr const char* kName = "source identity";
};
template <>
struct Traits<TrimMark> {
  static constexpr uint8_t kTag = kTrimMarkTag;
  static constexpr const char* kName = "trim mark";
};
template <>
struct Traits<Flag> {
  static constexpr uint8_t kTag = kFlagTag;
  static constexpr const char* kName = "flag";
};
template <>
struct Traits<SinkState> {
  static constexpr uint8_t kTag = kSinkStateTag;
  static constexpr const char* kName = "sink state";
};
template <>
struct Traits<Refill> {
  static constexpr uint8_t kTag = kRefillTag;
  static constexpr const char* kName = "refill list";
};
template <>
struct Traits<Baseline> {
  static constexpr uint8_t kTag = kBaselineTag;
  static constexpr const char* kName = "baseline";
};
template <>
struct Traits<SinkTables> {
  static constexpr uint8_t kTag = kSinkTablesTag;
  static constexpr const char* kName = "sink tables";
};
template <>
struct Traits<BackfillProgress> {
  static constexpr uint8_t kTag = kBackfillProgressTag;
  static constexpr const char* kName = "backfill progress";
};
template <>
struct Traits<BackfillStatus> {
  static constexpr uint8_t kTag = kBackfillStatusTag;
  static constexpr const char* kName = "backfill status";
};

template <>
struct Traits<Registry> {
  static constexpr uint8_t kTag = kRegistryTag;
  static constexpr const char* kName = "sink registry";
};
template <>
struct Traits<Resnapshot> {
  static constexpr uint8_t kTag = kResnapshotTag;
  static constexpr const char* kName = "resnapshot request";
  // 2 added `where`; a version-1 record (written before it) still reads, without one.
  static constexpr uint8_t kVersion = 2;
  static constexpr uint8_t kOldestVersion = 1;
};

template <>
struct Traits<Signals> {
  static constexpr uint8_t kTag = kSignalsTag;
  static constexpr const char* kName = "signal queue";
};

// The version a record is written with: kVersion unless its Traits say otherwise.
template <class Record>
constexpr uint8_t VersionOf() {
  if constexpr (requires { Traits<Record>::kVersion; }) {
    return Traits<Record>::kVersion;
  } else {
    return kVersion;
  }
}
template <class Record>
constexpr uint8_t OldestVersionOf() {
  if constexpr (requires { Traits<Record>::kOldestVersion; }) {
    return Traits<Record>::kOldestVersion;
  } else {
    return VersionOf<Record>();
  }
}

template <class Record>
std::string Header() {
  return std::string{static_cast<char>(Traits<Record>::kTag),
                     static_cast<char>(VersionOf<Record>())};
}

void PutEventId(std::string& out, const EventId& id) {
  PutVarint(out, id.commit_lsn.value());
  PutVarint(out, id.ordinal);
}

bool GetEventId(Reader& r, EventId& id) {
  uint64_t lsn;
  if (!r.Varint(lsn) || !r.Varint32(id.ordinal)) return false;
  id.commit_lsn = Lsn(lsn);
  return true;
}

void PutList(std::string& out, const std::vector<std::string>& items) {
  PutVarint(out, items.size());
  for (const auto& i : items) PutBytes(out, i);
}

bool GetList(Reader& r, std::vector<std::string>& items) {
  uint64_t n;
  if (!r.Count(n)) return false;
  items.resize(n);
  for (auto& i : items) {
    if (!r.String(i)) return false;
  }
  return true;
}

void PutCopyState(std::string& out, const TableCopyState& s) {
  PutVarint(out, s.splits.size());
  for (const auto& k : s.splits) PutList(out, k);
  PutVarint(out, s.done.size());
  for (size_t i = 0; i < s.done.size(); ++i) {
    out.push_back(s.done[i] ? 1 : 0);
    const bool has_last = i < s.last.size() && s.last[i].has_value();
    out.push_back(has_last ? 1 : 0);
    if (has_last) PutList(out, *s.last[i]);
  }
}

bool GetCopyState(Reader& r, TableCopyState& s) {
  uint64_t splits, ranges;
  if (!r.Count(splits)) return false;
  s.splits.resize(splits);
  for (auto& k : s.splits) {
    if (!GetList(r, k)) return false;
  }
  // Unplanned (no ranges), or one range more than splits.
  if (!r.Count(ranges) || (ranges != 0 && ranges != splits + 1) || (ranges == 0 && splits != 0)) {
    return false;
  }
  s.done.assign(ranges, false);
  s.last.assign(ranges, std::nullopt);
  for (uint64_t i = 0; i < ranges; ++i) {
    bool done, has_last;
    if (!r.Bool(done) || !r.Bool(has_last)) return false;
    s.done[i] = done;
    if (has_last && !GetList(r, s.last[i].emplace())) return false;
  }
  return true;
}

// Reads the header of a `Record`; false (with `why` set) when it is another.
template <class Record>
bool Begin(Reader& r, const char*& why, uint8_t& version) {
  uint8_t tag;
  if (!r.Byte(tag) || tag != Traits<Record>::kTag) {
    why = "not this kind of record";
    return false;
  }
  if (!r.Byte(version) || version < OldestVersionOf<Record>() || version > VersionOf<Record>()) {
    why = "unknown record version";
    return false;
  }
  return true;
}

template <class Record>
Result<Record> Finish(Reader& r, Record record) {
  if (r.remaining() != 0) return r.Fail("trailing bytes");
  return record;
}

template <class Record>
Result<Record> DecodeFields(Reader& r);
// For records with more than one version (Traits::kOldestVersion).
template <class Record>
Result<Record> DecodeFields(Reader& r, uint8_t version);

template <>
Result<LogId> DecodeFields(Reader& r) {
  LogId x;
  if (!r.String(x.id)) return r.Fail("bad id");
  return Finish(r, std::move(x));
}
template <>
Result<Source> DecodeFields(Reader& r) {
  Source x;
  if (!r.String(x.system_id) || !r.String(x.slot)) return r.Fail("bad name");
  if (!r.Varint32(x.timeline)) return r.Fail("bad timeline");
  return Finish(r, std::move(x));
}
template <>
Result<TrimMark> DecodeFields(Reader& r) {
  TrimMark x;
  if (!GetEventId(r, x.through)) return r.Fail("bad event id");
  return Finish(r, x);
}
template <>
Result<Flag> DecodeFields(Reader& r) {
  return Finish(r, Flag{});
}
template <>
Result<SinkState> DecodeFields(Reader& r) {
  SinkState x;
  uint64_t retry;
  if (!r.Bool(x.stopped)) return r.Fail("bad stopped flag");
  if (!r.Varint(retry)) return r.Fail("bad retry time");
  x.retry_at_ms = wire::UnZigZag(retry);
  if (!r.String(x.message)) return r.Fail("bad message");
  return Finish(r, std::move(x));
}
template <>
Result<Refill> DecodeFields(Reader& r) {
  Refill x;
  if (!GetList(r, x.tables)) return r.Fail("bad table list");
  return Finish(r, std::move(x));
}
template <>
Result<Baseline> DecodeFields(Reader& r) {
  Baseline x;
  if (!r.String(x.token)) return r.Fail("bad token");
  return Finish(r, std::move(x));
}
template <>
Result<SinkTables> DecodeFields(Reader& r) {
  SinkTables x;
  if (!GetList(r, x.tables)) return r.Fail("bad table list");
  return Finish(r, std::move(x));
}
template <>
Result<BackfillProgress> DecodeFields(Reader& r) {
  BackfillProgress x;
  uint64_t first, n;
  if (!r.Varint(first) || !GetEventId(r, x.resume_at)) return r.Fail("bad position");
  x.first = Lsn(first);
  if (!r.Count(n)) return r.Fail("bad table count");
  x.tables.resize(n);
  x.states.resize(n);
  x.rows_done.resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    if (!r.String(x.tables[i])) return r.Fail("bad table name");
    if (!GetCopyState(r, x.states[i])) return r.Fail("bad copy state");
    if (!r.Varint(x.rows_done[i])) return r.Fail("bad row count");
  }
  if (!r.Bool(x.replace) || !r.Bool(x.replace_begun) || (x.replace_begun && !x.replace)) {
    return r.Fail("bad replace flags");
  }
  return Finish(r, std::move(x));
}
template <>
Result<BackfillStatus> DecodeFields(Reader& r) {
  BackfillStatus x;
  if (!r.String(x.line)) return r.Fail("bad line");
  return Finish(r, std::move(x));
}

template <>
Result<Resnapshot> DecodeFields(Reader& r, uint8_t version) {
  Resnapshot x;
  uint64_t at;
  if (!GetList(r, x.tables) || x.tables.empty()) return r.Fail("bad table list");
  if (!r.Bool(x.replace)) return r.Fail("bad replace flag");
  if (!r.Varint(at)) return r.Fail("bad request time");
  x.requested_at_ms = wire::UnZigZag(at);
  if (!r.String(x.origin)) return r.Fail("bad origin");
  if (version >= 2 && !r.String(x.where)) return r.Fail("bad where");
  return Finish(r, std::move(x));
}

template <>
Result<Signals> DecodeFields(Reader& r) {
  Signals x;
  uint64_t n;
  if (!GetEventId(r, x.applied)) return r.Fail("bad applied id");
  if (!r.Count(n)) return r.Fail("bad request count");
  x.pending.resize(n);
  for (auto& q : x.pending) {
    bool has_table = false;
    if (!GetEventId(r, q.id) || !r.String(q.sink_id) || !r.Bool(has_table)) {
      return r.Fail("bad request");
    }
    if (has_table) {
      q.table.emplace();
      if (!r.String(*q.table)) return r.Fail("bad request table");
    }
    if (!r.Bool(q.replace)) return r.Fail("bad replace flag");
  }
  return Finish(r, std::move(x));
}

template <>
Result<Registry> DecodeFields(Reader& r) {
  Registry x;
  uint64_t n;
  if (!GetEventId(r, x.applied)) return r.Fail("bad position");
  if (!r.Count(n)) return r.Fail("bad row count");
  x.rows.resize(n);
  for (auto& row : x.rows) {
    uint64_t params;
    if (!r.String(row.sink_id) || !r.String(row.template_name)) return r.Fail("bad row name");
    if (!GetList(r, row.tenants)) return r.Fail("bad tenant list");
    if (!r.Count(params)) return r.Fail("bad param count");
    row.params.resize(params);
    for (auto& [k, v] : row.params) {
      if (!r.String(k) || !r.String(v)) return r.Fail("bad param");
    }
    if (!r.Bool(row.enabled) || !r.String(row.error)) return r.Fail("bad row state");
  }
  if (!GetList(r, x.dropping)) return r.Fail("bad dropping list");
  return Finish(r, std::move(x));
}

std::string SinkKey(std::string_view sink_id, std::string_view what) {
  return fmt::format("sink.{}.{}", sink_id, what);
}

// --- Legacy text (eventlog-1 and -2) -------------------------------------------------

// "3:abc": length-prefixed fields, as backfill progress and sink tables were stored.
std::optional<std::string> TakeField(std::string_view& in) {
  const size_t colon = in.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 9) return std::nullopt;
  size_t n = 0;
  for (char c : in.substr(0, colon)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  if (in.size() - colon - 1 < n) return std::nullopt;
  std::string out(in.substr(colon + 1, n));
  in.remove_prefix(colon + 1 + n);
  return out;
}

template <class Int>
std::optional<Int> TakeNumber(std::string_view& in, size_t max_digits) {
  auto f = TakeField(in);
  if (!f || f->empty() || f->size() > max_digits) return std::nullopt;
  Int v{};
  auto [end, ec] = std::from_chars(f->data(), f->data() + f->size(), v);
  if (ec != std::errc() || end != f->data() + f->size()) return std::nullopt;
  return v;
}

std::optional<std::vector<std::string>> LegacyList(std::string_view in) {
  std::vector<std::string> out;
  while (!in.empty()) {
    auto f = TakeField(in);
    if (!f) return std::nullopt;
    out.push_back(std::move(*f));
  }
  return out;
}

std::optional<KeyValues> LegacyKey(std::string_view& in) {
  auto n = TakeNumber<int>(in, 3);
  if (!n) return std::nullopt;
  KeyValues key;
  for (int i = *n; i > 0; --i) {
    auto v = TakeField(in);
    if (!v) return std::nullopt;
    key.push_back(std::move(*v));
  }
  return key;
}

std::optional<TableCopyState> LegacyCopyState(std::string_view in) {
  TableCopyState state;
  auto splits = TakeNumber<int>(in, 6);
  if (!splits) return std::nullopt;
  for (int i = 0; i < *splits; ++i) {
    auto k = LegacyKey(in);
    if (!k) return std::nullopt;
    state.splits.push_back(std::move(*k));
  }
  auto ranges = TakeNumber<int>(in, 6);
  if (!ranges || (*ranges != *splits + 1 && !(*ranges == 0 && *splits == 0))) return std::nullopt;
  for (int i = 0; i < *ranges; ++i) {
    auto done = TakeField(in);
    auto has_last = done ? TakeField(in) : std::nullopt;
    if (!has_last) return std::nullopt;
    state.done.push_back(*done == "1");
    if (*has_last == "1") {
      auto k = LegacyKey(in);
      if (!k) return std::nullopt;
      state.last.emplace_back(std::move(*k));
    } else {
      state.last.emplace_back();
    }
  }
  if (!in.empty()) return std::nullopt;
  return state;
}

std::optional<BackfillProgress> LegacyProgress(std::string_view in) {
  BackfillProgress p;
  auto first = TakeField(in);
  auto resume = first ? TakeField(in) : std::nullopt;
  auto count = resume ? TakeNumber<int>(in, 6) : std::nullopt;
  if (!count) return std::nullopt;
  auto lsn = Lsn::Parse(*first);
  auto at = EventId::Parse(*resume);
  if (!lsn || !at) return std::nullopt;
  p.first = *lsn;
  p.resume_at = *at;
  for (int i = *count; i > 0; --i) {
    auto name = TakeField(in);
    auto state = name ? TakeField(in) : std::nullopt;
    auto rows = state ? TakeNumber<uint64_t>(in, 19) : std::nullopt;
    if (!rows) return std::nullopt;
    auto decoded = LegacyCopyState(*state);
    if (!decoded) return std::nullopt;
    p.tables.push_back(std::move(*name));
    p.states.push_back(std::move(*decoded));
    p.rows_done.push_back(*rows);
  }
  // Written by pgfanout 0.1 without it: a copy that replaced nothing.
  if (!in.empty()) {
    auto replace = TakeField(in);
    if (!replace || (*replace != "0" && *replace != "1" && *replace != "2")) return std::nullopt;
    p.replace = *replace != "0";
    p.replace_begun = *replace == "2";
  }
  if (!in.empty()) return std::nullopt;
  return p;
}

// "stopped \t retry-at-ms \t message"
std::optional<SinkState> LegacySinkState(std::string_view text) {
  const size_t tab1 = text.find('\t');
  const size_t tab2 = tab1 == std::string_view::npos ? tab1 : text.find('\t', tab1 + 1);
  if (tab2 == std::string_view::npos) return std::nullopt;
  SinkState s;
  s.stopped = text.substr(0, tab1) == "1";
  auto digits = text.substr(tab1 + 1, tab2 - tab1 - 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), s.retry_at_ms);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  s.message = std::string(text.substr(tab2 + 1));
  return s;
}

// NUL-terminated table names.
Refill LegacyRefill(std::string_view text) {
  Refill r;
  for (size_t at = 0; at < text.size();) {
    const size_t end = text.find('\0', at);
    r.tables.emplace_back(text.substr(at, end - at));
    at = end == std::string_view::npos ? text.size() : end + 1;
  }
  return r;
}

Error Unreadable(const std::string& key, std::string_view what) {
  return Error{ErrorKind::kStorage,
               fmt::format("state dir record {} holds an unreadable {} (written by an older "
                           "pgfanout): cannot upgrade it",
                           key, what)};
}

}  // namespace

Key<LogId> LogIdKey() { return {"log.id"}; }
Key<Source> SourceKey() { return {"source.identity"}; }
Key<TrimMark> TrimmedThroughKey() { return {"log.trimmed_through"}; }
Key<Flag> TrimMarksPerSinkKey() { return {"log.trim_marks_per_sink"}; }
Key<TrimMark> TrimmedPastKey(std::string_view id) { return {SinkKey(id, "trimmed_past")}; }
Key<SinkState> SinkStateKey(std::string_view id) { return {SinkKey(id, "state")}; }
Key<Refill> RefillKey(std::string_view id) { return {SinkKey(id, "refill")}; }
Key<Baseline> BaselineKey(std::string_view id) { return {SinkKey(id, "baseline")}; }
Key<SinkTables> SinkTablesKey(std::string_view id) { return {SinkKey(id, "tables")}; }
Key<BackfillProgress> BackfillProgressKey(std::string_view id) { return {SinkKey(id, "backfill")}; }
Key<BackfillStatus> BackfillStatusKey(std::string_view id) {
  return {SinkKey(id, "backfill_status")};
}
Key<Resnapshot> ResnapshotKey(std::string_view id) { return {SinkKey(id, "resnapshot")}; }
Key<Registry> RegistryKey() { return {"registry.rows"}; }
Key<Signals> SignalsKey() { return {"signals.pending"}; }

std::string Encode(const LogId& r) {
  std::string out = Header<LogId>();
  PutBytes(out, r.id);
  return out;
}
std::string Encode(const Source& r) {
  std::string out = Header<Source>();
  PutBytes(out, r.system_id);
  PutBytes(out, r.slot);
  PutVarint(out, r.timeline);
  return out;
}
std::string Encode(const TrimMark& r) {
  std::string out = Header<TrimMark>();
  PutEventId(out, r.through);
  return out;
}
std::string Encode(const Flag&) { return Header<Flag>(); }
std::string Encode(const SinkState& r) {
  std::string out = Header<SinkState>();
  out.push_back(r.stopped ? 1 : 0);
  PutVarint(out, wire::ZigZag(r.retry_at_ms));
  PutBytes(out, r.message);
  return out;
}
std::string Encode(const Refill& r) {
  std::string out = Header<Refill>();
  PutList(out, r.tables);
  return out;
}
std::string Encode(const Baseline& r) {
  std::string out = Header<Baseline>();
  PutBytes(out, r.token);
  return out;
}
std::string Encode(const SinkTables& r) {
  std::string out = Header<SinkTables>();
  PutList(out, r.tables);
  return out;
}
std::string Encode(const BackfillProgress& r) {
  std::string out = Header<BackfillProgress>();
  PutVarint(out, r.first.value());
  PutEventId(out, r.resume_at);
  PutVarint(out, r.tables.size());
  for (size_t i = 0; i < r.tables.size(); ++i) {
    PutBytes(out, r.tables[i]);
    PutCopyState(out, i < r.states.size() ? r.states[i] : TableCopyState{});
    PutVarint(out, i < r.rows_done.size() ? r.rows_done[i] : 0);
  }
  out.push_back(r.replace ? 1 : 0);
  out.push_back(r.replace && r.replace_begun ? 1 : 0);
  return out;
}
std::string Encode(const BackfillStatus& r) {
  std::string out = Header<BackfillStatus>();
  PutBytes(out, r.line);
  return out;
}
std::string Encode(const Registry& r) {
  std::string out = Header<Registry>();
  PutEventId(out, r.applied);
  PutVarint(out, r.rows.size());
  for (const auto& row : r.rows) {
    PutBytes(out, row.sink_id);
    PutBytes(out, row.template_name);
    PutList(out, row.tenants);
    PutVarint(out, row.params.size());
    for (const auto& [k, v] : row.params) {
      PutBytes(out, k);
      PutBytes(out, v);
    }
    out.push_back(row.enabled ? 1 : 0);
    PutBytes(out, row.error);
  }
  PutList(out, r.dropping);
  return out;
}

std::string Encode(const Resnapshot& r) {
  std::string out = Header<Resnapshot>();
  PutList(out, r.tables);
  out.push_back(r.replace ? 1 : 0);
  PutVarint(out, wire::ZigZag(r.requested_at_ms));
  PutBytes(out, r.origin);
  PutBytes(out, r.where);
  return out;
}

std::string Encode(const Signals& r) {
  std::string out = Header<Signals>();
  PutEventId(out, r.applied);
  PutVarint(out, r.pending.size());
  for (const auto& q : r.pending) {
    PutEventId(out, q.id);
    PutBytes(out, q.sink_id);
    out.push_back(q.table ? 1 : 0);
    if (q.table) PutBytes(out, *q.table);
    out.push_back(q.replace ? 1 : 0);
  }
  return out;
}

Result<void> ForgetSink(EventLog& log, std::string_view sink_id) {
  PGF_TRY(Erase(log, TrimmedPastKey(sink_id)));
  PGF_TRY(Erase(log, SinkStateKey(sink_id)));
  PGF_TRY(Erase(log, RefillKey(sink_id)));
  PGF_TRY(Erase(log, BaselineKey(sink_id)));
  PGF_TRY(Erase(log, SinkTablesKey(sink_id)));
  PGF_TRY(Erase(log, BackfillProgressKey(sink_id)));
  PGF_TRY(Erase(log, BackfillStatusKey(sink_id)));
  PGF_TRY(Erase(log, ResnapshotKey(sink_id)));
  return log.DropCursor(std::string(sink_id));
}

template <class Record>
Result<Record> Decode(std::string_view bytes) {
  Reader r(bytes, Traits<Record>::kName);
  const char* why = nullptr;
  uint8_t version = 0;
  if (!Begin<Record>(r, why, version)) return r.Fail(why);
  if constexpr (OldestVersionOf<Record>() != VersionOf<Record>()) {
    return DecodeFields<Record>(r, version);
  } else {
    return DecodeFields<Record>(r);
  }
}

template Result<LogId> Decode(std::string_view);
template Result<Source> Decode(std::string_view);
template Result<TrimMark> Decode(std::string_view);
template Result<Flag> Decode(std::string_view);
template Result<SinkState> Decode(std::string_view);
template Result<Refill> Decode(std::string_view);
template Result<Baseline> Decode(std::string_view);
template Result<SinkTables> Decode(std::string_view);
template Result<BackfillProgress> Decode(std::string_view);
template Result<BackfillStatus> Decode(std::string_view);
template Result<Registry> Decode(std::string_view);
template Result<Resnapshot> Decode(std::string_view);
template Result<Signals> Decode(std::string_view);

Result<std::map<std::string, std::string>> UpgradeLegacy(
    const std::map<std::string, std::string>& legacy) {
  std::map<std::string, std::string> out;
  Source source;
  bool has_source = false;
  for (const auto& [key, value] : legacy) {
    if (key == "log.id") {
      out[key] = Encode(LogId{value});
    } else if (key == "source.system_id") {
      source.system_id = value;
      has_source = true;
    } else if (key == "source.slot") {
      source.slot = value;
      has_source = true;
    } else if (key == "source.timeline") {
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), source.timeline);
      if (ec != std::errc() || end != value.data() + value.size()) {
        return Unreadable(key, "timeline");
      }
      has_source = true;
    } else if (key == "log.trimmed_through") {
      auto id = EventId::Parse(value);
      if (!id) return Unreadable(key, "event id");
      out[key] = Encode(TrimMark{*id});
    } else if (key == "log.trim_marks_per_sink") {
      if (!value.empty()) out[key] = Encode(Flag{});
    } else if (key.starts_with("sink.") && key.find('.', 5) != std::string::npos) {
      const std::string what = key.substr(key.rfind('.') + 1);
      if (value.empty()) continue;  // erased
      if (what == "trimmed_past") {
        auto id = EventId::Parse(value);
        if (!id) return Unreadable(key, "event id");
        out[key] = Encode(TrimMark{*id});
      } else if (what == "state") {
        if (auto s = LegacySinkState(value)) out[key] = Encode(*s);
      } else if (what == "refill") {
        out[key] = Encode(LegacyRefill(value));
      } else if (what == "baseline") {
        out[key] = Encode(Baseline{value});
      } else if (what == "tables") {
        auto list = LegacyList(value);
        if (!list) return Unreadable(key, "table list");
        out[key] = Encode(SinkTables{std::move(*list)});
      } else if (what == "backfill") {
        auto p = LegacyProgress(value);
        if (!p) return Unreadable(key, "backfill progress");
        out[key] = Encode(*p);
      } else if (what == "backfill_status") {
        out[key] = Encode(BackfillStatus{value});
      } else {
        out[key] = value;
      }
    } else {
      out[key] = value;
    }
  }
  if (has_source) out[SourceKey().name] = Encode(source);
  return out;
}

}  // namespace pgfanout::meta
