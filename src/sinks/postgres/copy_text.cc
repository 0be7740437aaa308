#include "src/sinks/postgres/copy_text.h"

#include <fmt/format.h>

#include <ctime>

namespace pgfanout {

void AppendCopyEscaped(std::string_view text, std::string& out) {
  size_t run = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    const char* escaped = nullptr;
    switch (c) {
      case '\\':
        escaped = "\\\\";
        break;
      case '\n':
        escaped = "\\n";
        break;
      case '\r':
        escaped = "\\r";
        break;
      case '\t':
        escaped = "\\t";
        break;
      default:
        continue;
    }
    out.append(text.data() + run, i - run);
    out.append(escaped);
    run = i + 1;
  }
  out.append(text.data() + run, text.size() - run);
}

void CopyTextWriter::Separator() {
  if (row_started_) out_.push_back('\t');
  row_started_ = true;
}

void CopyTextWriter::Raw(std::string_view text) {
  Separator();
  out_.append(text);
}

void CopyTextWriter::Value(std::string_view text) {
  Separator();
  AppendCopyEscaped(text, out_);
}

void CopyTextWriter::Null() { Raw("\\N"); }

void CopyTextWriter::Int(int64_t value) {
  Separator();
  fmt::format_to(std::back_inserter(out_), "{}", value);
}

std::string FormatTimestampUtc(int64_t unix_us) {
  std::time_t secs = static_cast<std::time_t>(unix_us / 1'000'000);
  int64_t micros = unix_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

void CopyTextWriter::Timestamp(int64_t unix_us) { Raw(FormatTimestampUtc(unix_us)); }

void CopyTextWriter::EndRow() {
  out_.push_back('\n');
  row_started_ = false;
}

}  // namespace pgfanout
