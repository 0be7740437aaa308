#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "src/core/lsn.h"

namespace pgfanout {

// The sequence id of a change: commit LSN of its transaction, then its position inside
// that transaction. Derived from the WAL only, so a replay yields the same ids.
// Text form: "0/16B3748#12".
struct EventId {
  Lsn commit_lsn;
  uint32_t ordinal = 0;

  std::string ToString() const;
  static std::optional<EventId> Parse(std::string_view text);

  friend constexpr auto operator<=>(const EventId&, const EventId&) = default;
};

}  // namespace pgfanout
