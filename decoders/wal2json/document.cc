#include "decoders/wal2json/document.h"

#include <fmt/format.h>

#include <charconv>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>

namespace pgfanout::wal2json {
namespace {

constexpr uint32_t kByteaOid = 17;

// nlohmann reads its input through this iterator, so the handler knows how far the lexer
// has got and an error can name the byte offset.
struct CountingIterator {
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  const char* at = nullptr;
  const char** furthest = nullptr;

  reference operator*() const { return *at; }
  CountingIterator& operator++() {
    ++at;
    *furthest = at;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator before = *this;
    ++*this;
    return before;
  }
  bool operator==(const CountingIterator& other) const { return at == other.at; }
};

// A JSON scalar as the document printed it. Numbers keep their text: nlohmann hands a
// float's token over as written, and an integer's digits are exactly its value's (a '-'
// integer comes through number_integer, so a zero there was written "-0").
struct Scalar {
  enum class Kind { kNull, kBool, kNumber, kString } kind = Kind::kNull;
  bool boolean = false;
  bool is_unsigned = false;  // a number without sign, fraction or exponent
  uint64_t unsigned_value = 0;
  std::string text;  // number or string
};

enum class State { kStart, kTop, kArray, kColumn, kEnd };

class Handler : public nlohmann::json_sax<nlohmann::json> {
 public:
  Handler(Document& doc, const char* begin, const char** cursor)
      : doc_(doc), begin_(begin), cursor_(cursor) {}

  const std::string& error() const { return error_; }

  bool null() override { return Value(Scalar{}); }
  bool boolean(bool b) override { return Value(Scalar{.kind = Scalar::Kind::kBool, .boolean = b}); }
  // The lexer has read one character past a number when it hands it over.
  bool number_integer(number_integer_t v) override {
    return Number(Scalar{.kind = Scalar::Kind::kNumber, .text = v == 0 ? "-0" : std::to_string(v)});
  }
  bool number_unsigned(number_unsigned_t v) override {
    return Number(Scalar{.kind = Scalar::Kind::kNumber,
                         .is_unsigned = true,
                         .unsigned_value = v,
                         .text = std::to_string(v)});
  }
  bool number_float(number_float_t, const string_t& s) override {
    return Number(Scalar{.kind = Scalar::Kind::kNumber, .text = s});
  }
  bool string(string_t& s) override {
    return Value(Scalar{.kind = Scalar::Kind::kString, .text = std::move(s)});
  }
  bool binary(binary_t&) override { return Fail("unexpected binary value"); }

  bool start_object(std::size_t) override {
    if (state_ == State::kStart) {
      state_ = State::kTop;
      return true;
    }
    if (state_ == State::kArray) {
      array_->emplace_back();
      column_seen_ = 0;
      value_was_string_ = false;
      state_ = State::kColumn;
      return true;
    }
    return Fail("expected a scalar, found an object");
  }

  bool end_object() override {
    if (state_ == State::kColumn) {
      Column& c = array_->back();
      if (!(column_seen_ & kSeenName)) return Fail("has no \"name\"");
      if (c.value.kind == ValueKind::kText && value_was_string_ &&
          (c.type_oid == kByteaOid || (c.type_oid == 0 && c.type == "bytea"))) {
        c.value.text.insert(0, "\\x");  // wal2json prints bytea's hex without its "\x"
      }
      state_ = State::kArray;
      return true;
    }
    state_ = State::kEnd;  // the top object (nlohmann checks the nesting)
    return true;
  }

  bool start_array(std::size_t) override {
    if (state_ == State::kStart) return Fail("a document is one JSON object");
    if (state_ != State::kTop) return Fail("expected a scalar, found an array");
    std::optional<std::vector<Column>>* target = nullptr;
    if (key_ == "columns") target = &doc_.columns;
    if (key_ == "identity") target = &doc_.identity;
    if (key_ == "pk") target = &doc_.pk;
    if (target == nullptr) return Fail("expected a scalar, found an array");
    target->emplace();
    array_ = &**target;
    array_name_ = key_;
    state_ = State::kArray;
    return true;
  }

  bool end_array() override {
    state_ = State::kTop;
    array_ = nullptr;
    return true;
  }

  bool key(string_t& k) override {
    key_ = std::move(k);
    if (state_ == State::kTop) {
      unsigned bit = TopKeyBit(key_);
      if (bit == 0) return Fail("unknown key");
      if (top_seen_ & bit) return Fail("repeated key");
      top_seen_ |= bit;
      return true;
    }
    unsigned bit = ColumnKeyBit(key_);
    if (bit == 0) return Fail("unknown key");
    if (column_seen_ & bit) return Fail("repeated key");
    column_seen_ |= bit;
    return true;
  }

  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    // nlohmann's message reads "[json.exception.parse_error.101] parse error at line 1,
    // column 5: syntax error while parsing value - ..."; keep the part after the position.
    // `position` counts the characters read, the failing one included.
    std::string what = ex.what();
    auto colon = what.find(": ");
    error_ = fmt::format("wal2json document at byte {}: invalid JSON: {}",
                         position > 0 ? position - 1 : 0,
                         colon == std::string::npos ? what : what.substr(colon + 2));
    return false;
  }

  bool top_seen(unsigned bit) const { return (top_seen_ & bit) != 0; }
  static constexpr unsigned kSeenAction = 1;

 private:
  static constexpr unsigned kSeenName = 1;

  static unsigned TopKeyBit(const std::string& k) {
    static constexpr const char* kKeys[] = {
        "action",  "xid",      "timestamp", "lsn",    "nextlsn",       "schema", "table",
        "columns", "identity", "pk",        "prefix", "transactional", "content"};
    for (unsigned i = 0; i < std::size(kKeys); ++i) {
      if (k == kKeys[i]) return 1u << i;
    }
    return 0;
  }
  static unsigned ColumnKeyBit(const std::string& k) {
    static constexpr const char* kKeys[] = {"name", "type", "typeoid", "value", "position"};
    for (unsigned i = 0; i < std::size(kKeys); ++i) {
      if (k == kKeys[i]) return 1u << i;
    }
    return 0;
  }

  std::string Field() const {
    if (state_ == State::kColumn || state_ == State::kArray) {
      std::string at = fmt::format("{}[{}]", array_name_, array_->empty() ? 0 : array_->size() - 1);
      return state_ == State::kColumn ? at + "." + key_ : at;
    }
    return key_.empty() ? "document" : key_;
  }

  // The offset is that of the byte just past the token that failed.
  bool Fail(std::string_view what) {
    error_ = fmt::format("wal2json document at byte {} ({}): {}", *cursor_ - begin_ - lookahead_,
                         Field(), what);
    return false;
  }

  bool Number(Scalar&& v) {
    lookahead_ = 1;
    bool ok = Value(std::move(v));
    lookahead_ = 0;
    return ok;
  }

  static std::string_view KindName(Scalar::Kind kind) {
    switch (kind) {
      case Scalar::Kind::kNull:
        return "null";
      case Scalar::Kind::kBool:
        return "a boolean";
      case Scalar::Kind::kNumber:
        return "a number";
      case Scalar::Kind::kString:
        return "a string";
    }
    return "?";
  }

  bool Expect(const Scalar& v, Scalar::Kind kind, std::string_view what) {
    if (v.kind == kind) return true;
    return Fail(fmt::format("expected {}, found {}", what, KindName(v.kind)));
  }

  bool Uint32(const Scalar& v, uint32_t& out) {
    if (v.kind != Scalar::Kind::kNumber || !v.is_unsigned ||
        v.unsigned_value > std::numeric_limits<uint32_t>::max()) {
      return Fail("expected an unsigned 32-bit number");
    }
    out = static_cast<uint32_t>(v.unsigned_value);
    return true;
  }

  bool LsnField(Scalar&& v, std::optional<Lsn>& out) {
    if (!Expect(v, Scalar::Kind::kString, "an LSN string")) return false;
    out = Lsn::Parse(v.text);
    return out.has_value() || Fail("not an LSN: \"" + v.text.substr(0, 40) + "\"");
  }

  bool StringField(Scalar&& v, std::optional<std::string>& out) {
    if (!Expect(v, Scalar::Kind::kString, "a string")) return false;
    out = std::move(v.text);
    return true;
  }

  bool TopValue(Scalar&& v) {
    if (key_ == "action") {
      if (!Expect(v, Scalar::Kind::kString, "a string")) return false;
      if (v.text.size() != 1 || std::string_view("BCIUDTM").find(v.text[0]) == std::string::npos) {
        return Fail("unknown action \"" + v.text.substr(0, 20) + "\"");
      }
      doc_.action = static_cast<Action>(v.text[0]);
      return true;
    }
    if (key_ == "xid") {
      if (v.kind == Scalar::Kind::kNull) return true;
      uint32_t xid = 0;
      if (!Uint32(v, xid)) return false;
      doc_.xid = Xid{xid};
      return true;
    }
    if (key_ == "timestamp") {
      if (v.kind == Scalar::Kind::kNull) return true;
      if (!Expect(v, Scalar::Kind::kString, "a timestamp string")) return false;
      doc_.commit_time_us = ParseTimestamptz(v.text);
      return doc_.commit_time_us.has_value() ||
             Fail("not a timestamptz: \"" + v.text.substr(0, 40) + "\"");
    }
    if (key_ == "lsn") return LsnField(std::move(v), doc_.lsn);
    if (key_ == "nextlsn") return LsnField(std::move(v), doc_.next_lsn);
    if (key_ == "schema") return StringField(std::move(v), doc_.schema);
    if (key_ == "table") return StringField(std::move(v), doc_.table);
    if (key_ == "prefix") return StringField(std::move(v), doc_.prefix);
    if (key_ == "content") return StringField(std::move(v), doc_.content);
    if (key_ == "transactional") {
      if (!Expect(v, Scalar::Kind::kBool, "a boolean")) return false;
      doc_.transactional = v.boolean;
      return true;
    }
    return Fail(fmt::format("expected an array, found {}", KindName(v.kind)));
  }

  bool ColumnValue(Scalar&& v) {
    Column& c = array_->back();
    if (key_ == "name") {
      if (!Expect(v, Scalar::Kind::kString, "a string")) return false;
      c.name = std::move(v.text);
      return true;
    }
    if (key_ == "type") {
      if (!Expect(v, Scalar::Kind::kString, "a string")) return false;
      c.type = std::move(v.text);
      return true;
    }
    if (key_ == "typeoid") return Uint32(v, c.type_oid);
    if (key_ == "position") {
      uint32_t position = 0;
      if (!Uint32(v, position)) return false;
      if (position == 0 || position > std::numeric_limits<int16_t>::max()) {
        return Fail("not a column number");
      }
      c.position = static_cast<int32_t>(position);
      return true;
    }
    // "value"
    c.has_value = true;
    value_was_string_ = v.kind == Scalar::Kind::kString;
    switch (v.kind) {
      case Scalar::Kind::kNull:
        c.value = Datum{};
        break;
      case Scalar::Kind::kBool:
        c.value = Datum{.kind = ValueKind::kText, .text = v.boolean ? "t" : "f"};
        break;
      case Scalar::Kind::kNumber:
      case Scalar::Kind::kString:
        c.value = Datum{.kind = ValueKind::kText, .text = std::move(v.text)};
        break;
    }
    return true;
  }

  bool Value(Scalar&& v) {
    switch (state_) {
      case State::kTop:
        return TopValue(std::move(v));
      case State::kColumn:
        return ColumnValue(std::move(v));
      case State::kArray:
        return Fail(fmt::format("expected an object, found {}", KindName(v.kind)));
      default:
        return Fail("a document is one JSON object");
    }
  }

  Document& doc_;
  const char* begin_;
  const char** cursor_;
  std::string error_;
  State state_ = State::kStart;
  std::string key_;
  std::vector<Column>* array_ = nullptr;
  std::string array_name_;
  unsigned top_seen_ = 0;
  unsigned column_seen_ = 0;
  bool value_was_string_ = false;
  int lookahead_ = 0;
};

// Parses exactly `digits` decimal digits.
bool Digits(std::string_view s, size_t at, size_t digits, int& out) {
  if (at + digits > s.size()) return false;
  out = 0;
  for (size_t i = at; i < at + digits; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

std::optional<int64_t> ParseTimestamptz(std::string_view s) {
  // YYYY-MM-DD HH:MM:SS[.f{1,6}](+|-)HH[:MM[:SS]]
  int year, month, day, hour, minute, second;
  if (!Digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !Digits(s, 5, 2, month) ||
      s[7] != '-' || !Digits(s, 8, 2, day) || s[10] != ' ' || !Digits(s, 11, 2, hour) ||
      s[13] != ':' || !Digits(s, 14, 2, minute) || s[16] != ':' || !Digits(s, 17, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    return std::nullopt;
  }
  size_t at = 19;
  int64_t micros = 0;
  if (s[at] == '.') {
    size_t digits = 0;
    for (++at; at < s.size() && s[at] >= '0' && s[at] <= '9' && digits < 6; ++at, ++digits) {
      micros = micros * 10 + (s[at] - '0');
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 6; ++digits) micros *= 10;
  }
  if (at >= s.size() || (s[at] != '+' && s[at] != '-')) return std::nullopt;
  const int sign = s[at] == '-' ? -1 : 1;
  int oh = 0, om = 0, os = 0;
  if (!Digits(s, at + 1, 2, oh)) return std::nullopt;
  at += 3;
  if (at < s.size()) {
    if (s[at] != ':' || !Digits(s, at + 1, 2, om)) return std::nullopt;
    at += 3;
  }
  if (at < s.size()) {
    if (s[at] != ':' || !Digits(s, at + 1, 2, os)) return std::nullopt;
    at += 3;
  }
  if (at != s.size() || om > 59 || os > 59) return std::nullopt;
  constexpr int64_t kPostgresEpochDays = 10957;  // 1970-01-01 .. 2000-01-01
  const int64_t days =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) -
      kPostgresEpochDays;
  const int64_t local_seconds = days * 86400 + hour * 3600 + minute * 60 + second;
  const int64_t offset_seconds = sign * (oh * 3600 + om * 60 + os);
  return (local_seconds - offset_seconds) * 1'000'000 + micros;
}

Result<Document> ParseDocument(std::string_view text) {
  Document doc;
  const char* cursor = text.data();
  Handler handler(doc, text.data(), &cursor);
  CountingIterator first{text.data(), &cursor};
  CountingIterator last{text.data() + text.size(), &cursor};
  bool ok = nlohmann::json::sax_parse(first, last, &handler, nlohmann::json::input_format_t::json,
                                      /*strict=*/true);
  if (!ok) {
    return MakeError(ErrorKind::kDecode, handler.error().empty()
                                             ? std::string("wal2json document: invalid JSON")
                                             : handler.error());
  }
  if (!handler.top_seen(Handler::kSeenAction)) {
    return MakeError(ErrorKind::kDecode,
                     fmt::format("wal2json document at byte {} (action): missing", text.size()));
  }
  return doc;
}

}  // namespace pgfanout::wal2json
