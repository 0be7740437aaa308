// Fuzz target: the binary encoding of events and schemas, checkpoints/event_codec.h (layout
// in checkpoints/KEYS.md). Build and run: test/fuzz/README.md. Seeds: corpus/event_codec/,
// written by gen_event_codec_seeds.cc.
//
// Each input is used three ways:
// - decoded as an event and as a schema (what a corrupt state dir would give): never
//   crashes, a rejection is kStorage; DecodeEvent leaves id and table alone, and decoding
//   into a reused event gives what decoding into a fresh one gives.
// - what decodes re-encodes canonically: the encoding decodes to the same value, and it
//   is the input itself unless the input spelled a varint with more bytes than needed
//   (the decoder accepts those; then the encoding is shorter).
// - read as a recipe for an event and a schema (any field values, empty and long rows,
//   every datum kind): decode(encode(x)) == x.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "checkpoints/event_codec.h"

namespace {

using namespace pgfanout;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "event_codec_fuzz: %s\n", what);
    std::abort();
  }
}

// Every field the codec carries (not id and table, which live elsewhere).
bool SameEncodedFields(const ChangeEvent& a, const ChangeEvent& b) {
  return a.xid == b.xid && a.commit_time_us == b.commit_time_us && a.op == b.op &&
         a.tenant == b.tenant && a.new_row == b.new_row && a.old_row == b.old_row &&
         a.old_is_key_only == b.old_is_key_only && a.truncate_flags == b.truncate_flags;
}

const EventId kSentinelId{Lsn(0xfeedface), 77};

// An event that already holds values, as one reused across decodes would.
ChangeEvent UsedEvent(const std::shared_ptr<const TableSchema>& table) {
  return ChangeEvent{.id = kSentinelId,
                     .xid = Xid{9},
                     .commit_time_us = -5,
                     .op = Op::kUpdate,
                     .table = table,
                     .tenant = "acme",
                     .new_row = {Datum{ValueKind::kText, "x"}, Datum{}, Datum{}},
                     .old_row = {Datum{ValueKind::kUnchangedToast, ""}},
                     .old_is_key_only = true,
                     .truncate_flags = 3};
}

void CheckDecodeEvent(std::string_view in) {
  auto table = std::make_shared<const TableSchema>();
  ChangeEvent fresh{.id = kSentinelId, .table = table};
  auto fp = DecodeEvent(in, fresh);
  Check(fresh.id == kSentinelId && fresh.table == table, "DecodeEvent touched id or table");
  ChangeEvent reused = UsedEvent(table);
  auto fp_reused = DecodeEvent(in, reused);
  Check(reused.id == kSentinelId && reused.table == table, "DecodeEvent touched id or table");
  Check(fp.has_value() == fp_reused.has_value(), "decoding into a used event differs");
  if (!fp) {
    Check(fp.error().kind == ErrorKind::kStorage, "DecodeEvent error kind is not kStorage");
    return;
  }
  Check(fp.value() == fp_reused.value() && SameEncodedFields(fresh, reused),
        "decoding into a used event differs");

  std::string again;
  EncodeEvent(fresh, fp.value(), again);
  Check(again == in || again.size() < in.size(), "re-encoding is not canonical");
  ChangeEvent back;
  auto fp_back = DecodeEvent(again, back);
  Check(fp_back.has_value() && fp_back.value() == fp.value() && SameEncodedFields(back, fresh),
        "re-encoded event decodes differently");
}

void CheckDecodeSchema(std::string_view in) {
  auto schema = DecodeSchema(in);
  if (!schema) {
    Check(schema.error().kind == ErrorKind::kStorage, "DecodeSchema error kind is not kStorage");
    return;
  }
  std::string again;
  EncodeSchema(schema.value(), again);
  Check(again == in || again.size() < in.size(), "re-encoding a schema is not canonical");
  auto back = DecodeSchema(again);
  Check(back.has_value() && back.value() == schema.value(),
        "re-encoded schema decodes differently");
  Check(back.value().Fingerprint() == schema.value().Fingerprint(), "fingerprint is not stable");
}

// Reads the input as a recipe; zeros once it runs out.
class Recipe {
 public:
  explicit Recipe(std::string_view in) : in_(in) {}
  uint8_t Byte() { return at_ < in_.size() ? static_cast<uint8_t>(in_[at_++]) : 0; }
  uint64_t Number(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | Byte();
    return v;
  }
  std::string Text() {
    size_t n = Byte();
    if (n == 255) n = Number(2);  // now and then a long one
    std::string out;
    for (size_t i = 0; i < n && at_ < in_.size(); ++i) out += static_cast<char>(Byte());
    return out;
  }
  std::vector<Datum> Row() {
    std::vector<Datum> row(Byte() % 9);
    for (Datum& d : row) {
      d.kind = static_cast<ValueKind>(Byte() % 3);
      if (d.kind == ValueKind::kText) d.text = Text();
    }
    return row;
  }

 private:
  std::string_view in_;
  size_t at_ = 0;
};

void CheckRoundTrip(std::string_view in) {
  Recipe r(in);
  constexpr Op kOps[] = {Op::kInsert, Op::kUpdate, Op::kDelete, Op::kTruncate};
  ChangeEvent event;
  event.op = kOps[r.Byte() % 4];
  uint8_t flags = r.Byte();
  event.old_is_key_only = flags & 1;
  event.truncate_flags = r.Byte();
  event.xid = Xid{static_cast<uint32_t>(r.Number(4))};
  event.commit_time_us = static_cast<int64_t>(r.Number(8));
  uint64_t fingerprint = r.Number(8);
  if (flags & 2) event.tenant = r.Text();
  event.new_row = r.Row();
  event.old_row = r.Row();
  std::string bytes;
  EncodeEvent(event, fingerprint, bytes);
  ChangeEvent back;
  auto fp = DecodeEvent(bytes, back);
  Check(fp.has_value() && fp.value() == fingerprint && SameEncodedFields(back, event),
        "decode(encode(event)) != event");

  TableSchema schema;
  schema.relation_id = RelationId{static_cast<uint32_t>(r.Number(4))};
  schema.schema_name = r.Text();
  schema.table_name = r.Text();
  schema.replica_identity = static_cast<char>(r.Byte());
  schema.columns.resize(r.Byte() % 6);
  for (ColumnSchema& c : schema.columns) {
    c.name = r.Text();
    c.type_oid = static_cast<uint32_t>(r.Number(4));
    c.type_modifier = static_cast<int32_t>(static_cast<uint32_t>(r.Number(4)));
    c.part_of_key = r.Byte() & 1;
  }
  std::string schema_bytes;
  EncodeSchema(schema, schema_bytes);
  auto schema_back = DecodeSchema(schema_bytes);
  Check(schema_back.has_value() && schema_back.value() == schema,
        "decode(encode(schema)) != schema");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckDecodeEvent(in);
  CheckDecodeSchema(in);
  CheckRoundTrip(in);
  return 0;
}
