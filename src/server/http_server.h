#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
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
};

// A handler gets the request's query string (after '?', may be empty). It runs on the
// io_context's thread, so it must be quick: read snapshots, never block on I/O.
using HttpHandler = std::function<HttpResponse(const std::string& query)>;

// A small HTTP/1.1 server on Boost.Beast for the operator endpoints (/healthz, /metrics …).
// GET and HEAD only; one route per exact path; keep-alive; a request must arrive within
// 30 s and fit in 16 kB. With a bearer token, every route except those in `open_paths`
// needs `Authorization: Bearer <token>` or `?access_token=<token>` (a browser opening the
// lag page cannot send a header); the token is compared in constant time and never logged.
//
// Lifecycle: Start() binds and accepts on `io`; Stop() closes the acceptor and every open
// connection; both on the io_context's thread.
class HttpServer {
 public:
  struct Options {
    std::string listen;  // "host:port", "[v6]:port"; port 0 picks a free one
    std::string bearer_token;
    std::vector<std::string> open_paths = {"/healthz", "/readyz"};
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

  class Session;

 private:
  HttpServer(boost::asio::io_context& io, Options options,
             std::map<std::string, HttpHandler> routes);
  void Accept();

  boost::asio::io_context& io_;
  Options options_;
  std::map<std::string, HttpHandler> routes_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<bool> alive_;  // sessions check it before touching the server
  std::vector<std::weak_ptr<Session>> sessions_;
};

// Splits "host:port" / "[v6]:port"; nullopt when malformed.
std::optional<boost::asio::ip::tcp::endpoint> ParseListenAddress(const std::string& text);

}  // namespace pgfanout
