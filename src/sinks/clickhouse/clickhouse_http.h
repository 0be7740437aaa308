#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/core/error.h"
#include "src/httpclient/http_client.h"

namespace pgfanout::clickhouse {

// Queries and inserts over ClickHouse's HTTP interface, on one kept-alive connection.
//
// Credentials travel in an Authorization: Basic header (ClickHouse 18.16 and later read
// it), never in the URL, so no query log, proxy log or error message shows the password.
// Every request asks wait_end_of_query=1: the server answers only when the statement has
// finished, so HTTP 200 means done (without it an error in mid-answer arrives as a 200).
//
// Errors: kConnection when there is no answer (connect, TLS, timeout, reset); an answer
// other than 200 as KindOf(ReadServerError(...)) with "ClickHouse refused it (HTTP s,
// code c): message" after `what`. Threads: one owner (the sink's runner).
class ClickHouseHttp {
 public:
  struct Options {
    std::string url;   // http(s)://host:port[/path]
    std::string user;  // "" : the server's default user
    std::string password;
    std::chrono::milliseconds timeout{10'000};
  };
  using Settings = std::vector<std::pair<std::string, std::string>>;

  static Result<std::unique_ptr<ClickHouseHttp>> Create(const Options& options);

  // Runs `sql` (sent as the request body) and returns the answer's body. `what` says what
  // it was for, in messages ("reading the sink's position").
  Result<std::string> Query(std::string_view what, const std::string& sql,
                            const Settings& settings = {});

  // Sends `data` as the rows of `insert` ("INSERT INTO db.t (a, b) FORMAT JSONEachRow"),
  // the statement first in the body. Success means the server has written every row.
  Result<void> Insert(std::string_view what, const std::string& insert, const std::string& data,
                      const Settings& settings = {});

  // The ClickHouse error code of the last request it refused; nullopt after a success or
  // when there was no answer.
  std::optional<int> last_error_code() const { return last_error_code_; }

 private:
  ClickHouseHttp(Options options, std::unique_ptr<HttpClient> client);
  Result<std::string> Send(std::string_view what, const Settings& params, std::string body);

  Options options_;
  std::unique_ptr<HttpClient> client_;
  std::string base_target_;  // the URL's path and query, with '?' or '&' to append to
  std::string authorization_;
  std::optional<int> last_error_code_;
};

// "a b&c" -> "a%20b%26c": unreserved characters stay, everything else is %XX.
std::string UrlEncode(std::string_view text);

}  // namespace pgfanout::clickhouse
