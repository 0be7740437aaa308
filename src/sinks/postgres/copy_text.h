#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pgfanout {

// Builds rows in COPY's text format (tab-separated, newline-terminated, `\N` for NULL).
// A value is the column's text form as Postgres prints it; COPY parses it back with the
// type's input function, so every type round-trips. Only the four characters COPY treats
// specially are escaped: backslash, newline, carriage return and tab.
class CopyTextWriter {
 public:
  explicit CopyTextWriter(std::string& out) : out_(out) {}

  void Value(std::string_view text);
  void Null();
  void Int(int64_t value);
  // microseconds since the Unix epoch, as a timestamptz literal in UTC
  void Timestamp(int64_t unix_us);
  void Bool(bool value) { Raw(value ? "t" : "f"); }
  void EndRow();

 private:
  void Separator();
  void Raw(std::string_view text);

  std::string& out_;
  bool row_started_ = false;
};

// "2023-11-14 22:13:20.123456+00": microseconds since the Unix epoch as a timestamptz
// literal that any DateStyle reads back.
std::string FormatTimestampUtc(int64_t unix_us);

// Appends `text` escaped for COPY text format.
void AppendCopyEscaped(std::string_view text, std::string& out);

}  // namespace pgfanout
