#include "src/server/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>

namespace pgfanout {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

constexpr size_t kMaxRequestBytes = 16 * 1024;
constexpr auto kAcceptBackoffMin = std::chrono::milliseconds(50);
constexpr auto kAcceptBackoffMax = std::chrono::milliseconds(1000);
constexpr auto kAcceptReportEvery = std::chrono::seconds(10);

// Constant-time comparison: how long it takes says nothing about where they differ.
bool SameSecret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
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
    // The first request must come quickly; a kept-alive connection may wait a little
    // longer for the next. Either way an idle connection goes.
    stream_.expires_after(first_ ? server_.options_.header_timeout : server_.options_.idle_timeout);
    first_ = false;
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
    res->set("X-Content-Type-Options", "nosniff");
    if (!r.content_security_policy.empty()) {
      res->set("Content-Security-Policy", r.content_security_policy);
    }
    if (r.status == 401) res->set(http::field::www_authenticate, "Bearer");
    res->keep_alive(req.keep_alive() && r.status != 421);
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
    std::string_view target(req.target().data(), req.target().size());
    auto q = target.find('?');
    std::string path(target.substr(0, q));
    const auto& o = server_.options_;
    const bool post_route =
        std::find(o.post_paths.begin(), o.post_paths.end(), path) != o.post_paths.end();
    if (post_route && req.method() != http::verb::post) {
      return {.status = 405, .body = "only POST\n"};
    }
    if (!post_route && req.method() != http::verb::get && req.method() != http::verb::head) {
      return {.status = 405, .body = "only GET and HEAD\n"};
    }
    const auto host = req[http::field::host];
    if (!server_.HostAllowed(std::string_view(host.data(), host.size()))) {
      return {.status = 421,
              .body = "this server answers to IP addresses, localhost and http.allowed_hosts\n"};
    }
    IncomingRequest request{.query = std::string(q == std::string_view::npos ? "" : target.substr(q + 1))};
    if (post_route && o.bearer_token.empty()) {
      // A change asked of the daemon needs to know who asks.
      return {.status = 403, .body = "set http.token_file to allow POST " + path + "\n"};
    }
    if (!o.bearer_token.empty()) {
      std::string_view auth(req[http::field::authorization].data(),
                            req[http::field::authorization].size());
      request.authorized =
          auth.substr(0, 7) == "Bearer " && SameSecret(auth.substr(7), o.bearer_token);
      const bool open =
          std::find(o.open_paths.begin(), o.open_paths.end(), path) != o.open_paths.end();
      if (!open && !request.authorized) {
        return {.status = 401,
                .body = "a bearer token is required (http.token_file): send Authorization: "
                        "Bearer <token>\n"};
      }
    }
    auto route = server_.routes_.find(path);
    if (route == server_.routes_.end()) return {.status = 404, .body = "not found\n"};
    return route->second(request);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpServer& server_;
  std::shared_ptr<bool> alive_;
  bool first_ = true;
};

bool HttpServer::HostAllowed(std::string_view host) const {
  if (host.empty()) return true;  // HTTP/1.0 sends none; a browser always does
  std::string name;
  if (host.front() == '[') {  // an IPv6 literal, [addr] or [addr]:port
    const auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    boost::system::error_code bad;
    boost::asio::ip::make_address_v6(std::string(host.substr(1, close - 1)), bad);
    return !bad;
  }
  auto colon = host.rfind(':');
  name = std::string(host.substr(0, colon));
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name == "localhost") return true;
  boost::system::error_code bad;
  boost::asio::ip::make_address_v4(name, bad);
  if (!bad) return true;
  for (const auto& allowed : options_.allowed_hosts) {
    if (beast::iequals(allowed, name)) return true;
  }
  return false;
}

HttpServer::HttpServer(boost::asio::io_context& io, Options options,
                       std::map<std::string, HttpHandler> routes)
    : io_(io),
      options_(std::move(options)),
      routes_(std::move(routes)),
      acceptor_(io),
      alive_(std::make_shared<bool>(true)),
      accept_timer_(io) {}

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
          return AcceptLater(ec);
        }
        accept_backoff_ = std::chrono::milliseconds(0);
        std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
        if (sessions_.size() >= options_.max_connections) {
          // Full: this one goes at once, so a flood holds no more than the cap.
          boost::system::error_code ignored;
          socket.close(ignored);
        } else {
          auto s = std::make_shared<Session>(std::move(socket), *this, alive_);
          sessions_.push_back(s);
          s->Read();
        }
        Accept();
      });
}

// Accept failed (EMFILE, ENFILE, ENOBUFS …): trying again at once would spin and log
// without end. Wait, longer each time up to a second; one line per 10 s at most.
void HttpServer::AcceptLater(boost::system::error_code ec) {
  accept_backoff_ = std::clamp(accept_backoff_ * 2, kAcceptBackoffMin, kAcceptBackoffMax);
  ++accept_errors_;
  const auto now = std::chrono::steady_clock::now();
  if (now - accept_error_logged_ >= kAcceptReportEvery) {
    spdlog::warn(
        "http: accept failed: {} ({} time(s) since the last report; {} connection(s) open); "
        "trying again in {} ms",
        ec.message(), accept_errors_, sessions_.size(), accept_backoff_.count());
    accept_error_logged_ = now;
    accept_errors_ = 0;
  }
  accept_timer_.expires_after(accept_backoff_);
  accept_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive) return;
    Accept();
  });
}

void HttpServer::Stop() {
  if (!*alive_) return;
  *alive_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  accept_timer_.cancel();
  for (auto& w : sessions_) {
    if (auto s = w.lock()) s->Close();
  }
  sessions_.clear();
}

}  // namespace pgfanout
