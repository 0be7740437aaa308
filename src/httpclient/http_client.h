#pragma once

#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/core/error.h"

namespace pgfanout {

// An http:// or https:// URL, split.
struct HttpUrl {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string target = "/";  // path and query

  std::string Origin() const;  // "https://host:port", for messages (never a credential)
};

// Errors: kInvalidArgument naming what is wrong (scheme, host, port, credentials).
Result<HttpUrl> ParseHttpUrl(std::string_view url);

struct HttpRequest {
  std::string method = "POST";
  std::string target;  // empty: the URL's own path and query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpResult {
  unsigned status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  // The value of header `name` (case-insensitive), "" when absent.
  std::string Header(std::string_view name) const;
};

// A blocking HTTP/1.1 client for sinks (ClickHouse, webhooks), on Boost.Beast, with TLS
// (OpenSSL, peer and host name verified against the system's CA store or `ca_file`).
// Keeps one connection alive and reconnects when the server closed it.
//
// Threads: one owner thread (a sink's runner). Not copyable.
class HttpClient {
 public:
  struct Options {
    std::string url;
    std::chrono::milliseconds timeout{10'000};  // connect, and each request/response
    std::string ca_file;                        // https: extra CA bundle; empty: system's
    // Called with every address the host resolves to, before connecting; an error refuses
    // the address (the webhook sink's private-network guard).
    std::function<Result<void>(const boost::asio::ip::address&)> address_filter;
  };

  static Result<std::unique_ptr<HttpClient>> Create(Options options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads the whole response. A response of any status is a value;
  // errors are for when there is none: kConnection (resolve, connect, TLS, timeout, reset),
  // kInvalidArgument (an address refused by the filter). Retries once on a kept-alive
  // connection the server had closed, never otherwise.
  Result<HttpResult> Send(const HttpRequest& request);

  const HttpUrl& url() const { return url_; }
  // Drops the connection (the next Send() makes a new one).
  void Close();

 private:
  class Connection;
  HttpClient(Options options, HttpUrl url);
  Result<void> Connect();

  Options options_;
  HttpUrl url_;
  std::unique_ptr<Connection> conn_;
};

}  // namespace pgfanout
