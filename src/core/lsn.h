#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgfanout {

// A WAL position. Printed the Postgres way, "%X/%X" (high and low 32 bits in hex).
class Lsn {
 public:
  constexpr Lsn() = default;
  constexpr explicit Lsn(uint64_t value) : value_(value) {}

  constexpr uint64_t value() const { return value_; }
  constexpr bool IsZero() const { return value_ == 0; }
  std::string ToString() const;

  // Parses "16/B374D848"; nullopt unless the text is two hex numbers of at most 8
  // digits each, separated by one '/'.
  static std::optional<Lsn> Parse(std::string_view text);

  friend constexpr auto operator<=>(Lsn, Lsn) = default;

 private:
  uint64_t value_ = 0;
};

// Strong ids, so a relation id is never passed where a transaction id is expected.
struct Xid {
  uint32_t value = 0;
  friend constexpr auto operator<=>(Xid, Xid) = default;
};

struct RelationId {
  uint32_t value = 0;
  friend constexpr auto operator<=>(RelationId, RelationId) = default;
};

}  // namespace pgfanout
