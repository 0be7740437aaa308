#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/core/error.h"

namespace pgfanout::nats {

// A message the server delivered (MSG or HMSG).
struct NatsMessage {
  std::string subject;
  std::string sid;
  std::string reply;  // empty when the publisher gave none
  // HMSG only: the status of the header block's first line ("NATS/1.0 503" -> 503; 0 when
  // the line carries none) and its description.
  int status = 0;
  std::string description;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;

  // The first value of header `name` (names compare case-insensitively), or nullptr.
  const std::string* Header(std::string_view name) const;
};

enum class ServerOpKind { kInfo, kMsg, kPing, kPong, kOk, kErr };

// One protocol operation from the server. `text` is INFO's JSON or -ERR's message (its
// quotes removed); `message` is set for kMsg.
struct ServerOp {
  ServerOpKind kind = ServerOpKind::kOk;
  std::string text;
  NatsMessage message;
};

// Parses what a NATS server sends a client (the client protocol, docs.nats.io
// "Client Protocol"), strictly:
// - every control line ends in CRLF and is at most kMaxControlLine bytes;
// - operation names are case-insensitive (as the protocol says), fields are separated by
//   runs of spaces or tabs, byte counts are decimal without sign;
// - a payload is followed by CRLF; an HMSG header block starts with "NATS/1.0" and holds
//   "Name: value" lines ending in an empty line, within the header byte count;
// - anything else (an unknown operation, a missing field, a count past the limit) is a
//   kProtocol error that names the line. After an error the parser is spent: the
//   connection must be closed, as the stream's framing is lost.
//
// Not thread-safe; one connection's reader owns it.
class NatsParser {
 public:
  static constexpr size_t kMaxControlLine = 1 << 20;  // INFO of a large cluster stays far below

  // `max_payload`: the largest MSG/HMSG accepted (headers and payload together).
  explicit NatsParser(size_t max_payload = 64 << 20) : max_payload_(max_payload) {}

  // Appends bytes as they came off the socket (any split).
  void Feed(std::string_view bytes);
  // The next complete operation; nullopt when more bytes are needed.
  Result<std::optional<ServerOp>> Next();

  // Bytes fed but not yet consumed by Next().
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  Result<std::optional<ServerOp>> ParseMsg(std::string_view line, std::string_view args,
                                           bool with_headers, size_t line_end);

  size_t max_payload_;
  std::string buf_;
  size_t pos_ = 0;
  bool failed_ = false;
};

// Parses an HMSG header block ("NATS/1.0[ status[ description]]\r\n(Name: value\r\n)*\r\n")
// into `message`. Errors: kProtocol.
Result<void> ParseHeaderBlock(std::string_view block, NatsMessage& message);

}  // namespace pgfanout::nats
