#include "src/sinks/nats/nats_connection.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <nlohmann/json.hpp>

namespace pgfanout::nats {
namespace {

using tcp = boost::asio::ip::tcp;

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
        said + (have_credentials ? ": it refused the credentials (check user and password_file)"
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

NatsConnection::NatsConnection(std::string address, bool have_credentials)
    : address_(std::move(address)), have_credentials_(have_credentials) {
  thread_ = std::thread([this] { io_.run(); });
}

NatsConnection::~NatsConnection() {
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
  boost::system::error_code ec;
  socket_.close(ec);
}

Result<void> NatsConnection::Open(const NatsAddress& a, Clock::time_point deadline) {
  boost::asio::post(io_, [this, host = a.host, port = std::to_string(a.port)] {
    resolver_.async_resolve(
        host, port, [this](boost::system::error_code ec, tcp::resolver::results_type results) {
          if (ec) {
            return Fail(MakeError(ErrorKind::kConnection,
                                  fmt::format("cannot resolve {}: {}", address_, ec.message())));
          }
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

std::string NatsConnection::Info() const {
  std::lock_guard lock(mu_);
  return info_.value_or("");
}

bool NatsConnection::LameDuck() const {
  std::lock_guard lock(mu_);
  return lame_duck_;
}

std::optional<Error> NatsConnection::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

void NatsConnection::Write(std::string& bytes) {
  {
    std::lock_guard lock(mu_);
    if (pending_.empty()) {
      pending_.swap(bytes);
    } else {
      pending_.append(bytes);
    }
    bytes.clear();
    if (writing_) return;  // the write in progress takes it when it completes
  }
  boost::asio::post(io_, [this] { StartWrite(); });
}

Result<void> NatsConnection::WaitWritten(Clock::time_point deadline) {
  return Wait(deadline, "the write to finish", [this] { return !writing_ && pending_.empty(); });
}

Result<void> NatsConnection::WaitPong(uint64_t count, Clock::time_point deadline) {
  return Wait(deadline, "a PONG", [this, count] { return pongs_ >= count; });
}

Result<NatsMessage> NatsConnection::Receive(Clock::time_point deadline) {
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

template <class Pred>
Result<void> NatsConnection::Wait(Clock::time_point deadline, std::string_view what, Pred ready) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, deadline, [&] { return error_ || ready(); });
  if (error_) return *error_;
  if (!ready()) {
    return MakeError(ErrorKind::kConnection,
                     fmt::format("timed out waiting for {} from NATS at {}", what, address_));
  }
  return boost::outcome_v2::success();
}

void NatsConnection::Fail(Error e) {
  {
    std::lock_guard lock(mu_);
    if (!error_) error_ = std::move(e);
  }
  boost::system::error_code ignored;
  socket_.close(ignored);
  cv_.notify_all();
}

void NatsConnection::StartRead() {
  socket_.async_read_some(boost::asio::buffer(read_buf_),
                          [this](boost::system::error_code ec, size_t n) { OnRead(ec, n); });
}

void NatsConnection::OnRead(boost::system::error_code ec, size_t n) {
  if (ec) {
    return Fail(
        MakeError(ErrorKind::kConnection,
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
          return Fail(MakeError(ErrorKind::kProtocol,
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

void NatsConnection::StartWrite() {
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

}  // namespace pgfanout::nats
