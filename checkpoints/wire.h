#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "src/core/error.h"

// The primitives of the log's binary values (checkpoints/KEYS.md): LEB128 varints, zigzag,
// little-endian fixed64, length-prefixed bytes, and a bounds-checked reader. Shared by the
// event codec and the metadata records; nothing here reads past the bytes it is given.
namespace pgfanout::wire {

inline void PutVarint(std::string& out, uint64_t v) {
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
}

inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

inline void PutBytes(std::string& out, std::string_view bytes) {
  PutVarint(out, bytes.size());
  out.append(bytes);
}

inline void PutFixed64(std::string& out, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  out.append(buf, 8);
}

// Every getter returns false instead of reading past the end. `what` names the value in
// Fail()'s message.
class Reader {
 public:
  Reader(std::string_view bytes, const char* what) : bytes_(bytes), what_(what) {}

  bool Byte(uint8_t& v) {
    if (pos_ >= bytes_.size()) return false;
    v = static_cast<uint8_t>(bytes_[pos_++]);
    return true;
  }
  bool Varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!Byte(b)) return false;
      if (shift == 63 && b > 1) return false;  // more than 64 bits
      v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool Varint32(uint32_t& v) {
    uint64_t wide;
    if (!Varint(wide) || wide > UINT32_MAX) return false;
    v = static_cast<uint32_t>(wide);
    return true;
  }
  bool Fixed64(uint64_t& v) {
    if (remaining() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(bytes_[pos_ + i])} << (8 * i);
    pos_ += 8;
    return true;
  }
  bool Bytes(uint64_t n, std::string_view& v) {
    if (n > remaining()) return false;
    v = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool String(std::string& v) {
    uint64_t n;
    std::string_view view;
    if (!Varint(n) || !Bytes(n, view)) return false;
    v.assign(view);
    return true;
  }
  // A 0 or 1 byte.
  bool Bool(bool& v) {
    uint8_t b;
    if (!Byte(b) || b > 1) return false;
    v = b == 1;
    return true;
  }
  // A count of items that take at least one byte each: larger than what is left is corrupt
  // (and must not drive a huge allocation).
  bool Count(uint64_t& n) { return Varint(n) && n <= remaining(); }

  size_t remaining() const { return bytes_.size() - pos_; }

  Error Fail(std::string_view why) const {
    return Error{ErrorKind::kStorage,
                 fmt::format("corrupt {} at byte {} of {}: {}", what_, pos_, bytes_.size(), why)};
  }

 private:
  std::string_view bytes_;
  const char* what_;
  size_t pos_ = 0;
};

}  // namespace pgfanout::wire
