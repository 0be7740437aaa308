#include "src/sinks/webhook/address_guard.h"

#include <array>
#include <cstdint>

namespace pgfanout::webhook {
namespace {

struct V4Range {
  uint32_t network;
  int prefix;
  std::string_view reason;
};

constexpr uint32_t V4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

// IANA IPv4 special-purpose registry, less what is globally reachable unicast.
constexpr std::array kV4Ranges = {
    V4Range{V4(0, 0, 0, 0), 8, "unspecified (0.0.0.0/8)"},
    V4Range{V4(10, 0, 0, 0), 8, "private (10.0.0.0/8)"},
    V4Range{V4(100, 64, 0, 0), 10, "shared address space (100.64.0.0/10)"},
    V4Range{V4(127, 0, 0, 0), 8, "loopback (127.0.0.0/8)"},
    V4Range{V4(169, 254, 0, 0), 16, "link-local (169.254.0.0/16)"},
    V4Range{V4(172, 16, 0, 0), 12, "private (172.16.0.0/12)"},
    V4Range{V4(192, 0, 0, 0), 24, "IETF protocol assignments (192.0.0.0/24)"},
    V4Range{V4(192, 0, 2, 0), 24, "documentation (192.0.2.0/24)"},
    V4Range{V4(192, 168, 0, 0), 16, "private (192.168.0.0/16)"},
    V4Range{V4(198, 18, 0, 0), 15, "benchmarking (198.18.0.0/15)"},
    V4Range{V4(198, 51, 100, 0), 24, "documentation (198.51.100.0/24)"},
    V4Range{V4(203, 0, 113, 0), 24, "documentation (203.0.113.0/24)"},
    V4Range{V4(224, 0, 0, 0), 4, "multicast (224.0.0.0/4)"},
    V4Range{V4(240, 0, 0, 0), 4, "reserved (240.0.0.0/4, broadcast)"},
};

std::optional<std::string_view> V4Reason(uint32_t a) {
  for (const auto& r : kV4Ranges) {
    const uint32_t mask = r.prefix == 0 ? 0 : ~uint32_t{0} << (32 - r.prefix);
    if ((a & mask) == r.network) return r.reason;
  }
  return std::nullopt;
}

uint32_t V4At(const boost::asio::ip::address_v6::bytes_type& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) |
         uint32_t{b[at + 3]};
}

bool AllZero(const boost::asio::ip::address_v6::bytes_type& b, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}

std::optional<std::string_view> V6Reason(const boost::asio::ip::address_v6& a) {
  const auto b = a.to_bytes();
  if (a.is_unspecified()) return "unspecified (::)";
  if (a.is_loopback()) return "loopback (::1)";
  // ::ffff:a.b.c.d, ::a.b.c.d (deprecated IPv4-compatible), 64:ff9b::a.b.c.d (NAT64).
  const bool mapped = AllZero(b, 0, 10) && b[10] == 0xff && b[11] == 0xff;
  const bool compatible = AllZero(b, 0, 12);
  const bool nat64 =
      b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && AllZero(b, 4, 12);
  if (mapped || compatible || nat64) {
    if (auto r = V4Reason(V4At(b, 12))) return r;
    if (compatible) return "IPv4-compatible (::/96, deprecated)";
    return std::nullopt;
  }
  if (b[0] == 0x20 && b[1] == 0x02) return V4Reason(V4At(b, 2));  // 6to4 2002:a.b.c.d::/48
  if (b[0] == 0xff) return "multicast (ff00::/8)";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "link-local (fe80::/10)";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return "site-local (fec0::/10, deprecated)";
  if ((b[0] & 0xfe) == 0xfc) return "unique-local (fc00::/7)";
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) {
    return "documentation (2001:db8::/32)";
  }
  if (b[0] == 0x01 && AllZero(b, 1, 8)) return "discard-only (100::/64)";
  // Global unicast is 2000::/3 only; the rest is reserved.
  if ((b[0] & 0xe0) != 0x20) return "reserved (outside 2000::/3)";
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> NonPublicReason(const boost::asio::ip::address& address) {
  if (address.is_v4()) return V4Reason(address.to_v4().to_uint());
  return V6Reason(address.to_v6());
}

}  // namespace pgfanout::webhook
