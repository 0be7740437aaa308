#pragma once

#include <map>
#include <string>

namespace pgfanout::testing {

struct HttpReply {
  int status = 0;  // 0: no answer (connection refused, timeout); `body` says why
  std::string content_type;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
};

// One blocking GET to `address` ("127.0.0.1:8686") with a 10 s timeout. The Host header is
// `address` unless `headers` sets one.
HttpReply HttpGet(const std::string& address, const std::string& target,
                  const std::map<std::string, std::string>& headers = {});
// The same with another method ("POST"), and no body.
HttpReply HttpSend(const std::string& address, const std::string& method, const std::string& target,
                   const std::map<std::string, std::string>& headers = {});

}  // namespace pgfanout::testing
