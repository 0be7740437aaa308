#pragma once

// Helpers shared by the pgoutput decoder tests.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "decoders/pgoutput/reader.h"
#include "test/support/pgoutput_builder.h"

namespace pgfanout {

// Readable failure output for the core value types (found by ADL).
inline void PrintTo(const Lsn& lsn, std::ostream* os) { *os << lsn.ToString(); }
inline void PrintTo(const Xid& xid, std::ostream* os) { *os << "xid " << xid.value; }
inline void PrintTo(const RelationId& id, std::ostream* os) { *os << "relation " << id.value; }
inline void PrintTo(const Datum& d, std::ostream* os) {
  switch (d.kind) {
    case ValueKind::kNull:
      *os << "NULL";
      break;
    case ValueKind::kUnchangedToast:
      *os << "<unchanged toast>";
      break;
    case ValueKind::kText:
      *os << '"' << d.text << '"';
      break;
  }
}

namespace pgoutput::testutil {

using ::pgfanout::testing::Encode;

// Every field of a message, so EXPECT_EQ compares (and prints) them all.
inline auto Fields(const Begin& m) { return std::tie(m.final_lsn, m.commit_time, m.xid); }
inline auto Fields(const Commit& m) {
  return std::tie(m.flags, m.commit_lsn, m.end_lsn, m.commit_time);
}
inline auto Fields(const Origin& m) { return std::tie(m.commit_lsn, m.name); }
inline auto Fields(const Relation& m) {
  std::vector<std::tuple<uint8_t, std::string, uint32_t, int32_t>> columns;
  for (const RelationColumn& c : m.columns) {
    columns.emplace_back(c.flags, c.name, c.type_oid, c.type_modifier);
  }
  return std::make_tuple(m.xid, m.relation_id, m.namespace_name, m.relation_name,
                         m.replica_identity, columns);
}
inline auto Fields(const Type& m) {
  return std::tie(m.xid, m.type_oid, m.namespace_name, m.type_name);
}
inline auto Fields(const Insert& m) { return std::tie(m.xid, m.relation_id, m.new_tuple); }
inline auto Fields(const Update& m) {
  return std::tie(m.xid, m.relation_id, m.old_kind, m.old_tuple, m.new_tuple);
}
inline auto Fields(const Delete& m) {
  return std::tie(m.xid, m.relation_id, m.old_kind, m.old_tuple);
}
inline auto Fields(const Truncate& m) { return std::tie(m.xid, m.options, m.relation_ids); }
inline auto Fields(const LogicalMessage& m) {
  return std::tie(m.xid, m.transactional, m.lsn, m.prefix, m.content);
}
inline auto Fields(const StreamStart& m) { return std::tie(m.xid, m.first_segment); }
inline auto Fields(const StreamStop&) { return std::tuple<>(); }
inline auto Fields(const StreamCommit& m) {
  return std::tie(m.xid, m.flags, m.commit_lsn, m.end_lsn, m.commit_time);
}
inline auto Fields(const StreamAbort& m) { return std::tie(m.xid, m.subxid); }

// Decodes `bytes` and returns the message as a T, recording a failure otherwise.
template <class T>
T DecodeAs(std::string_view bytes, bool in_stream) {
  Result<Message> decoded = Decode(bytes, in_stream);
  if (!decoded) {
    ADD_FAILURE() << "Decode failed: " << decoded.error().message;
    return T{};
  }
  if (!std::holds_alternative<T>(decoded.value())) {
    ADD_FAILURE() << "Decode returned variant index " << decoded.value().index();
    return T{};
  }
  return std::get<T>(std::move(decoded).value());
}

// Encodes `m`, decodes it back and expects the same fields and, re-encoded, the same bytes.
template <class T>
void ExpectRoundTrip(const T& m, bool in_stream) {
  SCOPED_TRACE(in_stream ? "in stream" : "not in stream");
  std::string bytes = Encode(Message(m), in_stream);
  T decoded = DecodeAs<T>(bytes, in_stream);
  EXPECT_EQ(Fields(decoded), Fields(m));
  EXPECT_EQ(Encode(Message(decoded), in_stream), bytes);
}

// Expects Decode to fail with kDecode and returns the error message.
inline std::string DecodeError(std::string_view bytes, bool in_stream = false) {
  Result<Message> decoded = Decode(bytes, in_stream);
  if (decoded) {
    ADD_FAILURE() << "Decode accepted " << bytes.size() << " bytes, variant index "
                  << decoded.value().index();
    return "";
  }
  EXPECT_EQ(decoded.error().kind, ErrorKind::kDecode) << decoded.error().message;
  return decoded.error().message;
}

template <size_t N>
std::string_view AsBytes(const unsigned char (&bytes)[N]) {
  return std::string_view(reinterpret_cast<const char*>(bytes), N);
}

// Bytes from their hex form, as psql prints bytea with encode(data, 'hex').
inline std::string FromHex(std::string_view hex) {
  auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::string bytes;
  bytes.reserve(hex.size() / 2);
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return bytes;
}

}  // namespace pgoutput::testutil
}  // namespace pgfanout
