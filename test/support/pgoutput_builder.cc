#include "test/support/pgoutput_builder.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace pgfanout::testing {
namespace {

using pgoutput::MsgType;

// Appends big-endian fields to one message, starting with its type byte.
class Writer {
 public:
  explicit Writer(MsgType type) { out_.push_back(static_cast<char>(type)); }

  Writer& U8(uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  Writer& U16(uint16_t v) { return BigEndian(v, 2); }
  Writer& U32(uint32_t v) { return BigEndian(v, 4); }
  Writer& I32(int32_t v) { return BigEndian(static_cast<uint32_t>(v), 4); }
  Writer& U64(uint64_t v) { return BigEndian(v, 8); }
  Writer& I64(int64_t v) { return BigEndian(static_cast<uint64_t>(v), 8); }
  Writer& CString(std::string_view s) {
    out_.append(s);
    out_.push_back('\0');
    return *this;
  }
  Writer& Counted(std::string_view s) {
    I32(static_cast<int32_t>(s.size()));
    out_.append(s);
    return *this;
  }
  Writer& StreamXid(Xid xid, bool in_stream) { return in_stream ? U32(xid.value) : *this; }
  Writer& Tuple(const pgoutput::Tuple& tuple) {
    U16(static_cast<uint16_t>(tuple.size()));
    for (const Datum& d : tuple) {
      switch (d.kind) {
        case ValueKind::kNull:
          U8('n');
          break;
        case ValueKind::kUnchangedToast:
          U8('u');
          break;
        case ValueKind::kText:
          U8('t').Counted(d.text);
          break;
      }
    }
    return *this;
  }

  std::string Take() { return std::move(out_); }

 private:
  Writer& BigEndian(uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }

  std::string out_;
};

}  // namespace

std::string Encode(const pgoutput::Begin& m) {
  return Writer(MsgType::kBegin)
      .U64(m.final_lsn.value())
      .I64(m.commit_time)
      .U32(m.xid.value)
      .Take();
}

std::string Encode(const pgoutput::Commit& m) {
  return Writer(MsgType::kCommit)
      .U8(m.flags)
      .U64(m.commit_lsn.value())
      .U64(m.end_lsn.value())
      .I64(m.commit_time)
      .Take();
}

std::string Encode(const pgoutput::Origin& m) {
  return Writer(MsgType::kOrigin).U64(m.commit_lsn.value()).CString(m.name).Take();
}

std::string Encode(const pgoutput::Relation& m, bool in_stream) {
  Writer w(MsgType::kRelation);
  w.StreamXid(m.xid, in_stream)
      .U32(m.relation_id.value)
      .CString(m.namespace_name)
      .CString(m.relation_name)
      .U8(static_cast<uint8_t>(m.replica_identity))
      .U16(static_cast<uint16_t>(m.columns.size()));
  for (const pgoutput::RelationColumn& col : m.columns) {
    w.U8(col.flags).CString(col.name).U32(col.type_oid).I32(col.type_modifier);
  }
  return w.Take();
}

std::string Encode(const pgoutput::Type& m, bool in_stream) {
  return Writer(MsgType::kType)
      .StreamXid(m.xid, in_stream)
      .U32(m.type_oid)
      .CString(m.namespace_name)
      .CString(m.type_name)
      .Take();
}

std::string Encode(const pgoutput::Insert& m, bool in_stream) {
  return Writer(MsgType::kInsert)
      .StreamXid(m.xid, in_stream)
      .U32(m.relation_id.value)
      .U8('N')
      .Tuple(m.new_tuple)
      .Take();
}

std::string Encode(const pgoutput::Update& m, bool in_stream) {
  Writer w(MsgType::kUpdate);
  w.StreamXid(m.xid, in_stream).U32(m.relation_id.value);
  if (m.old_kind != 0) w.U8(static_cast<uint8_t>(m.old_kind)).Tuple(m.old_tuple);
  return w.U8('N').Tuple(m.new_tuple).Take();
}

std::string Encode(const pgoutput::Delete& m, bool in_stream) {
  return Writer(MsgType::kDelete)
      .StreamXid(m.xid, in_stream)
      .U32(m.relation_id.value)
      .U8(static_cast<uint8_t>(m.old_kind))
      .Tuple(m.old_tuple)
      .Take();
}

std::string Encode(const pgoutput::Truncate& m, bool in_stream) {
  Writer w(MsgType::kTruncate);
  w.StreamXid(m.xid, in_stream).I32(static_cast<int32_t>(m.relation_ids.size())).U8(m.options);
  for (RelationId id : m.relation_ids) w.U32(id.value);
  return w.Take();
}

std::string Encode(const pgoutput::LogicalMessage& m, bool in_stream) {
  return Writer(MsgType::kMessage)
      .StreamXid(m.xid, in_stream)
      .U8(m.transactional ? 1 : 0)
      .U64(m.lsn.value())
      .CString(m.prefix)
      .Counted(m.content)
      .Take();
}

std::string Encode(const pgoutput::StreamStart& m) {
  return Writer(MsgType::kStreamStart).U32(m.xid.value).U8(m.first_segment ? 1 : 0).Take();
}

std::string Encode(const pgoutput::StreamStop&) { return Writer(MsgType::kStreamStop).Take(); }

std::string Encode(const pgoutput::StreamCommit& m) {
  return Writer(MsgType::kStreamCommit)
      .U32(m.xid.value)
      .U8(m.flags)
      .U64(m.commit_lsn.value())
      .U64(m.end_lsn.value())
      .I64(m.commit_time)
      .Take();
}

std::string Encode(const pgoutput::StreamAbort& m) {
  return Writer(MsgType::kStreamAbort).U32(m.xid.value).U32(m.subxid.value).Take();
}

std::string Encode(const pgoutput::Message& m, bool in_stream) {
  return std::visit(
      [in_stream](const auto& msg) -> std::string {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, pgoutput::Relation> || std::is_same_v<T, pgoutput::Type> ||
                      std::is_same_v<T, pgoutput::Insert> || std::is_same_v<T, pgoutput::Update> ||
                      std::is_same_v<T, pgoutput::Delete> ||
                      std::is_same_v<T, pgoutput::Truncate> ||
                      std::is_same_v<T, pgoutput::LogicalMessage>) {
          return Encode(msg, in_stream);
        } else {
          return Encode(msg);
        }
      },
      m);
}

Datum Text(std::string_view text) {
  return Datum{.kind = ValueKind::kText, .text = std::string(text)};
}
Datum Null() { return Datum{.kind = ValueKind::kNull, .text = {}}; }
Datum UnchangedToast() { return Datum{.kind = ValueKind::kUnchangedToast, .text = {}}; }

pgoutput::Tuple TextTuple(std::initializer_list<std::string_view> values) {
  pgoutput::Tuple tuple;
  tuple.reserve(values.size());
  for (std::string_view v : values) tuple.push_back(Text(v));
  return tuple;
}

}  // namespace pgfanout::testing
