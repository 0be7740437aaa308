#include "test/support/clickhouse_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace pgfanout::testing {
namespace {

constexpr const char* kBinary = "/usr/sbin/clickhouse-server";

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string UserXml(const std::string& name, const std::string& password) {
  return fmt::format(
      "    <{0}><password>{1}</password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>"
      "<profile>default</profile><quota>default</quota></{0}>\n",
      name, XmlEscape(password));
}

// Unescapes one TabSeparated field (the server's text form of a value).
std::optional<std::string> TsvField(const std::string& f) {
  if (f == "\\N") return std::nullopt;
  std::string out;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '\\' || i + 1 == f.size()) {
      out.push_back(f[i]);
      continue;
    }
    switch (char e = f[++i]) {
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case '0':
        out.push_back('\0');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      default:
        out.push_back(e);
    }
  }
  return out;
}

}  // namespace

// No part is ever small enough to merge (MergeTreeSettings of 18.16 and later).
constexpr const char* kNoMerges = R"xml(
  <merge_tree>
    <max_bytes_to_merge_at_max_space_in_pool>1</max_bytes_to_merge_at_max_space_in_pool>
    <max_bytes_to_merge_at_min_space_in_pool>1</max_bytes_to_merge_at_min_space_in_pool>
  </merge_tree>)xml";

std::unique_ptr<ClickHouseServer> ClickHouseServer::Start(const Options& options) {
  std::unique_ptr<ClickHouseServer> s(new ClickHouseServer());
  char tmpl[] = "/tmp/pgfanout-test-ch-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    ADD_FAILURE() << "mkdtemp failed";
    return nullptr;
  }
  s->dir_ = tmpl;
  s->port_ = FreePort();
  const std::string& d = s->dir_;
  std::ofstream(d + "/config.xml") << fmt::format(R"xml(<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>{0}/log/clickhouse-server.log</log>
    <errorlog>{0}/log/clickhouse-server.err.log</errorlog>
    <size>100M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{1}</http_port>
  <path>{0}/data/</path>
  <tmp_path>{0}/tmp/</tmp_path>
  <user_files_path>{0}/user_files/</user_files_path>
  <format_schema_path>{0}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <keep_alive_timeout>10</keep_alive_timeout>{2}
</yandex>
)xml",
                                                  d, s->port_,
                                                  options.no_merges ? kNoMerges : "");
  std::string users = UserXml("default", "");
  for (const auto& [name, password] : options.users) users += UserXml(name, password);
  std::ofstream(d + "/users.xml") << fmt::format(R"xml(<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
{}  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
)xml",
                                                 users);
  std::filesystem::create_directories(d + "/log");
  if (!s->Launch()) return nullptr;
  return s;
}

bool ClickHouseServer::Launch() {
  const std::string config = "--config-file=" + dir_ + "/config.xml";
  const std::string out = dir_ + "/log/stdout.log";
  pid_ = ::fork();
  if (pid_ < 0) {
    ADD_FAILURE() << "fork failed";
    return false;
  }
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (::chdir(dir_.c_str()) != 0) ::_exit(126);
    ::execl(kBinary, kBinary, config.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      ADD_FAILURE() << "clickhouse-server exited at start; see " << dir_ << "/log";
      return false;
    }
    if (Post("SELECT 1").body == "1\n") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "clickhouse-server did not answer within 60 s; see " << dir_ << "/log";
  return false;
}

bool ClickHouseServer::Stop() {
  if (pid_ <= 0) return true;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 300; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return false;
}

bool ClickHouseServer::StartAgain() { return pid_ > 0 || Launch(); }

ClickHouseServer::~ClickHouseServer() {
  Stop();
  if (!dir_.empty() && std::getenv("PGFANOUT_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string ClickHouseServer::Url() const { return fmt::format("http://127.0.0.1:{}", port_); }

ClickHouseServer::Reply ClickHouseServer::Post(const std::string& sql, const std::string& user,
                                               const std::string& password) const {
  namespace beast = boost::beast;
  namespace http = beast::http;
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(60));
    stream.connect(resolver.resolve("127.0.0.1", std::to_string(port_)));
    http::request<http::string_body> req(http::verb::post, "/?wait_end_of_query=1", 11);
    req.set(http::field::host, "127.0.0.1");
    if (!user.empty()) {
      const std::string plain = user + ":" + password;
      std::string encoded(beast::detail::base64::encoded_size(plain.size()), '\0');
      encoded.resize(beast::detail::base64::encode(encoded.data(), plain.data(), plain.size()));
      req.set(http::field::authorization, "Basic " + encoded);
    }
    req.body() = sql;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    http::read(stream, buffer, parser);
    beast::error_code ignored;
    stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    auto res = parser.release();
    return Reply{.status = static_cast<int>(res.result_int()), .body = res.body()};
  } catch (const std::exception& e) {
    return Reply{.status = 0, .body = e.what()};
  }
}

void ClickHouseServer::Exec(const std::string& sql) const {
  Reply r = Post(sql);
  if (r.status != 200)
    ADD_FAILURE() << "ClickHouse: HTTP " << r.status << ": " << r.body << "\n" << sql;
}

std::optional<std::vector<Row>> ClickHouseServer::TryRows(const std::string& sql,
                                                          std::string* error) const {
  Reply r = Post(sql + " FORMAT TabSeparated");
  if (r.status != 200) {
    if (error) *error = fmt::format("HTTP {}: {}", r.status, r.body);
    return std::nullopt;
  }
  std::vector<Row> rows;
  size_t at = 0;
  while (at < r.body.size()) {
    size_t end = r.body.find('\n', at);
    if (end == std::string::npos) end = r.body.size();
    const std::string line = r.body.substr(at, end - at);
    Row row;
    size_t f = 0;
    while (true) {
      size_t tab = line.find('\t', f);
      row.push_back(
          TsvField(line.substr(f, tab == std::string::npos ? std::string::npos : tab - f)));
      if (tab == std::string::npos) break;
      f = tab + 1;
    }
    rows.push_back(std::move(row));
    at = end + 1;
  }
  return rows;
}

std::vector<Row> ClickHouseServer::Rows(const std::string& sql) const {
  std::string error;
  auto rows = TryRows(sql, &error);
  if (!rows) {
    ADD_FAILURE() << "ClickHouse: " << error << "\n" << sql.substr(0, 500);
    return {};
  }
  return *rows;
}

std::string ClickHouseServer::Scalar(const std::string& sql) const {
  auto rows = Rows(sql);
  if (rows.empty() || rows[0].empty() || !rows[0][0]) return "";
  return *rows[0][0];
}

}  // namespace pgfanout::testing
