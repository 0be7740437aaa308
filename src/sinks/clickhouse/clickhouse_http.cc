#include "src/sinks/clickhouse/clickhouse_http.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include "src/sinks/clickhouse/server_errors.h"

namespace pgfanout::clickhouse {
namespace {

std::string Base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<std::unique_ptr<ClickHouseHttp>> ClickHouseHttp::Create(const Options& options) {
  PGF_TRY(auto client, HttpClient::Create({.url = options.url, .timeout = options.timeout}));
  return std::unique_ptr<ClickHouseHttp>(new ClickHouseHttp(options, std::move(client)));
}

ClickHouseHttp::ClickHouseHttp(Options options, std::unique_ptr<HttpClient> client)
    : options_(std::move(options)), client_(std::move(client)) {
  base_target_ = client_->url().target;
  base_target_.push_back(base_target_.find('?') == std::string::npos ? '?' : '&');
  if (!options_.user.empty() || !options_.password.empty()) {
    const std::string user = options_.user.empty() ? "default" : options_.user;
    authorization_ = "Basic " + Base64(user + ":" + options_.password);
  }
}

Result<std::string> ClickHouseHttp::Send(std::string_view what, const Settings& params,
                                         std::string body) {
  HttpRequest req{.method = "POST"};
  // No `database` parameter: the sink names every table with its database, and a default
  // database that does not exist yet would fail even the CREATE DATABASE.
  req.target = base_target_ + "wait_end_of_query=1";
  for (const auto& [k, v] : params) req.target += "&" + UrlEncode(k) + "=" + UrlEncode(v);
  req.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  if (!authorization_.empty()) req.headers.emplace_back("Authorization", authorization_);
  req.body = std::move(body);
  last_error_code_.reset();
  auto res = client_->Send(req);
  if (!res) {
    // The client's message repeats the request target (an insert's whole statement and
    // settings): keep only its reason.
    const std::string& m = res.error().message;
    const auto at = m.rfind(": ");
    return MakeError(res.error().kind, fmt::format("{}: no answer from ClickHouse at {}: {}", what,
                                                   client_->url().Origin(),
                                                   at == std::string::npos ? m : m.substr(at + 2)));
  }
  if (res.value().status == 200) return std::move(res.value().body);
  ServerError e = ReadServerError(res.value().status, res.value().body,
                                  res.value().Header("X-ClickHouse-Exception-Code"));
  last_error_code_ = e.code;
  std::string code = e.code ? fmt::format(", code {}", *e.code) : "";
  std::string column = e.column.empty() ? "" : fmt::format(" [column \"{}\"]", e.column);
  return MakeError(KindOf(e), fmt::format("{}: ClickHouse refused it (HTTP {}{}){}: {}", what,
                                          e.status, code, column, e.message));
}

Result<std::string> ClickHouseHttp::Query(std::string_view what, const std::string& sql,
                                          const Settings& settings) {
  return Send(what, settings, sql);
}

Result<void> ClickHouseHttp::Insert(std::string_view what, const std::string& insert,
                                    const std::string& data, const Settings& settings) {
  // The statement leads the body and the rows follow it: no URL length limit applies.
  std::string body;
  body.reserve(insert.size() + 1 + data.size());
  body.append(insert).push_back('\n');
  body.append(data);
  PGF_TRY(Send(what, settings, std::move(body)));
  return boost::outcome_v2::success();
}

}  // namespace pgfanout::clickhouse
