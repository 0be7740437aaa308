#include "decoders/pgoutput/reader.h"

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace pgfanout::pgoutput {
namespace {

using boost::outcome_v2::failure;
using boost::outcome_v2::success;

const char* TypeName(MsgType type) {
  switch (type) {
    case MsgType::kBegin:
      return "Begin";
    case MsgType::kMessage:
      return "Message";
    case MsgType::kCommit:
      return "Commit";
    case MsgType::kOrigin:
      return "Origin";
    case MsgType::kRelation:
      return "Relation";
    case MsgType::kType:
      return "Type";
    case MsgType::kInsert:
      return "Insert";
    case MsgType::kUpdate:
      return "Update";
    case MsgType::kDelete:
      return "Delete";
    case MsgType::kTruncate:
      return "Truncate";
    case MsgType::kStreamStart:
      return "Stream Start";
    case MsgType::kStreamStop:
      return "Stream Stop";
    case MsgType::kStreamCommit:
      return "Stream Commit";
    case MsgType::kStreamAbort:
      return "Stream Abort";
  }
  return "Unknown";
}

// A wire byte as people read it: 'X' when printable ASCII, else 0x05.
std::string ByteText(uint8_t byte) {
  if (byte >= 0x20 && byte < 0x7f) return fmt::format("'{}'", static_cast<char>(byte));
  return fmt::format("0x{:02X}", byte);
}

// Bounds-checked, big-endian reads over one message. The type byte at offset 0 has
// already been consumed. Every failure is a kDecode error naming the message type and
// the offset of the field that failed.
class Cursor {
 public:
  Cursor(std::string_view bytes, MsgType type) : bytes_(bytes), type_(type) {}

  size_t offset() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }
  bool Has(size_t n) const { return n <= remaining(); }

  // Error paths are out of line and cold (so branches to them are predicted not taken)
  // to keep the checks small and inlined.
  [[gnu::cold, gnu::noinline]] Error Fail(size_t at, std::string_view what) const {
    return Error{ErrorKind::kDecode,
                 fmt::format("pgoutput {} ('{}') at offset {}: {}", TypeName(type_),
                             static_cast<char>(type_), at, what)};
  }
  [[gnu::cold, gnu::noinline]] Error Shortfall(size_t n) const {
    return Fail(pos_, fmt::format("needs {} bytes, {} left", n, remaining()));
  }

  // Fails, naming the shortfall, unless `n` more bytes are available.
  Result<void> Need(size_t n) const {
    if (!Has(n)) return failure(Shortfall(n));
    return success();
  }

  Result<uint8_t> U8() { return Checked<uint8_t>(); }
  Result<uint16_t> U16() { return Checked<uint16_t>(); }
  Result<uint32_t> U32() { return Checked<uint32_t>(); }
  Result<int32_t> I32() { return Checked<int32_t>(); }
  Result<uint64_t> U64() { return Checked<uint64_t>(); }
  Result<int64_t> I64() { return Checked<int64_t>(); }

  // A view of the next `n` bytes; it aliases the input.
  Result<std::string_view> Bytes(size_t n) {
    if (!Has(n)) return failure(Shortfall(n));
    return UncheckedBytes(n);
  }

  // A NUL-terminated string (Postgres "String"); the NUL is consumed, not returned.
  Result<std::string_view> CString() {
    size_t nul = bytes_.find('\0', pos_);
    if (nul == std::string_view::npos) {
      return failure(
          Fail(pos_, fmt::format("string has no terminating NUL ({} bytes left)", remaining())));
    }
    std::string_view out = bytes_.substr(pos_, nul - pos_);
    pos_ = nul + 1;
    return out;
  }

  Result<void> ExpectEnd() const {
    if (remaining() == 0) return success();
    return failure(
        Fail(pos_, fmt::format("{} trailing byte{}", remaining(), remaining() == 1 ? "" : "s")));
  }

  // Unchecked reads, for hot loops that checked Has() themselves.
  template <class T>
  T Unchecked() {
    uint64_t value = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      value = (value << 8) | static_cast<uint8_t>(bytes_[pos_ + i]);
    }
    pos_ += sizeof(T);
    return static_cast<T>(value);  // modular: the wire's two's complement for signed T
  }
  std::string_view UncheckedBytes(size_t n) {
    std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

 private:
  template <class T>
  Result<T> Checked() {
    if (!Has(sizeof(T))) return failure(Shortfall(sizeof(T)));
    return Unchecked<T>();
  }

  std::string_view bytes_;
  size_t pos_ = 1;
  MsgType type_;
};

// Protocol v2 puts the transaction id right after the type byte of some messages when
// they arrive inside a streamed block.
Result<Xid> ReadStreamXid(Cursor& c, bool in_stream) {
  if (!in_stream) return Xid{};
  PGF_TRY(auto xid, c.U32());
  return Xid{xid};
}

// Int32 length then that many bytes; a negative length is an error.
Result<std::string_view> ReadCounted(Cursor& c) {
  size_t at = c.offset();
  PGF_TRY(auto length, c.I32());
  if (length < 0) return failure(c.Fail(at, fmt::format("negative length {}", length)));
  return c.Bytes(static_cast<size_t>(length));
}

// TupleData: Int16 column count, then per column a kind byte and maybe a value. The
// column loop is the hot path of the whole decoder, so it checks bounds itself and reads
// unchecked rather than paying for a Result per field.
Result<Tuple> ReadTuple(Cursor& c) {
  PGF_TRY(auto count, c.U16());
  // Every column takes at least its kind byte; checking first bounds the reservation.
  PGF_TRY(c.Need(count));
  Tuple tuple;
  tuple.reserve(count);
  for (uint16_t i = 0; i < count; ++i) {
    if (!c.Has(1)) return failure(c.Shortfall(1));
    size_t at = c.offset();
    auto kind = c.Unchecked<uint8_t>();
    switch (kind) {
      case 'n':
        tuple.emplace_back().kind = ValueKind::kNull;
        break;
      case 'u':
        tuple.emplace_back().kind = ValueKind::kUnchangedToast;
        break;
      case 't': {
        if (!c.Has(4)) return failure(c.Shortfall(4));
        size_t length_at = c.offset();
        auto length = c.Unchecked<int32_t>();
        if (length < 0) {
          return failure(c.Fail(length_at, fmt::format("negative length {}", length)));
        }
        if (!c.Has(static_cast<size_t>(length))) {
          return failure(c.Shortfall(static_cast<size_t>(length)));
        }
        Datum& datum = tuple.emplace_back();
        datum.kind = ValueKind::kText;
        datum.text.assign(c.UncheckedBytes(static_cast<size_t>(length)));
        break;
      }
      case 'b':
        return failure(c.Fail(at,
                              "binary column data ('b') is not supported; pgfanout "
                              "never requests binary mode"));
      default:
        return failure(c.Fail(at, fmt::format("unknown tuple kind {}", ByteText(kind))));
    }
  }
  return tuple;
}

Result<Begin> ReadBegin(Cursor& c) {
  Begin m;
  PGF_TRY(auto final_lsn, c.U64());
  PGF_TRY(auto commit_time, c.I64());
  PGF_TRY(auto xid, c.U32());
  m.final_lsn = Lsn(final_lsn);
  m.commit_time = commit_time;
  m.xid = Xid{xid};
  return m;
}

Result<Commit> ReadCommit(Cursor& c) {
  Commit m;
  size_t at = c.offset();
  PGF_TRY(auto flags, c.U8());
  if (flags != 0) {
    return failure(c.Fail(at, fmt::format("unknown commit flags 0x{:02X} (must be 0)", flags)));
  }
  PGF_TRY(auto commit_lsn, c.U64());
  PGF_TRY(auto end_lsn, c.U64());
  PGF_TRY(auto commit_time, c.I64());
  m.flags = flags;
  m.commit_lsn = Lsn(commit_lsn);
  m.end_lsn = Lsn(end_lsn);
  m.commit_time = commit_time;
  return m;
}

Result<Origin> ReadOrigin(Cursor& c) {
  Origin m;
  PGF_TRY(auto commit_lsn, c.U64());
  PGF_TRY(auto name, c.CString());
  m.commit_lsn = Lsn(commit_lsn);
  m.name = std::string(name);
  return m;
}

Result<Relation> ReadRelation(Cursor& c, bool in_stream) {
  Relation m;
  PGF_TRY(auto xid, ReadStreamXid(c, in_stream));
  PGF_TRY(auto relation_id, c.U32());
  PGF_TRY(auto namespace_name, c.CString());
  PGF_TRY(auto relation_name, c.CString());
  size_t identity_at = c.offset();
  PGF_TRY(auto identity, c.U8());
  if (identity != 'd' && identity != 'n' && identity != 'f' && identity != 'i') {
    return failure(
        c.Fail(identity_at, fmt::format("unknown replica identity {}", ByteText(identity))));
  }
  PGF_TRY(auto count, c.U16());
  // A column is at least flags (1), an empty name (1), type oid (4) and modifier (4).
  constexpr size_t kMinColumnBytes = 10;
  PGF_TRY(c.Need(size_t{count} * kMinColumnBytes));
  m.xid = xid;
  m.relation_id = RelationId{relation_id};
  m.namespace_name = std::string(namespace_name);
  m.relation_name = std::string(relation_name);
  m.replica_identity = static_cast<char>(identity);
  m.columns.reserve(count);
  for (uint16_t i = 0; i < count; ++i) {
    size_t flags_at = c.offset();
    PGF_TRY(auto flags, c.U8());
    if ((flags & ~1u) != 0) {
      return failure(
          c.Fail(flags_at, fmt::format("unknown column flags 0x{:02X} (only 1 = key)", flags)));
    }
    PGF_TRY(auto name, c.CString());
    PGF_TRY(auto type_oid, c.U32());
    PGF_TRY(auto type_modifier, c.I32());
    m.columns.push_back(RelationColumn{.flags = flags,
                                       .name = std::string(name),
                                       .type_oid = type_oid,
                                       .type_modifier = type_modifier});
  }
  return m;
}

Result<Type> ReadType(Cursor& c, bool in_stream) {
  Type m;
  PGF_TRY(auto xid, ReadStreamXid(c, in_stream));
  PGF_TRY(auto type_oid, c.U32());
  PGF_TRY(auto namespace_name, c.CString());
  PGF_TRY(auto type_name, c.CString());
  m.xid = xid;
  m.type_oid = type_oid;
  m.namespace_name = std::string(namespace_name);
  m.type_name = std::string(type_name);
  return m;
}

Result<Insert> ReadInsert(Cursor& c, bool in_stream) {
  Insert m;
  PGF_TRY(auto xid, ReadStreamXid(c, in_stream));
  PGF_TRY(auto relation_id, c.U32());
  size_t marker_at = c.offset();
  PGF_TRY(auto marker, c.U8());
  if (marker != 'N') {
    return failure(
        c.Fail(marker_at, fmt::format("unknown tuple marker {} (expected 'N')", ByteText(marker))));
  }
  PGF_TRY(auto tuple, ReadTuple(c));
  m.xid = xid;
  m.relation_id = RelationId{relation_id};
  m.new_tuple = std::move(tuple);
  return m;
}

Result<Update> ReadUpdate(Cursor& c, bool in_stream) {
  Update m;
  PGF_TRY(auto xid, ReadStreamXid(c, in_stream));
  PGF_TRY(auto relation_id, c.U32());
  m.xid = xid;
  m.relation_id = RelationId{relation_id};
  size_t marker_at = c.offset();
  PGF_TRY(auto marker, c.U8());
  if (marker == 'K' || marker == 'O') {
    m.old_kind = static_cast<char>(marker);
    PGF_TRY(auto old_tuple, ReadTuple(c));
    m.old_tuple = std::move(old_tuple);
    marker_at = c.offset();
    PGF_TRY(auto new_marker, c.U8());
    if (new_marker != 'N') {
      return failure(c.Fail(
          marker_at, fmt::format("unknown tuple marker {} (expected 'N')", ByteText(new_marker))));
    }
  } else if (marker != 'N') {
    return failure(c.Fail(marker_at, fmt::format("unknown tuple marker {} (expected 'K', "
                                                 "'O' or 'N')",
                                                 ByteText(marker))));
  }
  PGF_TRY(auto new_tuple, ReadTuple(c));
  m.new_tuple = std::move(new_tuple);
  return m;
}

Result<Delete> ReadDelete(Cursor& c, bool in_stream) {
  Delete m;
  PGF_TRY(auto xid, ReadStreamXid(c, in_stream));
  PGF_TRY(auto relation_id, c.U32());
  size_t marker_at = c.offset();
  PGF_TRY(auto marker, c.U8());
  if (marker != 'K' && marker != 'O') {
    return failure(c.Fail(marker_at, fmt::format("unknown tuple marker {} (expected 'K' or "
                                                 "'O')",
                                                 ByteText(marker))));
  }
  PGF_TRY(auto tuple, ReadTuple(c));
  m.xid = xid;
  m.relation_id = RelationId{relation_id};
  m.old_kind = static_cast<char>(marker);
  m.old_tuple = std::move(tuple);
  return m;
}

Result<Truncate> ReadTruncate(Cursor& c, bool in_stream) {
  Truncate m;
  PGF_TRY(auto xid, ReadStreamXid(c, in_stream));
  size_t count_at = c.offset();
  PGF_TRY(auto count, c.I32());
  if (count < 0) {
    return failure(c.Fail(count_at, fmt::format("negative relation count {}", count)));
  }
  size_t options_at = c.offset();
  PGF_TRY(auto options, c.U8());
  if ((options & ~(kTruncateCascade | kTruncateRestartIdentity)) != 0) {
    return failure(c.Fail(options_at, fmt::format("unknown truncate options 0x{:02X} (only "
                                                  "1 = CASCADE, 2 = RESTART IDENTITY)",
                                                  options)));
  }
  PGF_TRY(c.Need(static_cast<size_t>(count) * 4));
  m.xid = xid;
  m.options = options;
  m.relation_ids.reserve(static_cast<size_t>(count));
  for (int32_t i = 0; i < count; ++i) {
    PGF_TRY(auto relation_id, c.U32());
    m.relation_ids.push_back(RelationId{relation_id});
  }
  return m;
}

Result<LogicalMessage> ReadLogicalMessage(Cursor& c, bool in_stream) {
  LogicalMessage m;
  PGF_TRY(auto xid, ReadStreamXid(c, in_stream));
  size_t flags_at = c.offset();
  PGF_TRY(auto flags, c.U8());
  if ((flags & ~1u) != 0) {
    return failure(c.Fail(
        flags_at, fmt::format("unknown message flags 0x{:02X} (only 1 = transactional)", flags)));
  }
  PGF_TRY(auto lsn, c.U64());
  PGF_TRY(auto prefix, c.CString());
  PGF_TRY(auto content, ReadCounted(c));
  m.xid = xid;
  m.transactional = (flags & 1) != 0;
  m.lsn = Lsn(lsn);
  m.prefix = std::string(prefix);
  m.content = std::string(content);
  return m;
}

Result<StreamStart> ReadStreamStart(Cursor& c) {
  StreamStart m;
  PGF_TRY(auto xid, c.U32());
  size_t first_at = c.offset();
  PGF_TRY(auto first, c.U8());
  if (first > 1) {
    return failure(c.Fail(
        first_at, fmt::format("unknown first-segment value 0x{:02X} (must be 0 or 1)", first)));
  }
  m.xid = Xid{xid};
  m.first_segment = first == 1;
  return m;
}

Result<StreamCommit> ReadStreamCommit(Cursor& c) {
  StreamCommit m;
  PGF_TRY(auto xid, c.U32());
  size_t flags_at = c.offset();
  PGF_TRY(auto flags, c.U8());
  if (flags != 0) {
    return failure(
        c.Fail(flags_at, fmt::format("unknown stream commit flags 0x{:02X} (must be 0)", flags)));
  }
  PGF_TRY(auto commit_lsn, c.U64());
  PGF_TRY(auto end_lsn, c.U64());
  PGF_TRY(auto commit_time, c.I64());
  m.xid = Xid{xid};
  m.flags = flags;
  m.commit_lsn = Lsn(commit_lsn);
  m.end_lsn = Lsn(end_lsn);
  m.commit_time = commit_time;
  return m;
}

Result<StreamAbort> ReadStreamAbort(Cursor& c) {
  StreamAbort m;
  PGF_TRY(auto xid, c.U32());
  PGF_TRY(auto subxid, c.U32());
  m.xid = Xid{xid};
  m.subxid = Xid{subxid};
  return m;
}

// Checks that the whole message was consumed, then wraps it.
template <class T>
Result<Message> Finish(const Cursor& c, Result<T> read) {
  if (!read) return failure(std::move(read).error());
  PGF_TRY(c.ExpectEnd());
  return Message(std::in_place_type<T>, std::move(read).value());
}

}  // namespace

Result<Message> Decode(std::string_view bytes, bool in_stream) {
  if (bytes.empty()) return failure(Error{ErrorKind::kDecode, "pgoutput: empty message"});
  auto type = static_cast<MsgType>(bytes[0]);
  Cursor c(bytes, type);
  switch (type) {
    case MsgType::kBegin:
      return Finish(c, ReadBegin(c));
    case MsgType::kCommit:
      return Finish(c, ReadCommit(c));
    case MsgType::kOrigin:
      return Finish(c, ReadOrigin(c));
    case MsgType::kRelation:
      return Finish(c, ReadRelation(c, in_stream));
    case MsgType::kType:
      return Finish(c, ReadType(c, in_stream));
    case MsgType::kInsert:
      return Finish(c, ReadInsert(c, in_stream));
    case MsgType::kUpdate:
      return Finish(c, ReadUpdate(c, in_stream));
    case MsgType::kDelete:
      return Finish(c, ReadDelete(c, in_stream));
    case MsgType::kTruncate:
      return Finish(c, ReadTruncate(c, in_stream));
    case MsgType::kMessage:
      return Finish(c, ReadLogicalMessage(c, in_stream));
    case MsgType::kStreamStart:
      return Finish(c, ReadStreamStart(c));
    case MsgType::kStreamStop:
      return Finish(c, Result<StreamStop>(StreamStop{}));
    case MsgType::kStreamCommit:
      return Finish(c, ReadStreamCommit(c));
    case MsgType::kStreamAbort:
      return Finish(c, ReadStreamAbort(c));
  }
  return failure(
      Error{ErrorKind::kDecode, fmt::format("pgoutput: unknown message type {} at offset 0",
                                            ByteText(static_cast<uint8_t>(bytes[0])))});
}

}  // namespace pgfanout::pgoutput
