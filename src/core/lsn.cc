#include "src/core/lsn.h"

#include <fmt/format.h>

#include <charconv>

#include "src/core/error.h"
#include "src/core/event_id.h"

namespace pgfanout {
namespace {

std::optional<uint32_t> ParseHex32(std::string_view text) {
  if (text.empty() || text.size() > 8) return std::nullopt;
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::string Lsn::ToString() const {
  return fmt::format("{:X}/{:X}", static_cast<uint32_t>(value_ >> 32),
                     static_cast<uint32_t>(value_));
}

std::optional<Lsn> Lsn::Parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto hi = ParseHex32(text.substr(0, slash));
  auto lo = ParseHex32(text.substr(slash + 1));
  if (!hi || !lo) return std::nullopt;
  return Lsn((static_cast<uint64_t>(*hi) << 32) | *lo);
}

std::string EventId::ToString() const {
  return fmt::format("{}#{}", commit_lsn.ToString(), ordinal);
}

std::optional<EventId> EventId::Parse(std::string_view text) {
  auto hash = text.find('#');
  if (hash == std::string_view::npos) return std::nullopt;
  auto lsn = Lsn::Parse(text.substr(0, hash));
  auto ord_text = text.substr(hash + 1);
  uint32_t ordinal = 0;
  auto [end, ec] = std::from_chars(ord_text.data(), ord_text.data() + ord_text.size(), ordinal, 10);
  if (!lsn || ord_text.empty() || ec != std::errc() || end != ord_text.data() + ord_text.size()) {
    return std::nullopt;
  }
  return EventId{*lsn, ordinal};
}

const char* ToString(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return "invalid_argument";
    case ErrorKind::kDecode:
      return "decode";
    case ErrorKind::kProtocol:
      return "protocol";
    case ErrorKind::kConnection:
      return "connection";
    case ErrorKind::kStorage:
      return "storage";
    case ErrorKind::kSink:
      return "sink";
    case ErrorKind::kNotFound:
      return "not_found";
    case ErrorKind::kMismatch:
      return "mismatch";
    case ErrorKind::kCancelled:
      return "cancelled";
    case ErrorKind::kBusy:
      return "busy";
  }
  return "unknown";
}

}  // namespace pgfanout
