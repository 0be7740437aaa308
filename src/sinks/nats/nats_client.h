#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/error.h"
#include "src/sinks/nats/nats_parser.h"

namespace pgfanout::nats {

class NatsConnection;

// host and port of a nats:// URL. Errors: kInvalidArgument.
struct NatsAddress {
  std::string host;
  uint16_t port = 4222;
  std::string ToString() const;  // "host:port" ("[::1]:4222"), for messages
};
Result<NatsAddress> ParseNatsUrl(std::string_view url);

// What the server's INFO said that this client uses.
struct ServerInfo {
  std::string server_id;
  std::string server_name;
  std::string version;
  size_t max_payload = 1 << 20;
  bool headers = false;
  bool jetstream = false;
  bool lame_duck = false;  // "ldm": the server is shutting down; move to another
};

// A minimal NATS client for one sink (the client protocol over TCP, docs.nats.io "Client
// Protocol"): INFO/CONNECT (verbose and pedantic off, headers and no_responders on,
// user/password when given), PING/PONG (the server's PINGs are answered at once, also
// while the owner is busy elsewhere), one subscription to the reply inbox
// `_INBOX.<random>.*`, HPUB/PUB with headers, MSG/HMSG through a strict parser, -ERR.
// Not supported: TLS (a server that requires it is refused), tokens, NKeys and JWTs, other
// subscriptions, the cluster's advertised connect_urls.
//
// Threads: a blocking API for one owner thread; an I/O thread of the client's own runs the
// socket (Boost.Asio) so that reading and writing overlap and PINGs are answered while the
// owner waits or is idle.
//
// Errors: kConnection for a connection refused, lost or timed out, and for -ERRs after
// which the server closes it (Stale Connection, Slow Consumer, …); kMismatch for what a
// person must fix (credentials refused, a permission missing, TLS required, a server
// without headers); kProtocol for bytes that break the protocol. After any error the
// connection is closed: Connect() again. The password never appears in a message.
class NatsClient {
 public:
  struct Options {
    std::vector<std::string> servers;  // nats:// URLs, tried in order from a rotating start
    std::string user;
    std::string password;
    std::string name = "pgfanout";              // the connection's name on the server
    std::chrono::milliseconds timeout{10'000};  // connect + handshake, per server
  };

  explicit NatsClient(Options options);
  ~NatsClient();
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  // Connects to the first server of the list that accepts, starting after the one whose
  // connection was last lost (failover). Closes any current connection first.
  Result<void> Connect();
  // Whether a connection is up and usable: connected, no error since, not in lame duck mode.
  bool healthy() const;
  // Closes the connection; Connect() may follow. Idempotent.
  void Close();

  const ServerInfo& server() const { return info_; }
  // "host:port" of the current (or last) server, for messages.
  const std::string& server_address() const { return address_; }

  // A reply subject under this connection's inbox, and its number (see ReplyNumber()).
  std::string NewReply(uint64_t* number = nullptr);
  // The number of a reply subject NewReply() made on this connection, else nullopt.
  std::optional<uint64_t> ReplyNumber(std::string_view subject) const;

  // Queues a message (HPUB when `headers` is non-empty: a complete header block, from
  // NATS/1.0 to the empty line). Nothing is sent before Send() or Flush().
  void Publish(std::string_view subject, std::string_view reply, std::string_view headers,
               std::string_view payload);
  // Bytes queued by Publish() and not yet handed to Send().
  size_t queued() const { return out_.size(); }
  // Hands the queued bytes to the I/O thread without waiting.
  Result<void> Send();
  // Send(), then waits until every byte handed over is written to the socket.
  Result<void> Flush(std::chrono::steady_clock::time_point deadline);
  // The next message delivered to the inbox. Errors: kConnection "no reply in time" when
  // `deadline` passes first, or the connection's error.
  Result<NatsMessage> Receive(std::chrono::steady_clock::time_point deadline);
  // Publishes `payload` to `subject` with a reply subject and waits for the reply (other
  // inbox messages that arrive first are dropped).
  Result<NatsMessage> Request(std::string_view subject, std::string_view payload,
                              std::chrono::milliseconds timeout);

 private:
  Result<void> ConnectTo(size_t index);

  Options options_;
  std::vector<NatsAddress> addresses_;
  std::optional<Error> bad_url_;
  size_t next_server_ = 0;                // where the next Connect() starts
  size_t current_ = 0;                    // the server connected to
  std::unique_ptr<NatsConnection> conn_;  // nats_connection.h
  ServerInfo info_;
  std::string address_;
  std::string inbox_;  // "_INBOX.<random>." (with the trailing dot)
  uint64_t next_reply_ = 1;
  std::string out_;
  bool failed_ = false;  // an operation on the current connection failed or timed out
};

// The CONNECT line the client sends (exposed for tests: the password appears in it only).
std::string ConnectLine(const NatsClient::Options& options);

}  // namespace pgfanout::nats
