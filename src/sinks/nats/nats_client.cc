#include "src/sinks/nats/nats_client.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <random>

#include "src/sinks/nats/nats_connection.h"

namespace pgfanout::nats {
using Clock = std::chrono::steady_clock;

std::string NatsAddress::ToString() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                             : fmt::format("{}:{}", host, port);
}

Result<NatsAddress> ParseNatsUrl(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return MakeError(ErrorKind::kInvalidArgument, fmt::format("NATS URL '{}': {}", url, why));
  };
  constexpr std::string_view kScheme = "nats://";
  if (url.substr(0, kScheme.size()) != kScheme) return bad("expected nats://host[:port]");
  std::string_view rest = url.substr(kScheme.size());
  rest = rest.substr(0, rest.find('/'));
  if (rest.find('@') != std::string_view::npos)
    return bad("credentials belong in user and password_file");
  NatsAddress a;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("unclosed [");
    a.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("expected :port after ]");
      port = rest.substr(1);
    }
  } else {
    size_t colon = rest.find(':');
    a.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  if (a.host.empty()) return bad("no host");
  if (!port.empty() || rest.find(':') != std::string_view::npos) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
        value > 65535) {
      return bad("the port is not a number from 1 to 65535");
    }
    a.port = static_cast<uint16_t>(value);
  }
  return a;
}

std::string ConnectLine(const NatsClient::Options& options) {
  nlohmann::json c = {{"verbose", false},     {"pedantic", false}, {"tls_required", false},
                      {"name", options.name}, {"lang", "cpp"},     {"version", "pgfanout"},
                      {"protocol", 1},        {"headers", true},   {"no_responders", true},
                      {"echo", false}};
  if (!options.user.empty()) {
    c["user"] = options.user;
    c["pass"] = options.password;
  } else if (!options.password.empty()) {
    c["auth_token"] = options.password;  // password_file without a user: a token
  }
  return "CONNECT " + c.dump() + "\r\n";
}

NatsClient::NatsClient(Options options) : options_(std::move(options)) {
  for (const auto& url : options_.servers) {
    auto a = ParseNatsUrl(url);
    if (!a) {
      bad_url_ = a.error();
      break;
    }
    addresses_.push_back(std::move(a).value());
  }
  if (addresses_.empty() && !bad_url_) {
    bad_url_ = MakeError(ErrorKind::kInvalidArgument, "no NATS server URL given");
  }
}

NatsClient::~NatsClient() { Close(); }

void NatsClient::Close() {
  if (!conn_) return;
  // A server that failed us is not the first one tried next time (failover).
  if (conn_->error() || failed_) next_server_ = (current_ + 1) % addresses_.size();
  conn_.reset();
  failed_ = false;
  out_.clear();
}

bool NatsClient::healthy() const { return conn_ && !conn_->error() && !conn_->LameDuck(); }

Result<void> NatsClient::Connect() {
  Close();
  if (bad_url_) return *bad_url_;
  std::optional<Error> worst;
  std::string tried;
  for (size_t k = 0; k < addresses_.size(); ++k) {
    const size_t i = (next_server_ + k) % addresses_.size();
    auto r = ConnectTo(i);
    if (r) {
      current_ = i;
      next_server_ = i;
      return r;
    }
    conn_.reset();
    tried += (tried.empty() ? "" : "; ") + r.error().message;
    // What a person must fix outranks a server that is merely down.
    if (!worst ||
        (worst->kind == ErrorKind::kConnection && r.error().kind != ErrorKind::kConnection)) {
      worst = r.error();
    }
  }
  if (addresses_.size() == 1) return *worst;
  return MakeError(worst->kind, "no NATS server took the connection: " + tried);
}

Result<void> NatsClient::ConnectTo(size_t index) {
  const NatsAddress& a = addresses_[index];
  address_ = a.ToString();
  const auto deadline = Clock::now() + options_.timeout;
  conn_ = std::make_unique<NatsConnection>(address_,
                                           !options_.user.empty() || !options_.password.empty());
  PGF_TRY(conn_->Open(a, deadline));
  auto j = nlohmann::json::parse(conn_->Info(), nullptr, false);
  try {
    info_ = ServerInfo{.server_id = j.value("server_id", ""),
                       .server_name = j.value("server_name", ""),
                       .version = j.value("version", ""),
                       .max_payload = j.value("max_payload", size_t{1} << 20),
                       .headers = j.value("headers", false),
                       .jetstream = j.value("jetstream", false),
                       .lame_duck = j.value("ldm", false)};
    if (j.value("tls_required", false)) {
      return MakeError(ErrorKind::kMismatch,
                       fmt::format("NATS at {} requires TLS, which pgfanout's NATS client does "
                                   "not speak; allow plain connections on a listener it can reach",
                                   address_));
    }
  } catch (const nlohmann::json::exception& e) {
    return MakeError(ErrorKind::kProtocol,
                     fmt::format("NATS at {} sent an INFO with a field of the wrong type: {}",
                                 address_, e.what()));
  }
  if (!info_.headers) {
    return MakeError(ErrorKind::kMismatch,
                     fmt::format("NATS at {} ({}) does not support headers, which JetStream "
                                 "deduplication needs (nats-server 2.2 or later)",
                                 address_, info_.version));
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr std::string_view kAlphabet =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  inbox_ = "_INBOX.";
  for (int i = 0; i < 22; ++i) inbox_.push_back(kAlphabet[rng() % kAlphabet.size()]);
  inbox_.push_back('.');
  std::string hello =
      ConnectLine(options_) + "SUB " + inbox_ + "* " + NatsConnection::kInboxSid + "\r\nPING\r\n";
  conn_->Write(hello);
  // The PONG says CONNECT was accepted (verbose off: a refusal comes as -ERR instead).
  PGF_TRY(conn_->WaitPong(1, deadline));
  return boost::outcome_v2::success();
}

std::string NatsClient::NewReply(uint64_t* number) {
  const uint64_t n = next_reply_++;
  if (number) *number = n;
  return fmt::format("{}{}", inbox_, n);
}

std::optional<uint64_t> NatsClient::ReplyNumber(std::string_view subject) const {
  if (inbox_.empty() || subject.substr(0, inbox_.size()) != inbox_) return std::nullopt;
  std::string_view digits = subject.substr(inbox_.size());
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return n;
}

void NatsClient::Publish(std::string_view subject, std::string_view reply, std::string_view headers,
                         std::string_view payload) {
  auto it = std::back_inserter(out_);
  const std::string_view sep = reply.empty() ? "" : " ";
  if (headers.empty()) {
    fmt::format_to(it, "PUB {}{}{} {}\r\n", subject, sep, reply, payload.size());
  } else {
    fmt::format_to(it, "HPUB {}{}{} {} {}\r\n", subject, sep, reply, headers.size(),
                   headers.size() + payload.size());
    out_.append(headers);
  }
  out_.append(payload);
  out_.append("\r\n");
}

Result<void> NatsClient::Send() {
  if (!conn_) return MakeError(ErrorKind::kConnection, "not connected to NATS");
  if (auto e = conn_->error()) {
    failed_ = true;
    return *e;
  }
  if (!out_.empty()) conn_->Write(out_);
  return boost::outcome_v2::success();
}

Result<void> NatsClient::Flush(Clock::time_point deadline) {
  PGF_TRY(Send());
  auto r = conn_->WaitWritten(deadline);
  if (!r) failed_ = true;
  return r;
}

Result<NatsMessage> NatsClient::Receive(Clock::time_point deadline) {
  if (!conn_) return MakeError(ErrorKind::kConnection, "not connected to NATS");
  auto r = conn_->Receive(deadline);
  if (!r) failed_ = true;
  return r;
}

Result<NatsMessage> NatsClient::Request(std::string_view subject, std::string_view payload,
                                        std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string reply = NewReply();
  Publish(subject, reply, "", payload);
  PGF_TRY(Flush(deadline));
  while (true) {
    PGF_TRY(auto m, Receive(deadline));
    if (m.subject == reply) return m;
  }
}

}  // namespace pgfanout::nats
