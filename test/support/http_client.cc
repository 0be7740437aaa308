#include "test/support/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

namespace pgfanout::testing {

HttpReply HttpGet(const std::string& address, const std::string& target,
                  const std::map<std::string, std::string>& headers) {
  return HttpSend(address, "GET", target, headers);
}

HttpReply HttpSend(const std::string& address, const std::string& method, const std::string& target,
                   const std::map<std::string, std::string>& headers) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  auto colon = address.rfind(':');
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(resolver.resolve(address.substr(0, colon), address.substr(colon + 1)));
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, address);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    beast::error_code ignored;
    stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    HttpReply reply{.status = static_cast<int>(res.result_int()),
                    .content_type = std::string(res[http::field::content_type]),
                    .body = res.body()};
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      reply.headers[name] = std::string(field.value());
    }
    return reply;
  } catch (const std::exception& e) {
    return HttpReply{.status = 0, .body = e.what()};
  }
}

}  // namespace pgfanout::testing
