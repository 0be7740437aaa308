#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/core/error.h"

namespace pgfanout {

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string content_security_policy;  // sent when not empty (pages)
};

struct IncomingRequest {
  std::string query;        // after '?', may be empty
  bool authorized = false;  // it carried the bearer token (false when none is configured)
};

// A handler runs on the io_context's thread, so it must be quick: read snapshots, never
// block on I/O.
using HttpHandler = std::function<HttpResponse(const IncomingRequest& request)>;

// A small HTTP/1.1 server on Boost.Beast for the operator endpoints (/healthz, /metrics …).
// GET and HEAD, POST on `post_paths` only; one route per exact path; keep-alive; a request
// of at most 16 kB.
// Made to be reachable by whoever can reach the port, so:
// - Bearer token: with one, every route except those in `open_paths` needs
//   `Authorization: Bearer <token>` (never in the URL: it would reach logs and history);
//   compared in constant time, never logged.
// - Host: a request naming a host that is not an IP literal, `localhost` or one of
//   `allowed_hosts` is refused (421): a web page elsewhere cannot reach a loopback server
//   through a name it points at 127.0.0.1 (DNS rebinding).
// - Bounded: at most `max_connections` at once (a connection past it is closed at once);
//   a request's headers must arrive within `header_timeout`, the next one on a kept-alive
//   connection within `idle_timeout`. When accept fails (out of file descriptors) the
//   server waits before it tries again and says so at most every 10 s.
// - Every answer carries `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`.
//
// Lifecycle: Start() binds and accepts on `io`; Stop() closes the acceptor and every open
// connection; both on the io_context's thread.
class HttpServer {
 public:
  struct Options {
    std::string listen;  // "host:port", "[v6]:port"; port 0 picks a free one
    std::string bearer_token;
    std::vector<std::string> open_paths = {"/healthz", "/readyz"};
    // Routes that take POST (and only POST): changes asked of the daemon. They need the
    // bearer token, and answer 403 when none is configured.
    std::vector<std::string> post_paths;
    std::vector<std::string> allowed_hosts;  // host names besides IP literals and localhost
    size_t max_connections = 64;
    std::chrono::milliseconds header_timeout{5'000};
    std::chrono::milliseconds idle_timeout{10'000};
  };

  // Errors: kInvalidArgument for an unparsable address, kConnection when it cannot bind.
  static Result<std::unique_ptr<HttpServer>> Start(boost::asio::io_context& io, Options options,
                                                   std::map<std::string, HttpHandler> routes);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound address, "127.0.0.1:8686".
  std::string address() const;
  void Stop();
  size_t connections() const { return sessions_.size(); }

  class Session;

 private:
  HttpServer(boost::asio::io_context& io, Options options,
             std::map<std::string, HttpHandler> routes);
  void Accept();
  void AcceptLater(boost::system::error_code ec);
  bool HostAllowed(std::string_view host_header) const;

  boost::asio::io_context& io_;
  Options options_;
  std::map<std::string, HttpHandler> routes_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<bool> alive_;  // sessions check it before touching the server
  std::vector<std::weak_ptr<Session>> sessions_;
  boost::asio::steady_timer accept_timer_;
  std::chrono::milliseconds accept_backoff_{0};
  std::chrono::steady_clock::time_point accept_error_logged_{};
  uint64_t accept_errors_ = 0;  // since the last line about them
};

// Splits "host:port" / "[v6]:port"; nullopt when malformed.
std::optional<boost::asio::ip::tcp::endpoint> ParseListenAddress(const std::string& text);

}  // namespace pgfanout
