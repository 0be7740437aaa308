#include "src/server/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>

namespace pgfanout {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

constexpr auto kRequestTimeout = std::chrono::seconds(30);
constexpr size_t kMaxRequestBytes = 16 * 1024;

// Constant-time comparison: how long it takes says nothing about where they differ.
bool SameSecret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

// The value of `key` in a query string (no percent-decoding: tokens are plain).
std::string QueryValue(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == key) {
      return std::string(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return "";
}

}  // namespace

std::optional<tcp::endpoint> ParseListenAddress(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  const char* p = text.data() + colon + 1;
  auto [end, ec] = std::from_chars(p, text.data() + text.size(), port);
  if (ec != std::errc() || end != text.data() + text.size() || port > 65535) return std::nullopt;
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code bad;
  auto address = boost::asio::ip::make_address(host.empty() ? "0.0.0.0" : host, bad);
  if (bad) return std::nullopt;
  return tcp::endpoint(address, static_cast<unsigned short>(port));
}

class HttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer& server, std::shared_ptr<bool> alive)
      : stream_(std::move(socket)), server_(server), alive_(std::move(alive)) {}

  void Read() {
    parser_.emplace();
    parser_->body_limit(kMaxRequestBytes);
    parser_->header_limit(kMaxRequestBytes);
    stream_.expires_after(kRequestTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec || !*alive_) return;  // closed, timed out, malformed: drop the connection
    const auto& req = parser_->get();
    HttpResponse r = Handle(req);
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), req.version());
    res->set(http::field::server, "pgfanout");
    res->set(http::field::content_type, r.content_type);
    res->set(http::field::cache_control, "no-store");
    if (r.status == 401) res->set(http::field::www_authenticate, "Bearer");
    res->keep_alive(req.keep_alive());
    if (req.method() != http::verb::head) res->body() = std::move(r.body);
    res->prepare_payload();
    if (req.method() == http::verb::head) res->content_length(r.body.size());
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
      if (ec || !*self->alive_) return;
      if (!res->keep_alive()) return self->Close();
      self->Read();
    });
  }

  HttpResponse Handle(const http::request<http::string_body>& req) {
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      return {.status = 405, .body = "only GET and HEAD\n"};
    }
    std::string_view target(req.target().data(), req.target().size());
    auto q = target.find('?');
    std::string path(target.substr(0, q));
    std::string query(q == std::string_view::npos ? "" : target.substr(q + 1));
    const auto& o = server_.options_;
    const bool open =
        std::find(o.open_paths.begin(), o.open_paths.end(), path) != o.open_paths.end();
    if (!o.bearer_token.empty() && !open) {
      std::string_view auth(req[http::field::authorization].data(),
                            req[http::field::authorization].size());
      std::string given = auth.substr(0, 7) == "Bearer " ? std::string(auth.substr(7))
                                                         : QueryValue(query, "access_token");
      if (!SameSecret(given, o.bearer_token)) {
        return {.status = 401, .body = "a bearer token is required (http.token_file)\n"};
      }
    }
    auto route = server_.routes_.find(path);
    if (route == server_.routes_.end()) return {.status = 404, .body = "not found\n"};
    return route->second(query);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpServer& server_;
  std::shared_ptr<bool> alive_;
};

HttpServer::HttpServer(boost::asio::io_context& io, Options options,
                       std::map<std::string, HttpHandler> routes)
    : io_(io),
      options_(std::move(options)),
      routes_(std::move(routes)),
      acceptor_(io),
      alive_(std::make_shared<bool>(true)) {}

HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(boost::asio::io_context& io, Options options,
                                                      std::map<std::string, HttpHandler> routes) {
  auto endpoint = ParseListenAddress(options.listen);
  if (!endpoint) {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("http.listen: '{}' is not host:port (e.g. 127.0.0.1:8686)",
                                 options.listen));
  }
  std::unique_ptr<HttpServer> server(new HttpServer(io, std::move(options), std::move(routes)));
  boost::system::error_code ec;
  auto& a = server->acceptor_;
  a.open(endpoint->protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(*endpoint, ec);
  if (!ec) a.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return MakeError(ErrorKind::kConnection,
                     fmt::format("http: cannot listen on {}: {}", server->options_.listen,
                                 ec.message()));
  }
  server->Accept();
  return server;
}

std::string HttpServer::address() const {
  boost::system::error_code ec;
  auto ep = acceptor_.local_endpoint(ec);
  if (ec) return "";
  return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                              : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

void HttpServer::Accept() {
  acceptor_.async_accept(
      [this, alive = alive_](boost::system::error_code ec, tcp::socket socket) {
        if (!*alive) return;
        if (ec) {
          if (ec == boost::asio::error::operation_aborted) return;
          spdlog::warn("http: accept failed: {}", ec.message());
        } else {
          auto s = std::make_shared<Session>(std::move(socket), *this, alive_);
          std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
          sessions_.push_back(s);
          s->Read();
        }
        Accept();
      });
}

void HttpServer::Stop() {
  if (!*alive_) return;
  *alive_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto& w : sessions_) {
    if (auto s = w.lock()) s->Close();
  }
  sessions_.clear();
}

}  // namespace pgfanout
