#include "src/sinks/nats/nats_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

namespace pgfanout::nats {
namespace {

using tcp = boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr const char* kInboxSid = "1";

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// What an -ERR means for the sink: the server closes the connection after most of them.
Error ServerError(std::string_view text, const std::string& address, bool have_credentials) {
  const std::string lower = Lower(text);
  const std::string said = fmt::format("NATS server {} said -ERR '{}'", address, text);
  if (lower.find("authorization violation") != std::string::npos) {
    return MakeError(
        ErrorKind::kMismatch,
        said + (have_credentials ? ": it refused the credentials (check user and "
                                   "password_file)"
                                 : ": it requires credentials (set user and password_file)"));
  }
  if (lower.find("permissions violation") != std::string::npos) {
    return MakeError(ErrorKind::kMismatch,
                     said +
                         ": grant the user the right to publish to the stream's subjects, "
                         "$JS.API.> and to subscribe to _INBOX.>");
  }
  if (lower.find("maximum payload") != std::string::npos) {
    return MakeError(ErrorKind::kMismatch, said + ": raise max_payload in the server's config");
  }
  if (lower.find("unknown protocol") != std::string::npos ||
      lower.find("invalid subject") != std::string::npos ||
      lower.find("parser error") != std::string::npos) {
    return MakeError(ErrorKind::kProtocol, said);
  }
  return MakeError(ErrorKind::kConnection, said);  // stale connection, slow consumer, …
}

}  // namespace

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

// One TCP connection and the I/O thread that runs it. State shared with the owner thread
// is guarded by mu_; the socket, parser and write buffer in flight belong to the I/O thread.
class NatsClient::Connection {
 public:
  Connection(std::string address, bool have_credentials)
      : address_(std::move(address)), have_credentials_(have_credentials) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Connection() {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    boost::system::error_code ec;
    socket_.close(ec);
  }

  Result<void> Open(const NatsAddress& a, Clock::time_point deadline) {
    boost::asio::post(io_, [this, host = a.host, port = std::to_string(a.port)] {
      resolver_.async_resolve(
          host, port, [this](boost::system::error_code ec, tcp::resolver::results_type results) {
            if (ec)
              return Fail(MakeError(ErrorKind::kConnection,
                                    fmt::format("cannot resolve {}: {}", address_, ec.message())));
            boost::asio::async_connect(
                socket_, results, [this](boost::system::error_code ec, const tcp::endpoint&) {
                  if (ec) {
                    return Fail(MakeError(
                        ErrorKind::kConnection,
                        fmt::format("cannot connect to NATS at {}: {}", address_, ec.message())));
                  }
                  boost::system::error_code ignored;
                  socket_.set_option(tcp::no_delay(true), ignored);
                  socket_.set_option(boost::asio::socket_base::keep_alive(true), ignored);
                  {
                    std::lock_guard lock(mu_);
                    connected_ = true;
                  }
                  StartRead();
                });
          });
    });
    auto r = Wait(deadline, "an INFO", [this] { return info_.has_value(); });
    std::lock_guard lock(mu_);
    if (!r && !error_ && !connected_) {
      return MakeError(ErrorKind::kConnection,
                       fmt::format("timed out connecting to NATS at {}", address_));
    }
    return r;
  }

  std::string Info() {
    std::lock_guard lock(mu_);
    return info_.value_or("");
  }
  bool LameDuck() const {
    std::lock_guard lock(mu_);
    return lame_duck_;
  }
  std::optional<Error> error() const {
    std::lock_guard lock(mu_);
    return error_;
  }
  uint64_t pongs() const {
    std::lock_guard lock(mu_);
    return pongs_;
  }

  // Hands bytes to the I/O thread.
  void Write(std::string& bytes) {
    {
      std::lock_guard lock(mu_);
      if (pending_.empty()) {
        pending_.swap(bytes);
      } else {
        pending_.append(bytes);
      }
      bytes.clear();
      if (writing_) return;
    }
    boost::asio::post(io_, [this] { StartWrite(); });
  }

  Result<void> WaitWritten(Clock::time_point deadline) {
    return Wait(deadline, "the write to finish", [this] { return !writing_ && pending_.empty(); });
  }
  Result<void> WaitPong(uint64_t count, Clock::time_point deadline) {
    return Wait(deadline, "a PONG", [this, count] { return pongs_ >= count; });
  }
  Result<NatsMessage> Receive(Clock::time_point deadline) {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, deadline, [this] { return !inbox_.empty() || error_; });
    if (!inbox_.empty()) {
      NatsMessage m = std::move(inbox_.front());
      inbox_.pop_front();
      return m;
    }
    if (error_) return *error_;
    return MakeError(ErrorKind::kConnection,
                     fmt::format("no reply from NATS at {} in time", address_));
  }

 private:
  // Waits for `ready` (evaluated under mu_), the connection's error, or the deadline.
  template <class Pred>
  Result<void> Wait(Clock::time_point deadline, std::string_view what, Pred ready) {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, deadline, [&] { return error_ || ready(); });
    if (error_) return *error_;
    if (!ready()) {
      return MakeError(ErrorKind::kConnection,
                       fmt::format("timed out waiting for {} from NATS at {}", what, address_));
    }
    return boost::outcome_v2::success();
  }

  // I/O thread only, from here on.
  void Fail(Error e) {
    {
      std::lock_guard lock(mu_);
      if (!error_) error_ = std::move(e);
    }
    boost::system::error_code ignored;
    socket_.close(ignored);
    cv_.notify_all();
  }

  void StartRead() {
    socket_.async_read_some(boost::asio::buffer(read_buf_),
                            [this](boost::system::error_code ec, size_t n) { OnRead(ec, n); });
  }

  void OnRead(boost::system::error_code ec, size_t n) {
    if (ec) {
      return Fail(MakeError(
          ErrorKind::kConnection,
          ec == boost::asio::error::eof
              ? fmt::format("NATS at {} closed the connection", address_)
              : fmt::format("connection to NATS at {} lost: {}", address_, ec.message())));
    }
    parser_.Feed(std::string_view(read_buf_.data(), n));
    bool notify = false;
    while (true) {
      auto op = parser_.Next();
      if (!op) return Fail(op.error().Wrap(address_));
      if (!op.value()) break;
      ServerOp& o = *op.value();
      std::unique_lock lock(mu_);
      if (!info_ && o.kind != ServerOpKind::kInfo) {
        lock.unlock();
        return Fail(MakeError(ErrorKind::kProtocol,
                              fmt::format("NATS at {} did not begin with INFO", address_)));
      }
      switch (o.kind) {
        case ServerOpKind::kInfo: {
          auto j = nlohmann::json::parse(o.text, nullptr, false);
          if (j.is_discarded() || !j.is_object()) {
            lock.unlock();
            return Fail(
                MakeError(ErrorKind::kProtocol,
                          fmt::format("NATS at {} sent an INFO that is not JSON", address_)));
          }
          if (!info_) info_ = o.text;
          if (j.value("ldm", false)) lame_duck_ = true;
          notify = true;
          break;
        }
        case ServerOpKind::kMsg:
          if (o.message.sid == kInboxSid) inbox_.push_back(std::move(o.message));
          notify = true;
          break;
        case ServerOpKind::kPing:
          pending_.append("PONG\r\n");
          lock.unlock();
          StartWrite();
          break;
        case ServerOpKind::kPong:
          ++pongs_;
          notify = true;
          break;
        case ServerOpKind::kOk:
          break;
        case ServerOpKind::kErr:
          lock.unlock();
          return Fail(ServerError(o.text, address_, have_credentials_));
      }
    }
    if (notify) cv_.notify_all();
    StartRead();
  }

  void StartWrite() {
    {
      std::lock_guard lock(mu_);
      if (writing_ || pending_.empty() || error_) return;
      writing_ = true;
      in_flight_.swap(pending_);
    }
    boost::asio::async_write(
        socket_, boost::asio::buffer(in_flight_), [this](boost::system::error_code ec, size_t) {
          if (ec) {
            return Fail(
                MakeError(ErrorKind::kConnection,
                          fmt::format("cannot write to NATS at {}: {}", address_, ec.message())));
          }
          in_flight_.clear();
          {
            std::lock_guard lock(mu_);
            writing_ = false;
          }
          cv_.notify_all();
          StartWrite();
        });
  }

  const std::string address_;
  const bool have_credentials_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  tcp::resolver resolver_{io_};
  tcp::socket socket_{io_};
  std::thread thread_;
  NatsParser parser_;
  std::array<char, 64 * 1024> read_buf_{};
  std::string in_flight_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Error> error_;
  bool connected_ = false;
  std::optional<std::string> info_;  // the first INFO
  bool lame_duck_ = false;
  uint64_t pongs_ = 0;
  std::deque<NatsMessage> inbox_;
  std::string pending_;
  bool writing_ = false;
};

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
  conn_ =
      std::make_unique<Connection>(address_, !options_.user.empty() || !options_.password.empty());
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
  std::string hello = ConnectLine(options_) + "SUB " + inbox_ + "* " + kInboxSid + "\r\nPING\r\n";
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
