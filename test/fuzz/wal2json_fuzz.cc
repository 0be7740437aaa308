// Fuzz target: the wal2json reader, decoders/wal2json/reader.h. Build and run: see
// test/fuzz/README.md (`./dev fuzz`). Seeds: corpus/wal2json/, transactions captured from
// PostgreSQL 15 with wal2json 2.5 by test/unit/decoders/capture_wal2json.sh.
//
// The input is split at newlines into documents, fed in order to one reader that knows one
// table from a hint; after a rejection the reader is Reset() and goes on with the next
// line. Besides "never crashes" (and the sanitizers), it asserts:
// - a rejection is kDecode and names wal2json, as the reader's contract says;
// - what the reader accepts the assembler would too: changes only inside Begin ... Commit
//   or Stream Start ... Stop, each after a Relation for its table, with tuples of exactly
//   that Relation's columns;
// - every message it produces is one pgoutput can carry: encoded (test/support) and
//   decoded again, it comes back the same bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string_view>
#include <vector>

#include "decoders/pgoutput/reader.h"
#include "decoders/wal2json/reader.h"
#include "test/support/pgoutput_builder.h"

namespace {

using namespace pgfanout;

wal2json::ReaderOptions Options() {
  wal2json::TableHint hint{.schema = "public", .table = "users", .relation_id = 16384};
  hint.columns = {
      {.attnum = 1, .name = "id", .type_oid = 23, .type_text = "integer", .in_primary_key = true},
      {.attnum = 2, .name = "name", .type_oid = 25, .type_text = "text"},
      {.attnum = 3, .name = "bio", .type_oid = 25, .type_text = "text"}};
  // Small, so that inputs reach the streamed path too.
  return wal2json::ReaderOptions{.tables = {hint}, .stream_threshold_bytes = 2048};
}

// Follows the framing and the Relations as the assembler would, aborting on a violation.
class Checker {
 public:
  void Reset() {
    in_tx_ = false;
    in_stream_ = false;
  }

  void Check(const pgoutput::Message& m) {
    using namespace pgoutput;
    if (std::holds_alternative<Begin>(m)) {
      Expect(!in_tx_ && !in_stream_);
      in_tx_ = true;
    }
    if (std::holds_alternative<Commit>(m)) {
      Expect(in_tx_);
      in_tx_ = false;
    }
    if (std::holds_alternative<StreamStart>(m)) {
      Expect(!in_tx_ && !in_stream_);
      in_stream_ = true;
    }
    if (std::holds_alternative<StreamStop>(m)) {
      Expect(in_stream_);
      in_stream_ = false;
    }
    if (std::holds_alternative<StreamCommit>(m)) Expect(!in_tx_ && !in_stream_);
    if (auto* r = std::get_if<Relation>(&m)) columns_[r->relation_id.value] = r->columns.size();
    auto tuple = [&](uint32_t relation, const Tuple& t, bool may_be_empty) {
      Expect(in_tx_ || in_stream_);
      auto it = columns_.find(relation);
      Expect(it != columns_.end());
      Expect((may_be_empty && t.empty()) || t.size() == it->second);
    };
    if (auto* i = std::get_if<Insert>(&m)) tuple(i->relation_id.value, i->new_tuple, false);
    if (auto* u = std::get_if<Update>(&m)) {
      tuple(u->relation_id.value, u->new_tuple, false);
      tuple(u->relation_id.value, u->old_tuple, u->old_kind == 0);
    }
    if (auto* d = std::get_if<Delete>(&m)) tuple(d->relation_id.value, d->old_tuple, false);
    if (auto* t = std::get_if<Truncate>(&m)) {
      for (RelationId id : t->relation_ids) tuple(id.value, {}, true);
    }
    // pgoutput could carry it: it survives encoding and decoding unchanged.
    std::string bytes = testing::Encode(m, in_stream_);
    auto back = pgoutput::Decode(bytes, in_stream_);
    Expect(back.has_value() && testing::Encode(back.value(), in_stream_) == bytes);
  }

 private:
  static void Expect(bool ok) {
    if (!ok) std::abort();
  }
  bool in_tx_ = false;
  bool in_stream_ = false;
  std::map<uint32_t, size_t> columns_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const wal2json::ReaderOptions options = Options();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  wal2json::Reader reader(options);
  Checker checker;
  std::vector<pgoutput::Message> out;
  while (!input.empty()) {
    size_t end = input.find('\n');
    std::string_view doc = input.substr(0, end);
    input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
    out.clear();
    auto r = reader.Decode(doc, out);
    if (!r) {
      if (r.error().kind != ErrorKind::kDecode) std::abort();
      if (r.error().message.rfind("wal2json", 0) != 0) std::abort();
      reader.Reset();
      checker.Reset();
      continue;
    }
    for (const auto& m : out) checker.Check(m);
  }
  return 0;
}
