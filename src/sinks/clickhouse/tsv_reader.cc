#include "src/sinks/clickhouse/tsv_reader.h"

#include <fmt/format.h>

namespace pgfanout::clickhouse {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<std::vector<TsvRow>> ParseTsv(std::string_view text) {
  std::vector<TsvRow> rows;
  if (text.empty()) return rows;
  if (text.back() != '\n') {
    return MakeError(ErrorKind::kSink, "ClickHouse answer does not end with a newline (cut off?)");
  }
  TsvRow row;
  std::string field;
  bool null = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\t' || c == '\n') {
      row.push_back(null ? std::nullopt : std::optional<std::string>(std::move(field)));
      field.clear();
      null = false;
      if (c == '\n') rows.push_back(std::exchange(row, {}));
      continue;
    }
    if (c != '\\') {
      field.push_back(c);
      continue;
    }
    if (++i >= text.size()) break;
    switch (const char e = text[i]) {
      case 'N':
        // NULL only as the whole field.
        if (!field.empty() || i + 1 >= text.size() ||
            (text[i + 1] != '\t' && text[i + 1] != '\n')) {
          return MakeError(ErrorKind::kSink,
                           fmt::format("ClickHouse answer: stray \\N at byte {}", i));
        }
        null = true;
        break;
      case 'b':
        field.push_back('\b');
        break;
      case 'f':
        field.push_back('\f');
        break;
      case 'n':
        field.push_back('\n');
        break;
      case 'r':
        field.push_back('\r');
        break;
      case 't':
        field.push_back('\t');
        break;
      case '0':
        field.push_back('\0');
        break;
      case 'a':
        field.push_back('\a');
        break;
      case 'v':
        field.push_back('\v');
        break;
      case 'x': {
        const int hi = i + 1 < text.size() ? HexDigit(text[i + 1]) : -1;
        const int lo = i + 2 < text.size() ? HexDigit(text[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
          return MakeError(ErrorKind::kSink,
                           fmt::format("ClickHouse answer: bad \\x at byte {}", i));
        }
        field.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        break;
      }
      default:
        field.push_back(e);  // \\ \' \" and any other escaped byte stand for themselves
    }
  }
  if (!row.empty() || !field.empty() || null) {
    return MakeError(ErrorKind::kSink, "ClickHouse answer ends inside a row (cut off?)");
  }
  return rows;
}

}  // namespace pgfanout::clickhouse
