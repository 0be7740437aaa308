#include "src/httpclient/http_client.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <thread>

#include "src/server/http_server.h"

namespace pgfanout {
namespace {

TEST(ParseHttpUrlTest, SplitsSchemeHostPortAndTarget) {
  auto u = ParseHttpUrl("https://hooks.example.com/in?x=1").value();
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.host, "hooks.example.com");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.target, "/in?x=1");
  auto v = ParseHttpUrl("http://127.0.0.1:8123").value();
  EXPECT_FALSE(v.tls);
  EXPECT_EQ(v.port, 8123);
  EXPECT_EQ(v.target, "/");
  EXPECT_EQ(ParseHttpUrl("http://[::1]:9/x").value().host, "::1");
  EXPECT_EQ(ParseHttpUrl("http://h?q").value().target, "/?q");
  for (const char* bad : {"ftp://h", "http://", "http://:80", "http://h:0", "http://h:99999",
                          "http://u:p@h/", "h:80"}) {
    EXPECT_FALSE(ParseHttpUrl(bad).has_value()) << bad;
  }
}

// A real server (the daemon's own) on a thread; counts the requests it saw.
class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::map<std::string, HttpHandler> routes;
    routes["/echo"] = [this](const IncomingRequest& request) {
      const std::string& q = request.query;
      ++requests_;
      return HttpResponse{.status = q == "fail" ? 503u : 200u, .body = "got " + q};
    };
    auto server =
        HttpServer::Start(io_, HttpServer::Options{.listen = "127.0.0.1:0"}, std::move(routes));
    ASSERT_TRUE(server.has_value()) << server.error().message;
    server_ = std::move(server).value();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    boost::asio::post(io_, [this] { server_->Stop(); });
    thread_.join();
  }
  std::unique_ptr<HttpClient> Client(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto c = HttpClient::Create({.url = "http://" + server_->address() + "/echo",
                                 .timeout = timeout});
    EXPECT_TRUE(c.has_value());
    return std::move(c).value();
  }

  boost::asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::atomic<int> requests_{0};
};

TEST_F(HttpClientTest, SendsOnAKeptAliveConnectionAndReturnsAnyStatusAsAValue) {
  auto client = Client();
  auto a = client->Send({.method = "GET", .target = "/echo?one"});
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a.value().status, 200u);
  EXPECT_EQ(a.value().body, "got one");
  EXPECT_EQ(a.value().Header("SERVER"), "pgfanout") << "header names are case-insensitive";
  auto b = client->Send({.method = "GET", .target = "/echo?fail"});
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b.value().status, 503u) << "a 5xx is an answer, not an error";
  EXPECT_EQ(requests_, 2);
}

TEST_F(HttpClientTest, ReconnectsOnceWhenTheServerDroppedTheKeptConnection) {
  auto client = Client();
  ASSERT_TRUE(client->Send({.method = "GET", .target = "/echo?a"}).has_value());
  // The server goes away and comes back on the same port: the kept socket is dead.
  const std::string address = server_->address();
  boost::asio::post(io_, [this] { server_->Stop(); });
  thread_.join();
  io_.restart();
  std::map<std::string, HttpHandler> routes;
  routes["/echo"] = [](const IncomingRequest& r) {
    return HttpResponse{.body = "again " + r.query};
  };
  server_ = HttpServer::Start(io_, HttpServer::Options{.listen = address}, routes).value();
  thread_ = std::thread([this] { io_.run(); });
  auto r = client->Send({.method = "GET", .target = "/echo?b"});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r.value().body, "again b");
}

TEST(HttpClientErrorsTest, RefusedTimedOutAndFilteredAreConnectionErrors) {
  // A port nobody listens on.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = probe.local_endpoint().port();
  probe.close();
  auto refused = HttpClient::Create({.url = "http://127.0.0.1:" + std::to_string(port) + "/"});
  auto r = refused.value()->Send({});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kConnection);
  EXPECT_NE(r.error().message.find("connecting"), std::string::npos) << r.error().message;

  // A server that accepts and never answers.
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  auto slow = HttpClient::Create({.url = "http://127.0.0.1:" +
                                          std::to_string(silent.local_endpoint().port()) + "/",
                                  .timeout = std::chrono::milliseconds(300)});
  const auto started = std::chrono::steady_clock::now();
  r = slow.value()->Send({.body = "x"});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));

  auto filtered = HttpClient::Create(
      {.url = "http://127.0.0.1:9/",
       .address_filter = [](const boost::asio::ip::address& a) -> Result<void> {
         return MakeError(ErrorKind::kInvalidArgument, a.to_string() + " is not allowed");
       }});
  r = filtered.value()->Send({});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(r.error().message, "127.0.0.1 is not allowed");
}

}  // namespace
}  // namespace pgfanout
