#include "test/support/nats_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "src/sinks/nats/nats_client.h"
#include "src/sinks/nats/nats_parser.h"
#include "test/support/pg_server.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kBinary = "/usr/sbin/nats-server";

std::optional<std::string> Base64Decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string Quoted(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace

std::unique_ptr<NatsServer> NatsServer::Start(const Options& options) {
  std::unique_ptr<NatsServer> s(new NatsServer());
  s->options_ = options;
  char tmpl[] = "/tmp/pgfanout-test-nats-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    ADD_FAILURE() << "mkdtemp failed";
    return nullptr;
  }
  s->dir_ = tmpl;
  s->log_path_ = s->dir_ + "/nats-server.log";
  s->config_path_ = s->dir_ + "/nats-server.conf";
  s->port_ = FreePort();
  std::ofstream conf(s->config_path_);
  conf << fmt::format("listen: \"127.0.0.1:{}\"\nserver_name: {}\njetstream {{ store_dir: {} }}\n",
                      s->port_, Quoted(options.server_name), Quoted(s->dir_ + "/store"));
  if (!options.user.empty()) {
    conf << fmt::format("authorization {{ user: {}, password: {} }}\n", Quoted(options.user),
                        Quoted(options.password));
  }
  if (!options.cluster_name.empty()) {
    std::string routes;
    for (int p : options.route_ports) {
      routes += fmt::format("{}\"nats://127.0.0.1:{}\"", routes.empty() ? "" : ", ", p);
    }
    conf << fmt::format("cluster {{ name: {}, listen: \"127.0.0.1:{}\", routes: [{}] }}\n",
                        Quoted(options.cluster_name), options.cluster_port, routes);
  }
  for (const auto& line : options.config_lines) conf << line << "\n";
  conf.close();
  if (!s->Spawn()) return nullptr;
  if (!options.cluster_name.empty()) return s;  // StartCluster waits for all nodes together
  if (!s->WaitReady(/*wait_jetstream=*/true, 30s)) {
    ADD_FAILURE() << "nats-server did not become ready:\n" << s->LogTail();
    return nullptr;
  }
  return s;
}

std::vector<std::unique_ptr<NatsServer>> NatsServer::StartCluster(int nodes) {
  std::vector<int> cluster_ports;
  for (int i = 0; i < nodes; ++i) cluster_ports.push_back(FreePort());
  std::vector<std::unique_ptr<NatsServer>> out;
  for (int i = 0; i < nodes; ++i) {
    auto s = Start(Options{.server_name = fmt::format("n{}", i + 1),
                           .cluster_name = "pgfanout-test",
                           .cluster_port = cluster_ports[size_t(i)],
                           .route_ports = cluster_ports});
    if (!s) return {};
    out.push_back(std::move(s));
  }
  for (auto& s : out) {
    if (!s->WaitReady(/*wait_jetstream=*/true, 60s)) {
      ADD_FAILURE() << "JetStream cluster did not elect a meta leader; " << s->options_.server_name
                    << "'s log:\n"
                    << s->LogTail();
      return {};
    }
  }
  return out;
}

NatsServer::~NatsServer() {
  if (pid_ > 0) Stop(SIGKILL);
  if (!dir_.empty() && !::testing::Test::HasFailure() &&
      std::getenv("PGFANOUT_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string NatsServer::Url() const { return fmt::format("nats://127.0.0.1:{}", port_); }

std::string NatsServer::LogTail(size_t bytes) const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string log = ss.str();
  return log.substr(log.size() > bytes ? log.size() - bytes : 0);
}

bool NatsServer::Spawn() {
  pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed";
    return false;
  }
  if (pid == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    // Nothing else of the test's: an inherited descriptor (a build lock a test runner
    // holds, say) would stay held by a server that outlives a crashed test.
    for (int other = 3; other < 1024; ++other) ::close(other);
    ::execl(kBinary, kBinary, "-c", config_path_.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  pid_ = pid;
  return true;
}

bool NatsServer::Stop(int signal) {
  if (pid_ <= 0) return true;
  ::kill(pid_, signal);
  const auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  ADD_FAILURE() << "nats-server did not stop on signal " << signal;
  return false;
}

bool NatsServer::StartAgain(bool wait_jetstream) {
  if (pid_ > 0) return true;
  if (!Spawn()) return false;
  if (!WaitReady(wait_jetstream, 60s)) {
    ADD_FAILURE() << "nats-server did not come back:\n" << LogTail();
    return false;
  }
  return true;
}

bool NatsServer::WaitReady(bool wait_jetstream, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;  // exited
    }
    nats::NatsClient c({.servers = {Url()},
                        .user = options_.user,
                        .password = options_.password,
                        .timeout = 1000ms});
    if (c.Connect()) {
      if (!wait_jetstream) return true;
      auto reply = c.Request("$JS.API.INFO", "", 2000ms);
      if (reply && reply.value().status == 0) {
        auto j = nlohmann::json::parse(reply.value().payload, nullptr, false);
        if (j.is_object() && !j.contains("error")) return true;
      }
    }
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

std::optional<nlohmann::json> NatsServer::Api(const std::string& subject,
                                              const std::string& payload,
                                              std::string* error) const {
  nats::NatsClient c({.servers = {Url()},
                      .user = options_.user,
                      .password = options_.password,
                      .timeout = 5000ms});
  auto fail = [&](const std::string& why) -> std::optional<nlohmann::json> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (auto r = c.Connect(); !r) return fail(r.error().message);
  auto reply = c.Request(subject, payload, 10'000ms);
  if (!reply) return fail(reply.error().message);
  if (reply.value().status != 0) return fail(fmt::format("status {}", reply.value().status));
  auto j = nlohmann::json::parse(reply.value().payload, nullptr, false);
  if (j.is_discarded()) return fail("not JSON: " + reply.value().payload);
  return j;
}

std::optional<nlohmann::json> NatsServer::Publish(
    const std::string& subject, const std::vector<std::pair<std::string, std::string>>& headers,
    const std::string& data, std::string* error) const {
  nats::NatsClient c({.servers = {Url()},
                      .user = options_.user,
                      .password = options_.password,
                      .timeout = 5000ms});
  auto fail = [&](const std::string& why) -> std::optional<nlohmann::json> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (auto r = c.Connect(); !r) return fail(r.error().message);
  std::string block = "NATS/1.0\r\n";
  for (const auto& [k, v] : headers) block += k + ": " + v + "\r\n";
  block += "\r\n";
  const std::string reply = c.NewReply();
  c.Publish(subject, reply, block, data);
  if (auto r = c.Flush(Clock::now() + 5s); !r) return fail(r.error().message);
  auto m = c.Receive(Clock::now() + 10s);
  if (!m) return fail(m.error().message);
  if (m.value().status != 0) return fail(fmt::format("status {}", m.value().status));
  auto j = nlohmann::json::parse(m.value().payload, nullptr, false);
  if (j.is_discarded()) return fail("not JSON: " + m.value().payload);
  return j;
}

std::optional<std::vector<StoredMessage>> NatsServer::ReadStream(const std::string& stream,
                                                                 uint64_t after_seq,
                                                                 std::string* error) const {
  auto fail = [&](const std::string& why) -> std::optional<std::vector<StoredMessage>> {
    if (error) *error = why;
    return std::nullopt;
  };
  nats::NatsClient c({.servers = {Url()},
                      .user = options_.user,
                      .password = options_.password,
                      .timeout = 5000ms});
  if (auto r = c.Connect(); !r) return fail(r.error().message);
  auto info_reply = c.Request("$JS.API.STREAM.INFO." + stream, "", 10'000ms);
  if (!info_reply) return fail(info_reply.error().message);
  auto info = nlohmann::json::parse(info_reply.value().payload, nullptr, false);
  if (info.is_discarded() || info.contains("error") || !info.contains("state")) {
    return fail("stream info: " + info_reply.value().payload);
  }
  const uint64_t first =
      std::max<uint64_t>(info["state"].value("first_seq", uint64_t{1}), after_seq + 1);
  const uint64_t last = info["state"].value("last_seq", uint64_t{0});
  std::vector<StoredMessage> out;
  constexpr uint64_t kChunk = 512;
  for (uint64_t from = first; from <= last; from += kChunk) {
    const uint64_t to = std::min(last, from + kChunk - 1);
    std::map<uint64_t, uint64_t> seq_of;  // reply number -> sequence
    for (uint64_t seq = from; seq <= to; ++seq) {
      uint64_t number = 0;
      const std::string reply = c.NewReply(&number);
      seq_of[number] = seq;
      c.Publish("$JS.API.STREAM.MSG.GET." + stream, reply, "", fmt::format("{{\"seq\":{}}}", seq));
    }
    if (auto r = c.Flush(Clock::now() + 10s); !r) return fail(r.error().message);
    std::map<uint64_t, StoredMessage> got;
    for (size_t pending = seq_of.size(); pending > 0;) {
      auto m = c.Receive(Clock::now() + 10s);
      if (!m) return fail(m.error().message);
      auto number = c.ReplyNumber(m.value().subject);
      if (!number || !seq_of.count(*number)) continue;
      --pending;
      auto j = nlohmann::json::parse(m.value().payload, nullptr, false);
      if (j.is_discarded()) return fail("MSG.GET reply is not JSON: " + m.value().payload);
      if (j.contains("error")) {
        if (j["error"].value("err_code", 0) == 10037) continue;  // deleted or aged out
        return fail("MSG.GET: " + j["error"].dump());
      }
      const auto& msg = j["message"];
      StoredMessage sm{.seq = msg.value("seq", uint64_t{0}), .subject = msg.value("subject", "")};
      auto data = Base64Decode(msg.value("data", ""));
      auto hdrs = Base64Decode(msg.value("hdrs", ""));
      if (!data || !hdrs) return fail("MSG.GET reply with bad base64: " + m.value().payload);
      sm.data = std::move(*data);
      if (!hdrs->empty()) {
        nats::NatsMessage parsed;
        if (auto r = nats::ParseHeaderBlock(*hdrs, parsed); !r) return fail(r.error().message);
        sm.headers = parsed.headers;
        if (auto id = parsed.Header("Nats-Msg-Id")) sm.msg_id = *id;
      }
      got[sm.seq] = std::move(sm);
    }
    for (auto& [seq, m] : got) out.push_back(std::move(m));
  }
  return out;
}

}  // namespace pgfanout::testing
