// The NATS client's parts that need no server: URLs, the CONNECT line (credentials only
// there), and what a refused connection looks like. With a server: test/integration/nats/.

#include "src/sinks/nats/nats_client.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace pgfanout::nats {
namespace {

TEST(NatsUrlTest, SplitsHostAndPort) {
  auto a = ParseNatsUrl("nats://127.0.0.1:4223");
  ASSERT_TRUE(a);
  EXPECT_EQ(a.value().host, "127.0.0.1");
  EXPECT_EQ(a.value().port, 4223);
  auto d = ParseNatsUrl("nats://nats.internal");
  ASSERT_TRUE(d);
  EXPECT_EQ(d.value().port, 4222);
  auto v6 = ParseNatsUrl("nats://[::1]:5000/");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6.value().host, "::1");
  EXPECT_EQ(v6.value().ToString(), "[::1]:5000");
}

TEST(NatsUrlTest, RefusesWhatItCannotUse) {
  for (const char* bad : {"http://h:4222", "nats://", "nats://:4222", "nats://h:0", "nats://h:x",
                          "nats://h:70000", "nats://u:p@h:4222", "nats://[::1", "nats://h:"}) {
    auto a = ParseNatsUrl(bad);
    ASSERT_FALSE(a) << bad;
    EXPECT_EQ(a.error().kind, ErrorKind::kInvalidArgument) << bad;
  }
}

TEST(NatsConnectLineTest, AsksForHeadersAndNoRespondersQuietly) {
  NatsClient::Options o{.name = "pgfanout sink s"};
  const std::string line = ConnectLine(o);
  ASSERT_EQ(line.substr(0, 8), "CONNECT ");
  ASSERT_EQ(line.substr(line.size() - 2), "\r\n");
  auto j = nlohmann::json::parse(line.substr(8, line.size() - 10));
  EXPECT_EQ(j["verbose"], false);
  EXPECT_EQ(j["pedantic"], false);
  EXPECT_EQ(j["headers"], true);
  EXPECT_EQ(j["no_responders"], true);
  EXPECT_EQ(j["name"], "pgfanout sink s");
  EXPECT_FALSE(j.contains("user"));
  EXPECT_FALSE(j.contains("pass"));
}

TEST(NatsConnectLineTest, CarriesUserAndPasswordOrAToken) {
  NatsClient::Options o{.user = "svc", .password = "p\"w\\d"};
  auto j = nlohmann::json::parse(ConnectLine(o).substr(8));
  EXPECT_EQ(j["user"], "svc");
  EXPECT_EQ(j["pass"], "p\"w\\d");  // escaped in the JSON, intact for the server
  NatsClient::Options token{.password = "s3cret"};
  auto t = nlohmann::json::parse(ConnectLine(token).substr(8));
  EXPECT_EQ(t["auth_token"], "s3cret");
  EXPECT_FALSE(t.contains("user"));
}

// A loopback port nothing listens on.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(NatsClientTest, RefusedConnectionIsAConnectionErrorNamingEveryServerNotThePassword) {
  const int a = ClosedPort(), b = ClosedPort();
  NatsClient c(
      {.servers = {fmt::format("nats://127.0.0.1:{}", a), fmt::format("nats://127.0.0.1:{}", b)},
       .user = "svc",
       .password = "hunter2",
       .timeout = std::chrono::milliseconds(2000)});
  auto r = c.Connect();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kConnection);
  EXPECT_NE(r.error().message.find(std::to_string(a)), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(std::to_string(b)), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("hunter2"), std::string::npos);
  EXPECT_FALSE(c.healthy());
}

TEST(NatsClientTest, ABadUrlIsRefusedBeforeConnecting) {
  NatsClient c({.servers = {"nats://ok:4222", "tcp://bad:4222"}});
  auto r = c.Connect();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(r.error().message.find("tcp://bad:4222"), std::string::npos);
}

}  // namespace
}  // namespace pgfanout::nats
