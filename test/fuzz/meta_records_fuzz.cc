// Fuzz target: the meta records of the state dir, checkpoints/meta_records.h (see
// checkpoints/KEYS.md). Build and run: test/fuzz/README.md. Seeds: corpus/meta_records/.
//
// A state dir may be damaged, or written by another version; its records decide where
// sinks resume and what a copy still has to do. Asserted:
// - decoding any bytes as any record type never crashes and rejects with kStorage;
// - whatever decodes re-encodes to a value that decodes to the same record, and encoding
//   is stable (encode(decode(encode(r))) == encode(r));
// - a record decodes only as its own type (the tag);
// - UpgradeLegacy of any text under any legacy key never crashes, rejects with kStorage
//   naming the key, and every record it writes decodes as the type its key holds.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "checkpoints/meta_records.h"

namespace {

using namespace pgfanout;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "meta_records_fuzz: %s\n", what);
    std::abort();
  }
}

// Decodes `in` as R; returns whether it did.
template <class R>
bool CheckType(std::string_view in) {
  auto r = meta::Decode<R>(in);
  if (!r) {
    Check(r.error().kind == ErrorKind::kStorage, "a rejection that is not kStorage");
    return false;
  }
  const std::string once = meta::Encode(r.value());
  auto again = meta::Decode<R>(once);
  Check(again.has_value(), "what decoded does not decode after re-encoding");
  Check(again.value() == r.value(), "re-encoding changed the record");
  Check(meta::Encode(again.value()) == once, "encoding is not stable");
  return true;
}

int DecodedAs(std::string_view in) {
  return CheckType<meta::LogId>(in) + CheckType<meta::Source>(in) + CheckType<meta::TrimMark>(in) +
         CheckType<meta::Flag>(in) + CheckType<meta::SinkState>(in) + CheckType<meta::Refill>(in) +
         CheckType<meta::Baseline>(in) + CheckType<meta::SinkTables>(in) +
         CheckType<meta::BackfillProgress>(in) + CheckType<meta::BackfillStatus>(in) +
         CheckType<meta::Registry>(in) + CheckType<meta::Resnapshot>(in) +
         CheckType<meta::Signals>(in);
}

template <class R>
void CheckUpgraded(const std::map<std::string, std::string>& out, const meta::Key<R>& key) {
  auto it = out.find(key.name);
  if (it == out.end()) return;
  Check(meta::Decode<R>(it->second).has_value(), "an upgraded record does not decode");
}

void CheckLegacy(std::string_view in) {
  static const char* const kKeys[] = {"log.id",
                                      "source.system_id",
                                      "source.slot",
                                      "source.timeline",
                                      "log.trimmed_through",
                                      "log.trim_marks_per_sink",
                                      "sink.s.trimmed_past",
                                      "sink.s.state",
                                      "sink.s.refill",
                                      "sink.s.baseline",
                                      "sink.s.tables",
                                      "sink.s.backfill",
                                      "sink.s.backfill_status"};
  if (in.empty()) return;
  const std::string key = kKeys[static_cast<uint8_t>(in[0]) % std::size(kKeys)];
  auto upgraded = meta::UpgradeLegacy({{key, std::string(in.substr(1))}});
  if (!upgraded) {
    Check(upgraded.error().kind == ErrorKind::kStorage, "an upgrade rejection is not kStorage");
    Check(upgraded.error().message.find(key) != std::string::npos,
          "an upgrade rejection does not name the key");
    return;
  }
  const auto& out = upgraded.value();
  CheckUpgraded(out, meta::LogIdKey());
  CheckUpgraded(out, meta::SourceKey());
  CheckUpgraded(out, meta::TrimmedThroughKey());
  CheckUpgraded(out, meta::TrimMarksPerSinkKey());
  CheckUpgraded(out, meta::TrimmedPastKey("s"));
  CheckUpgraded(out, meta::SinkStateKey("s"));
  CheckUpgraded(out, meta::RefillKey("s"));
  CheckUpgraded(out, meta::BaselineKey("s"));
  CheckUpgraded(out, meta::SinkTablesKey("s"));
  CheckUpgraded(out, meta::BackfillProgressKey("s"));
  CheckUpgraded(out, meta::BackfillStatusKey("s"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Check(DecodedAs(in) <= 1, "bytes decode as two record types");
  CheckLegacy(in);
  return 0;
}
