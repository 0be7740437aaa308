#include "src/server/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <thread>

#include "test/support/http_client.h"

namespace pgfanout {
namespace {

using testing::HttpGet;

TEST(ParseListenAddressTest, ReadsHostAndPortForms) {
  auto v4 = ParseListenAddress("127.0.0.1:8686");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->port(), 8686);
  EXPECT_EQ(v4->address().to_string(), "127.0.0.1");
  auto v6 = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->address().is_v6());
  EXPECT_EQ(ParseListenAddress("localhost:1")->address().to_string(), "127.0.0.1");
  EXPECT_EQ(ParseListenAddress(":9")->address().to_string(), "0.0.0.0");
  for (const char* bad : {"", "8686", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", "1.2.3.4:70000",
                          "example.com:80"}) {
    EXPECT_FALSE(ParseListenAddress(bad)) << bad;
  }
}

// A server on a free port, served by a thread of its own.
class HttpServerTest : public ::testing::Test {
 protected:
  void Serve(const std::string& token) {
    std::map<std::string, HttpHandler> routes;
    routes["/healthz"] = [](const std::string&) { return HttpResponse{.body = "ok\n"}; };
    routes["/data"] = [](const std::string& query) {
      return HttpResponse{.content_type = "application/json", .body = "{\"q\":\"" + query + "\"}"};
    };
    auto server = HttpServer::Start(
        io_, HttpServer::Options{.listen = "127.0.0.1:0", .bearer_token = token}, routes);
    ASSERT_TRUE(server.has_value()) << server.error().message;
    server_ = std::move(server).value();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    boost::asio::post(io_, [this] { server_->Stop(); });
    if (thread_.joinable()) thread_.join();
  }

  boost::asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

TEST_F(HttpServerTest, RoutesByExactPathAndPassesTheQuery) {
  Serve("");
  const std::string a = server_->address();
  auto r = HttpGet(a, "/data?x=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"q\":\"x=1\"}");
  EXPECT_EQ(HttpGet(a, "/data/").status, 404);
  EXPECT_EQ(HttpGet(a, "/").status, 404);
}

TEST_F(HttpServerTest, TokenGuardsAllButOpenPaths) {
  Serve("s3cret");
  const std::string a = server_->address();
  EXPECT_EQ(HttpGet(a, "/healthz").status, 200);
  EXPECT_EQ(HttpGet(a, "/data").status, 401);
  EXPECT_EQ(HttpGet(a, "/data", {{"Authorization", "Bearer s3cre"}}).status, 401) << "a prefix";
  EXPECT_EQ(HttpGet(a, "/data", {{"Authorization", "Bearer s3crets"}}).status, 401);
  EXPECT_EQ(HttpGet(a, "/data", {{"Authorization", "Basic s3cret"}}).status, 401);
  EXPECT_EQ(HttpGet(a, "/data", {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(HttpGet(a, "/data?access_token=s3cret").status, 200);
  EXPECT_EQ(HttpGet(a, "/data?access_token=").status, 401);
}

TEST(HttpServerStartTest, RefusesABadAddressAndAPortInUse) {
  boost::asio::io_context io;
  auto bad = HttpServer::Start(io, HttpServer::Options{.listen = "nowhere"}, {});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);
  auto first = HttpServer::Start(io, HttpServer::Options{.listen = "127.0.0.1:0"}, {});
  ASSERT_TRUE(first.has_value());
  auto second = HttpServer::Start(io, HttpServer::Options{.listen = first.value()->address()}, {});
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().kind, ErrorKind::kConnection);
  EXPECT_NE(second.error().message.find("cannot listen on"), std::string::npos);
}

}  // namespace
}  // namespace pgfanout
