#pragma once

#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "src/core/error.h"
#include "src/sinks/nats/nats_client.h"
#include "src/sinks/nats/nats_parser.h"

namespace pgfanout::nats {

// One TCP connection to a NATS server and the I/O thread that runs it (NatsClient's
// transport). The I/O thread keeps a read outstanding for the connection's life, parses
// what arrives, answers PINGs at once, queues inbox messages (subscription kInboxSid) for
// Receive(), and writes what Write() hands it; the first error (a read or write failure, a
// protocol error, an -ERR) is kept, closes the socket and wakes every waiter.
//
// Threads: the methods below are for one owner thread; state shared with the I/O thread
// is guarded by mu_. Destruction stops the I/O thread and closes the socket.
class NatsConnection {
 public:
  static constexpr const char* kInboxSid = "1";
  using Clock = std::chrono::steady_clock;

  // `address` names the server in messages; `have_credentials` picks the hint an
  // Authorization Violation gets.
  NatsConnection(std::string address, bool have_credentials);
  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  // Resolves and connects, and waits for the server's first INFO. kConnection on failure
  // or when `deadline` passes; kProtocol when the server begins with anything else.
  Result<void> Open(const NatsAddress& address, Clock::time_point deadline);
  std::string Info() const;  // the first INFO's JSON
  bool LameDuck() const;     // an INFO said "ldm": the server is going away
  std::optional<Error> error() const;

  // Hands `bytes` to the I/O thread (and leaves `bytes` empty).
  void Write(std::string& bytes);
  // Waits until everything handed over is written.
  Result<void> WaitWritten(Clock::time_point deadline);
  // Waits until the server has sent `count` PONGs on this connection.
  Result<void> WaitPong(uint64_t count, Clock::time_point deadline);
  // The next inbox message; messages that arrived before an error are delivered first.
  Result<NatsMessage> Receive(Clock::time_point deadline);

 private:
  // Waits for `ready` (evaluated under mu_), the connection's error, or the deadline.
  template <class Pred>
  Result<void> Wait(Clock::time_point deadline, std::string_view what, Pred ready);

  // I/O thread only.
  void Fail(Error e);
  void StartRead();
  void OnRead(boost::system::error_code ec, size_t n);
  void StartWrite();

  const std::string address_;
  const bool have_credentials_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  boost::asio::ip::tcp::resolver resolver_{io_};
  boost::asio::ip::tcp::socket socket_{io_};
  std::thread thread_;
  NatsParser parser_;
  std::array<char, 64 * 1024> read_buf_{};
  std::string in_flight_;  // the write in progress

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Error> error_;
  bool connected_ = false;
  std::optional<std::string> info_;  // the first INFO
  bool lame_duck_ = false;
  uint64_t pongs_ = 0;
  std::deque<NatsMessage> inbox_;
  std::string pending_;  // handed over, not yet being written
  bool writing_ = false;
};

}  // namespace pgfanout::nats
