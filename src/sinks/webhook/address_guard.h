#pragma once

#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string_view>

namespace pgfanout::webhook {

// The webhook sink's private-network guard (SSRF): a webhook URL comes from whoever
// configures a tenant's endpoint, and must not reach the machine pgfanout runs on, its
// network, or a cloud metadata service. The sink checks every address the URL's host
// resolves to, on every connect (a DNS answer may change between connects: rebinding).
//
// Returns why `address` is not a public unicast address ("loopback", "private",
// "link-local", …), or nullopt when it is one. IPv6 forms that carry an IPv4 address
// (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4
// 2002::/16) are judged by that IPv4 address.
std::optional<std::string_view> NonPublicReason(const boost::asio::ip::address& address);

}  // namespace pgfanout::webhook
