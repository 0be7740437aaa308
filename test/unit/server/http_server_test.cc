#include "src/server/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <thread>

#include "test/support/http_client.h"

namespace pgfanout {
namespace {

using testing::HttpGet;
using testing::HttpSend;

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
  void Serve(const std::string& token, HttpServer::Options options = {}) {
    std::map<std::string, HttpHandler> routes;
    routes["/healthz"] = [](const IncomingRequest&) { return HttpResponse{.body = "ok\n"}; };
    routes["/data"] = [](const IncomingRequest& request) {
      return HttpResponse{.content_type = "application/json",
                          .body = "{\"q\":\"" + request.query + "\"}"};
    };
    routes["/page"] = [](const IncomingRequest&) {
      return HttpResponse{.body = "<p>", .content_security_policy = "default-src 'none'"};
    };
    routes["/ask"] = [](const IncomingRequest& r) {
      return HttpResponse{.status = 202, .body = "asked " + r.query};
    };
    routes["/who"] = [](const IncomingRequest& r) {
      return HttpResponse{.body = r.authorized ? "authorized" : "anonymous"};
    };
    options.listen = "127.0.0.1:0";
    options.bearer_token = token;
    auto server = HttpServer::Start(io_, options, routes);
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
  EXPECT_EQ(HttpGet(a, "/data?access_token=s3cret").status, 401)
      << "never in the URL: it would reach access logs and browser history";
  // An open route still learns whether the request carried the token.
  EXPECT_EQ(HttpGet(a, "/healthz").body, "ok\n");
}

TEST_F(HttpServerTest, OpenRoutesKnowWhetherTheRequestCarriedTheToken) {
  HttpServer::Options options;
  options.open_paths = {"/who"};
  Serve("s3cret", options);
  const std::string a = server_->address();
  EXPECT_EQ(HttpGet(a, "/who").body, "anonymous");
  EXPECT_EQ(HttpGet(a, "/who", {{"Authorization", "Bearer s3cret"}}).body, "authorized");
  EXPECT_EQ(HttpGet(a, "/who", {{"Authorization", "Bearer nope"}}).body, "anonymous");
}

TEST_F(HttpServerTest, PostRoutesTakeOnlyPostAndOnlyWithTheToken) {
  HttpServer::Options options;
  options.post_paths = {"/ask"};
  Serve("s3cret", options);
  const std::string a = server_->address();
  const std::map<std::string, std::string> token = {{"Authorization", "Bearer s3cret"}};
  auto asked = HttpSend(a, "POST", "/ask?sink=x", token);
  EXPECT_EQ(asked.status, 202);
  EXPECT_EQ(asked.body, "asked sink=x");
  EXPECT_EQ(HttpSend(a, "POST", "/ask?sink=x").status, 401);
  EXPECT_EQ(HttpSend(a, "GET", "/ask?sink=x", token).status, 405) << "a change is never a GET";
  EXPECT_EQ(HttpSend(a, "POST", "/data", token).status, 405) << "the other routes only read";
  EXPECT_EQ(HttpSend(a, "PUT", "/ask", token).status, 405);
}

TEST_F(HttpServerTest, PostRoutesAreRefusedWithoutAConfiguredToken) {
  HttpServer::Options options;
  options.post_paths = {"/ask"};
  Serve("", options);
  auto r = HttpSend(server_->address(), "POST", "/ask?sink=x");
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("http.token_file"), std::string::npos) << r.body;
  EXPECT_EQ(HttpGet(server_->address(), "/data").status, 200);
}

// DNS rebinding: a page elsewhere points a name of its own at 127.0.0.1; the browser then
// sends that name as Host. Only IP literals, localhost and configured names are served.
TEST_F(HttpServerTest, AnswersOnlyToIpLiteralsLocalhostAndAllowedHostNames) {
  HttpServer::Options options;
  options.allowed_hosts = {"pgfanout.internal"};
  Serve("", options);
  const std::string a = server_->address();
  for (const char* host : {"127.0.0.1:8686", "127.0.0.1", "localhost:8686", "LOCALHOST",
                           "[::1]:8686", "pgfanout.internal:8686", "PgFanout.Internal"}) {
    EXPECT_EQ(HttpGet(a, "/data", {{"Host", host}}).status, 200) << host;
  }
  for (const char* host : {"evil.example:8686", "evil.example", "127.0.0.1.evil.example",
                           "localhost.evil.example", "pgfanout.internal.evil",
                           "[evil.example]", "[evil.example]:8686", "[::1"}) {
    EXPECT_EQ(HttpGet(a, "/data", {{"Host", host}}).status, 421) << host;
  }
}

TEST_F(HttpServerTest, EveryAnswerSaysNosniffAndPagesCarryTheirPolicy) {
  Serve("");
  const std::string a = server_->address();
  auto data = HttpGet(a, "/data");
  EXPECT_EQ(data.headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(data.headers.count("content-security-policy"), 0u);
  auto page = HttpGet(a, "/page");
  EXPECT_EQ(page.headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(page.headers["content-security-policy"], "default-src 'none'");
  EXPECT_EQ(HttpGet(a, "/nope").headers["x-content-type-options"], "nosniff");
}

// A flood of connections that send nothing: past max_connections each new one is closed at
// once, and those held go after header_timeout, after which the server answers again.
TEST_F(HttpServerTest, IdleConnectionsAreCappedAndTimedOut) {
  HttpServer::Options options;
  options.max_connections = 3;
  options.header_timeout = std::chrono::milliseconds(300);
  Serve("", options);
  const std::string a = server_->address();
  const auto endpoint = ParseListenAddress(a);
  ASSERT_TRUE(endpoint);
  boost::asio::io_context client;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::socket>> idle;
  for (int i = 0; i < 20; ++i) {
    idle.push_back(std::make_unique<boost::asio::ip::tcp::socket>(client));
    idle.back()->connect(*endpoint);
  }
  // The ones past the cap were closed by the server: a read sees the end at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int closed = 0;
  for (auto& s : idle) {
    s->non_blocking(true);
    char byte;
    boost::system::error_code ec;
    s->read_some(boost::asio::buffer(&byte, 1), ec);
    closed += ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
  }
  EXPECT_EQ(closed, 17) << "all but max_connections are closed at once";
  // The held ones go after the header timeout; then a request is served.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(HttpGet(a, "/data").status, 200);
  closed = 0;
  for (auto& s : idle) {
    char byte;
    boost::system::error_code ec;
    s->read_some(boost::asio::buffer(&byte, 1), ec);
    closed += ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
  }
  EXPECT_EQ(closed, 20) << "idle connections time out";
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
