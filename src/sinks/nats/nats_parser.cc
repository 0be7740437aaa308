#include "src/sinks/nats/nats_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace pgfanout::nats {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The line as a person can read it in an error message: at most 120 bytes, control
// characters escaped.
std::string Quote(std::string_view line) {
  std::string out;
  for (char c : line.substr(0, 120)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out.push_back(c);
    }
  }
  if (line.size() > 120) out += "…";
  return "'" + out + "'";
}

Error Malformed(std::string_view what, std::string_view line) {
  return MakeError(ErrorKind::kProtocol,
                   fmt::format("NATS server sent a malformed {}: {}", what, Quote(line)));
}

// Splits on runs of blanks (the server writes "MSG subj 1  24" with two).
std::vector<std::string_view> Fields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsBlank(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !IsBlank(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::optional<size_t> Count(std::string_view s) {
  if (s.empty() || s.size() > 12) return std::nullopt;  // 12 digits: far past any payload
  size_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

const std::string* NatsMessage::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsNoCase(k, name)) return &v;
  }
  return nullptr;
}

void NatsParser::Feed(std::string_view bytes) {
  // Drop what was consumed once it is most of the buffer, so the buffer stays about one
  // operation long however long the connection lives.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ > 65536)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<ServerOp>> NatsParser::Next() {
  if (failed_) {
    return MakeError(ErrorKind::kProtocol, "NATS parser used after a protocol error");
  }
  auto fail = [this](Error e) -> Result<std::optional<ServerOp>> {
    failed_ = true;
    return e;
  };
  const size_t nl = buf_.find('\n', pos_);
  if (nl == std::string::npos) {
    if (buffered() > kMaxControlLine) {
      return fail(
          Malformed(fmt::format("control line (over {} bytes without CRLF)", kMaxControlLine),
                    std::string_view(buf_).substr(pos_, 40)));
    }
    return std::optional<ServerOp>();
  }
  std::string_view line(buf_.data() + pos_, nl - pos_);
  if (line.empty() || line.back() != '\r') {
    return fail(Malformed("control line (not ended by CRLF)", line));
  }
  line.remove_suffix(1);
  if (line.size() > kMaxControlLine) return fail(Malformed("control line (too long)", line));
  const size_t name_end = std::find_if(line.begin(), line.end(), IsBlank) - line.begin();
  const std::string_view name = line.substr(0, name_end);
  const std::string_view args = line.substr(name_end);
  const size_t line_end = nl + 1;

  auto simple = [&](ServerOpKind kind, std::string_view what) -> Result<std::optional<ServerOp>> {
    if (!TrimBlanks(args).empty()) return fail(Malformed(what, line));
    pos_ = line_end;
    return std::optional<ServerOp>(ServerOp{.kind = kind});
  };
  if (EqualsNoCase(name, "PING")) return simple(ServerOpKind::kPing, "PING");
  if (EqualsNoCase(name, "PONG")) return simple(ServerOpKind::kPong, "PONG");
  if (EqualsNoCase(name, "+OK")) return simple(ServerOpKind::kOk, "+OK");
  if (EqualsNoCase(name, "INFO")) {
    std::string_view json = TrimBlanks(args);
    if (json.empty() || json.front() != '{' || json.back() != '}') {
      return fail(Malformed("INFO (expected a JSON object)", line));
    }
    pos_ = line_end;
    return std::optional<ServerOp>(
        ServerOp{.kind = ServerOpKind::kInfo, .text = std::string(json)});
  }
  if (EqualsNoCase(name, "-ERR")) {
    std::string_view text = TrimBlanks(args);
    if (text.size() >= 2 && text.front() == '\'' && text.back() == '\'') {
      text = text.substr(1, text.size() - 2);
    }
    pos_ = line_end;
    return std::optional<ServerOp>(ServerOp{.kind = ServerOpKind::kErr, .text = std::string(text)});
  }
  if (EqualsNoCase(name, "MSG")) return ParseMsg(line, args, false, line_end);
  if (EqualsNoCase(name, "HMSG")) return ParseMsg(line, args, true, line_end);
  return fail(Malformed("operation (unknown)", line));
}

Result<std::optional<ServerOp>> NatsParser::ParseMsg(std::string_view line, std::string_view args,
                                                     bool with_headers, size_t line_end) {
  auto fail = [this](Error e) -> Result<std::optional<ServerOp>> {
    failed_ = true;
    return e;
  };
  const char* what = with_headers ? "HMSG (expected: subject sid [reply] #header #total)"
                                  : "MSG (expected: subject sid [reply] #bytes)";
  const auto f = Fields(args);
  const size_t counts = with_headers ? 2 : 1;
  if (f.size() != 2 + counts && f.size() != 3 + counts) return fail(Malformed(what, line));
  const bool has_reply = f.size() == 3 + counts;
  const auto total = Count(f.back());
  const auto header_len = with_headers ? Count(f[f.size() - 2]) : std::optional<size_t>(0);
  if (!total || !header_len || *header_len > *total) return fail(Malformed(what, line));
  if (with_headers && *header_len == 0) return fail(Malformed("HMSG (no header block)", line));
  if (*total > max_payload_) {
    return fail(MakeError(ErrorKind::kProtocol,
                          fmt::format("NATS server sent a message of {} bytes, over the {} this "
                                      "client accepts: {}",
                                      *total, max_payload_, Quote(line))));
  }
  if (buf_.size() - line_end < *total + 2) return std::optional<ServerOp>();  // more to come
  std::string_view body(buf_.data() + line_end, *total);
  if (buf_.compare(line_end + *total, 2, "\r\n") != 0) {
    return fail(Malformed("message (payload not followed by CRLF)", line));
  }
  ServerOp op{.kind = ServerOpKind::kMsg};
  NatsMessage& m = op.message;
  m.subject = std::string(f[0]);
  m.sid = std::string(f[1]);
  if (has_reply) m.reply = std::string(f[2]);
  if (with_headers) {
    if (auto r = ParseHeaderBlock(body.substr(0, *header_len), m); !r) {
      return fail(r.error().Wrap(fmt::format("in {}", Quote(line))));
    }
  }
  m.payload = std::string(body.substr(*header_len));
  pos_ = line_end + *total + 2;
  return std::optional<ServerOp>(std::move(op));
}

Result<void> ParseHeaderBlock(std::string_view block, NatsMessage& message) {
  auto bad = [&](std::string_view why) {
    return MakeError(
        ErrorKind::kProtocol,
        fmt::format("NATS server sent a malformed header block ({}): {}", why, Quote(block)));
  };
  constexpr std::string_view kVersion = "NATS/1.0";
  if (block.substr(0, kVersion.size()) != kVersion) return bad("does not start with NATS/1.0");
  size_t eol = block.find("\r\n");
  if (eol == std::string_view::npos) return bad("no CRLF");
  std::string_view status_line = block.substr(kVersion.size(), eol - kVersion.size());
  if (!status_line.empty()) {
    if (!IsBlank(status_line.front())) return bad("text after the version");
    status_line = TrimBlanks(status_line);
    const size_t sp =
        std::find_if(status_line.begin(), status_line.end(), IsBlank) - status_line.begin();
    std::string_view code = status_line.substr(0, sp);
    auto n = Count(code);
    if (code.size() != 3 || !n) return bad("status is not a 3-digit code");
    message.status = static_cast<int>(*n);
    message.description = std::string(TrimBlanks(status_line.substr(sp)));
  }
  size_t at = eol + 2;
  while (true) {
    eol = block.find("\r\n", at);
    if (eol == std::string_view::npos) return bad("header line without CRLF");
    if (eol == at) break;  // the empty line that ends the block
    std::string_view h = block.substr(at, eol - at);
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad("a header line has no name");
    std::string_view name = h.substr(0, colon);
    if (std::any_of(name.begin(), name.end(),
                    [](char c) { return IsBlank(c) || static_cast<unsigned char>(c) < 0x20; })) {
      return bad("a header name holds a blank or control character");
    }
    message.headers.emplace_back(std::string(name), std::string(TrimBlanks(h.substr(colon + 1))));
    at = eol + 2;
  }
  if (at + 2 != block.size()) return bad("bytes after the empty line that ends it");
  return boost::outcome_v2::success();
}

}  // namespace pgfanout::nats
