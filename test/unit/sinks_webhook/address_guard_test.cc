#include "src/sinks/webhook/address_guard.h"

#include <gtest/gtest.h>

namespace pgfanout::webhook {
namespace {

std::optional<std::string_view> Reason(const char* text) {
  return NonPublicReason(boost::asio::ip::make_address(text));
}

TEST(AddressGuardTest, RefusesEveryNonPublicIpv4Class) {
  const std::vector<std::pair<const char*, const char*>> refused = {
      {"0.0.0.0", "unspecified"},
      {"0.1.2.3", "unspecified"},
      {"10.0.0.1", "private"},
      {"10.255.255.255", "private"},
      {"100.64.0.1", "shared"},
      {"100.127.255.254", "shared"},
      {"127.0.0.1", "loopback"},
      {"127.255.0.9", "loopback"},
      {"169.254.169.254", "link-local"},  // cloud metadata
      {"172.16.0.1", "private"},
      {"172.31.255.255", "private"},
      {"192.0.0.8", "IETF"},
      {"192.0.2.1", "documentation"},
      {"192.168.1.1", "private"},
      {"198.18.0.1", "benchmarking"},
      {"198.19.255.255", "benchmarking"},
      {"198.51.100.7", "documentation"},
      {"203.0.113.9", "documentation"},
      {"224.0.0.1", "multicast"},
      {"239.255.255.250", "multicast"},
      {"240.0.0.1", "reserved"},
      {"255.255.255.255", "reserved"},
  };
  for (const auto& [address, why] : refused) {
    auto r = Reason(address);
    ASSERT_TRUE(r.has_value()) << address << " must be refused";
    EXPECT_NE(r->find(why), std::string_view::npos) << address << ": " << *r;
  }
}

TEST(AddressGuardTest, LetsPublicIpv4Through) {
  for (const char* ok :
       {"1.1.1.1", "8.8.8.8", "9.255.255.255", "11.0.0.1", "100.63.255.255", "100.128.0.1",
        "126.255.255.255", "128.0.0.1", "169.253.1.1", "172.15.255.255", "172.32.0.1", "192.0.1.1",
        "192.169.0.1", "198.17.255.255", "198.20.0.1", "203.0.114.1", "223.255.255.255"}) {
    EXPECT_FALSE(Reason(ok).has_value()) << ok << ": " << Reason(ok).value_or("");
  }
}

TEST(AddressGuardTest, RefusesEveryNonPublicIpv6ClassAndIpv4InIpv6Forms) {
  const std::vector<std::pair<const char*, const char*>> refused = {
      {"::", "unspecified"},
      {"::1", "loopback"},
      {"fe80::1", "link-local"},
      {"febf:ffff::1", "link-local"},
      {"fec0::1", "site-local"},
      {"fc00::1", "unique-local"},
      {"fd12:3456:789a::1", "unique-local"},
      {"ff02::1", "multicast"},
      {"ff0e::1", "multicast"},
      {"2001:db8::1", "documentation"},
      {"100::1", "discard"},
      {"::ffff:127.0.0.1", "loopback"},  // IPv4-mapped
      {"::ffff:10.1.2.3", "private"},
      {"::ffff:169.254.169.254", "link-local"},
      {"::ffff:0.0.0.0", "unspecified"},
      {"::127.0.0.1", "loopback"},  // IPv4-compatible
      {"::8.8.8.8", "IPv4-compatible"},
      {"64:ff9b::192.168.0.1", "private"},  // NAT64
      {"2002:7f00:1::", "loopback"},        // 6to4 of 127.0.0.1
      {"2002:c0a8:101::1", "private"},      // 6to4 of 192.168.1.1
      {"fbff::1", "reserved"},
      {"fe7f::1", "reserved"},
      {"4000::1", "reserved"},
  };
  for (const auto& [address, why] : refused) {
    auto r = Reason(address);
    ASSERT_TRUE(r.has_value()) << address << " must be refused";
    EXPECT_NE(r->find(why), std::string_view::npos) << address << ": " << *r;
  }
}

TEST(AddressGuardTest, LetsPublicIpv6Through) {
  for (const char* ok : {"2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450::1",
                         "::ffff:8.8.8.8", "64:ff9b::1.1.1.1", "2002:808:808::1", "2400:cb00::1"}) {
    EXPECT_FALSE(Reason(ok).has_value()) << ok << ": " << Reason(ok).value_or("");
  }
}

}  // namespace
}  // namespace pgfanout::webhook
