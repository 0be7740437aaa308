#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "src/core/error.h"

namespace pgfanout::clickhouse {

// A ClickHouse error answer, read from its HTTP status and body
// ("Code: 60, e.displayText() = DB::Exception: Table x.y doesn't exist., e.what() = …", or
// the X-ClickHouse-Exception-Code header of newer servers).
struct ServerError {
  unsigned status = 0;
  std::optional<int> code;  // the ClickHouse error code, when the answer names one
  // The exception text: its first line, at most ~300 bytes, with what the server quotes of
  // the data it could not take ("before: …", '…') left out: it reaches logs and /status.
  std::string message;
  std::string column;       // "while read the value of key X": the column it names, or ""
};

// Reads an error answer; `code_header` is the X-ClickHouse-Exception-Code value or "".
ServerError ReadServerError(unsigned status, std::string_view body, std::string_view code_header);

// The error kind the runner acts on (pipeline/retry_policy):
// - kMismatch (the sink stops): the server refuses what the sink sends or defines:
//   unknown table, database or column, type and parse errors, values out of range, syntax,
//   missing rights. A retry would fail the same way; a person must fix the mapping.
// - kConnection (retried): authentication refused (a password may be fixed on the server),
//   and HTTP 502/503/504 without a ClickHouse code (a proxy in front of it).
// - kSink (retried): everything else: timeouts, memory limits, too many parts, a table
//   being created or altered meanwhile, unknown codes.
ErrorKind KindOf(const ServerError& error);

}  // namespace pgfanout::clickhouse
