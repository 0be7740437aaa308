#include "src/httpclient/http_client.h"

#include <fmt/format.h>
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <optional>

namespace pgfanout {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string HttpUrl::Origin() const {
  return fmt::format("{}://{}:{}", tls ? "https" : "http", host, port);
}

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return MakeError(ErrorKind::kInvalidArgument, fmt::format("URL '{}': {}", url, why));
  };
  HttpUrl out;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    out.tls = true;
    rest = url.substr(8);
  } else {
    return bad("expected http:// or https://");
  }
  auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    out.target = std::string(rest.substr(slash));
    if (out.target[0] == '?') out.target = "/" + out.target;
  }
  if (authority.find('@') != std::string_view::npos) return bad("credentials do not belong in it");
  std::string_view port_text;
  if (authority.starts_with("[")) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed [ in the host");
    out.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return bad("expected :port after ]");
      port_text = authority.substr(close + 2);
    }
  } else {
    auto colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("no host");
  out.port = out.tls ? 443 : 80;
  if (!port_text.empty()) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || p == 0 || p > 65535) {
      return bad("the port is not 1-65535");
    }
    out.port = static_cast<uint16_t>(p);
  }
  return out;
}

std::string HttpResult::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return v;
  }
  return "";
}

// One connection, and the private io_context its operations run on (each operation is
// asynchronous under the hood so that the stream's timeout applies).
class HttpClient::Connection {
 public:
  explicit Connection(bool tls) : tls_ctx_(ssl::context::tls_client) {
    if (tls) tls_ctx_.set_verify_mode(ssl::verify_peer);
  }

  boost::asio::io_context io;
  ssl::context tls_ctx_;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  bool used = false;  // has carried a request: a failure may be a keep-alive the server closed

  beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  // Runs the operation started by `start` to completion on `io`.
  template <class Start>
  beast::error_code Run(Start start) {
    beast::error_code result = boost::asio::error::would_block;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    return result;
  }
};

HttpClient::HttpClient(Options options, HttpUrl url)
    : options_(std::move(options)), url_(std::move(url)) {}

HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::Create(Options options) {
  PGF_TRY(auto url, ParseHttpUrl(options.url));
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(options), std::move(url)));
}

void HttpClient::Close() { conn_.reset(); }

Result<void> HttpClient::Connect() {
  conn_ = std::make_unique<Connection>(url_.tls);
  Connection& c = *conn_;
  auto fail = [&](std::string_view step, const beast::error_code& ec) {
    conn_.reset();
    return MakeError(ErrorKind::kConnection,
                     fmt::format("{}: {}: {}", url_.Origin(), step,
                                 ec == beast::error::timeout ? "timed out" : ec.message()));
  };
  if (url_.tls) {
    beast::error_code ec;
    if (options_.ca_file.empty()) {
      c.tls_ctx_.set_default_verify_paths(ec);
    } else {
      c.tls_ctx_.load_verify_file(options_.ca_file, ec);
    }
    if (ec) return fail("loading CA certificates", ec);
  }
  tcp::resolver resolver(c.io);
  beast::error_code ec;
  auto found = resolver.resolve(url_.host, std::to_string(url_.port), ec);
  if (ec) return fail("resolving the host", ec);
  std::vector<tcp::endpoint> endpoints;
  for (const auto& e : found) {
    if (options_.address_filter) {
      auto allowed = options_.address_filter(e.endpoint().address());
      if (!allowed) {
        conn_.reset();
        return allowed.error();
      }
    }
    endpoints.push_back(e.endpoint());
  }
  if (url_.tls) {
    c.secure.emplace(c.io, c.tls_ctx_);
  } else {
    c.plain.emplace(c.io);
  }
  c.tcp().expires_after(options_.timeout);
  ec = c.Run([&](auto done) { c.tcp().async_connect(endpoints, done); });
  if (ec) return fail("connecting", ec);
  if (url_.tls) {
    // SNI and host name verification.
    if (!SSL_set_tlsext_host_name(c.secure->native_handle(), url_.host.c_str())) {
      return fail("setting the TLS server name",
                  beast::error_code(static_cast<int>(::ERR_get_error()),
                                    boost::asio::error::get_ssl_category()));
    }
    c.secure->set_verify_callback(ssl::host_name_verification(url_.host));
    c.tcp().expires_after(options_.timeout);
    ec = c.Run([&](auto done) { c.secure->async_handshake(ssl::stream_base::client, done); });
    if (ec) return fail("TLS handshake", ec);
  }
  return boost::outcome_v2::success();
}

Result<HttpResult> HttpClient::Send(const HttpRequest& request) {
  for (int attempt = 0;; ++attempt) {
    const bool fresh = !conn_;
    if (fresh) PGF_TRY(Connect());
    Connection& c = *conn_;
    http::request<http::string_body> req(http::string_to_verb(request.method),
                                         request.target.empty() ? url_.target : request.target,
                                         11);
    req.set(http::field::host, url_.host);
    req.set(http::field::user_agent, "pgfanout");
    for (const auto& [k, v] : request.headers) req.set(k, v);
    req.body() = request.body;
    req.keep_alive(true);
    req.prepare_payload();
    c.tcp().expires_after(options_.timeout);
    beast::error_code ec =
        c.secure ? c.Run([&](auto done) { http::async_write(*c.secure, req, done); })
                 : c.Run([&](auto done) { http::async_write(*c.plain, req, done); });
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (!ec) {
      c.tcp().expires_after(options_.timeout);
      ec = c.secure ? c.Run([&](auto done) { http::async_read(*c.secure, c.buffer, parser, done); })
                    : c.Run([&](auto done) { http::async_read(*c.plain, c.buffer, parser, done); });
    }
    if (ec) {
      const bool reused = c.used;
      conn_.reset();
      // A kept-alive connection the server closed meanwhile: one fresh try.
      if (reused && !fresh && attempt == 0 && ec != beast::error::timeout) continue;
      return MakeError(ErrorKind::kConnection,
                       fmt::format("{}: {} {}: {}", url_.Origin(), request.method,
                                   request.target.empty() ? url_.target : request.target,
                                   ec == beast::error::timeout ? "timed out" : ec.message()));
    }
    c.used = true;
    auto res = parser.release();
    HttpResult out{.status = res.result_int(), .body = std::move(res.body())};
    for (const auto& field : res) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    if (!res.keep_alive()) conn_.reset();
    return out;
  }
}

}  // namespace pgfanout
