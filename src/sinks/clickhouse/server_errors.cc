#include "src/sinks/clickhouse/server_errors.h"

#include <algorithm>
#include <charconv>

namespace pgfanout::clickhouse {
namespace {

std::optional<int> ParseCode(std::string_view text) {
  int code = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), code);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  return code;
}

// Codes from ClickHouse's ErrorCodes.cpp that mean "what was sent does not fit".
constexpr int kMismatchCodes[] = {
    6,    // CANNOT_PARSE_TEXT
    8,    // THERE_IS_NO_COLUMN
    10,   // NOT_FOUND_COLUMN_IN_BLOCK
    15,   // DUPLICATE_COLUMN
    16,   // NO_SUCH_COLUMN_IN_TABLE
    20,   // NUMBER_OF_COLUMNS_DOESNT_MATCH
    26,   // CANNOT_PARSE_QUOTED_STRING
    27,   // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    36,   // BAD_ARGUMENTS
    38,   // CANNOT_PARSE_DATE
    41,   // CANNOT_PARSE_DATETIME
    43,   // ILLEGAL_TYPE_OF_ARGUMENT
    44,   // ILLEGAL_COLUMN
    47,   // UNKNOWN_IDENTIFIER
    48,   // NOT_IMPLEMENTED
    50,   // UNKNOWN_TYPE
    53,   // TYPE_MISMATCH
    60,   // UNKNOWN_TABLE
    62,   // SYNTAX_ERROR
    69,   // ARGUMENT_OUT_OF_BOUND
    70,   // CANNOT_CONVERT_TYPE
    72,   // CANNOT_PARSE_NUMBER
    81,   // UNKNOWN_DATABASE
    115,  // UNKNOWN_SETTING
    117,  // INCORRECT_DATA
    131,  // TOO_LARGE_STRING_SIZE
    164,  // READONLY
    291,  // DATABASE_ACCESS_DENIED
    349,  // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    407,  // DECIMAL_OVERFLOW
    497,  // ACCESS_DENIED
    524,  // ALTER_OF_COLUMN_IS_FORBIDDEN
};

constexpr int kAuthCodes[] = {
    192,  // UNKNOWN_USER
    193,  // WRONG_PASSWORD
    194,  // REQUIRED_PASSWORD
    195,  // IP_ADDRESS_NOT_ALLOWED
    516,  // AUTHENTICATION_FAILED
};

// The exception text without a tenant's data: ClickHouse quotes what it could not parse
// ("Cannot parse input: expected , before: <the row's bytes>: (at row 1)", values in single
// quotes) and adds multi-line dumps of the row after a newline. Kept: the first line, with
// what follows "before: " and every single-quoted text replaced by "…", at most 300 bytes.
std::string ScrubbedLine(std::string_view text) {
  text = text.substr(0, text.find_first_of("\r\n"));
  std::string out;
  for (size_t at = 0; at < text.size();) {
    if (text.compare(at, 8, "before: ") == 0) {
      out += "before: …";
      size_t end = text.find(": (", at + 8);
      at = end == std::string_view::npos ? text.size() : end;
      continue;
    }
    if (text[at] == '\'') {
      size_t close = at + 1;
      while (close < text.size() && text[close] != '\'') close += text[close] == '\\' ? 2 : 1;
      out += "'…'";
      at = close + 1;
      continue;
    }
    out.push_back(text[at++]);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.size() > 300) {
    out.resize(300);
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
    if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
    out += "…";
  }
  return out;
}

}  // namespace

ServerError ReadServerError(unsigned status, std::string_view body, std::string_view code_header) {
  ServerError out{.status = status};
  out.code = ParseCode(code_header);
  std::string_view text = body;
  if (text.starts_with("Code: ")) {
    if (!out.code) out.code = ParseCode(text.substr(6));
    if (auto at = text.find("DB::Exception: "); at != std::string_view::npos) {
      text = text.substr(at + 15);
    }
  }
  // Older servers append ", e.what() = DB::Exception"; newer ones " (CODE_NAME) (version …)".
  if (auto at = text.rfind(", e.what() = "); at != std::string_view::npos)
    text = text.substr(0, at);
  if (auto at = text.find("while read the value of key "); at != std::string_view::npos) {
    std::string_view rest = text.substr(at + 28);
    out.column = std::string(rest.substr(0, rest.find_first_of("):")));
  }
  out.message = ScrubbedLine(text);
  if (out.message.empty()) out.message = "(no message)";
  return out;
}

ErrorKind KindOf(const ServerError& error) {
  if (error.code) {
    const int c = *error.code;
    if (std::find(std::begin(kAuthCodes), std::end(kAuthCodes), c) != std::end(kAuthCodes)) {
      return ErrorKind::kConnection;
    }
    if (std::find(std::begin(kMismatchCodes), std::end(kMismatchCodes), c) !=
        std::end(kMismatchCodes)) {
      return ErrorKind::kMismatch;
    }
    return ErrorKind::kSink;
  }
  if (error.status == 401 || error.status == 403 || error.status == 502 || error.status == 503 ||
      error.status == 504) {
    return ErrorKind::kConnection;
  }
  return ErrorKind::kSink;
}

}  // namespace pgfanout::clickhouse
