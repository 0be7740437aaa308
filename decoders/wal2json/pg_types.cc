#include "decoders/wal2json/pg_types.h"

#include <algorithm>
#include <charconv>
#include <string>

namespace pgfanout::wal2json {
namespace {

constexpr int32_t kVarHdrSz = 4;

// pg_type.dat OIDs (element type, array type).
enum : uint32_t {
  kBpchar = 1042,
  kBpcharArray = 1014,
  kVarchar = 1043,
  kVarcharArray = 1015,
  kNumeric = 1700,
  kNumericArray = 1231,
  kTime = 1083,
  kTimeArray = 1183,
  kTimetz = 1266,
  kTimetzArray = 1270,
  kTimestamp = 1114,
  kTimestampArray = 1115,
  kTimestamptz = 1184,
  kTimestamptzArray = 1185,
  kInterval = 1186,
  kIntervalArray = 1187,
  kBit = 1560,
  kBitArray = 1561,
  kVarbit = 1562,
  kVarbitArray = 1563,
};

bool ConsumePrefix(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// "(n)" -> n; "(n,m)" when `two` -> n and m.
bool ParseParens(std::string_view& s, int32_t& a, int32_t* b) {
  if (!ConsumePrefix(s, "(")) return false;
  auto number = [&](int32_t& out) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc() || ptr == s.data()) return false;
    s.remove_prefix(static_cast<size_t>(ptr - s.data()));
    return true;
  };
  if (!number(a)) return false;
  if (b != nullptr && (!ConsumePrefix(s, ",") || !number(*b))) return false;
  return ConsumePrefix(s, ")");
}

// "<name>(n)<suffix>" -> n (through `to_typmod`), "<name><suffix>" -> -1.
std::optional<int32_t> Simple(std::string_view s, std::string_view name, std::string_view suffix,
                              int32_t (*to_typmod)(int32_t)) {
  if (!ConsumePrefix(s, name)) return std::nullopt;
  int32_t typmod = -1;
  if (!s.empty() && s[0] == '(') {
    int32_t n = 0;
    if (!ParseParens(s, n, nullptr) || n < 0) return std::nullopt;
    typmod = to_typmod(n);
  }
  if (s != suffix) return std::nullopt;
  return typmod;
}

int32_t Identity(int32_t n) { return n; }
int32_t PlusHeader(int32_t n) { return n + kVarHdrSz; }

std::optional<int32_t> Numeric(std::string_view s) {
  if (!ConsumePrefix(s, "numeric")) return std::nullopt;
  if (s.empty()) return -1;
  int32_t precision = 0, scale = 0;
  if (!ParseParens(s, precision, &scale) || !s.empty() || precision < 1 || precision > 1000) {
    return std::nullopt;
  }
  return ((precision << 16) | (scale & 0x7ff)) + kVarHdrSz;
}

std::optional<int32_t> Interval(std::string_view s) {
  if (!ConsumePrefix(s, "interval")) return std::nullopt;
  if (s.empty()) return -1;
  // intervaltypmodout: the field range as words, then "(precision)" unless full.
  constexpr int kMonth = 1 << 1, kYear = 1 << 2, kDay = 1 << 3, kHour = 1 << 10, kMinute = 1 << 11,
                kSecond = 1 << 12, kFullRange = 0x7fff, kFullPrecision = 0xffff;
  static constexpr std::pair<std::string_view, int> kRanges[] = {
      {" year to month", kYear | kMonth},
      {" day to hour", kDay | kHour},
      {" day to minute", kDay | kHour | kMinute},
      {" day to second", kDay | kHour | kMinute | kSecond},
      {" hour to minute", kHour | kMinute},
      {" hour to second", kHour | kMinute | kSecond},
      {" minute to second", kMinute | kSecond},
      {" year", kYear},
      {" month", kMonth},
      {" day", kDay},
      {" hour", kHour},
      {" minute", kMinute},
      {" second", kSecond},
  };
  int range = kFullRange;
  size_t longest = 0;
  for (const auto& [words, mask] : kRanges) {
    if (words.size() > longest && s.substr(0, words.size()) == words &&
        (s.size() == words.size() || s[words.size()] == '(')) {
      range = mask;
      longest = words.size();
    }
  }
  s.remove_prefix(longest);
  int32_t precision = kFullPrecision;
  if (!s.empty() && (!ParseParens(s, precision, nullptr) || precision < 0 || precision > 6)) {
    return std::nullopt;
  }
  if (!s.empty()) return std::nullopt;
  return ((range & 0x7fff) << 16) | (precision & 0xffff);
}

}  // namespace

std::optional<int32_t> TypmodFromTypeText(std::string_view text, uint32_t type_oid) {
  // format_type prints an array as its element type followed by one "[]".
  if (text.size() > 2 && text.substr(text.size() - 2) == "[]") text.remove_suffix(2);
  switch (type_oid) {
    case kBpchar:
    case kBpcharArray:
      if (text == "bpchar") return -1;
      return Simple(text, "character", "", PlusHeader);
    case kVarchar:
    case kVarcharArray:
      return Simple(text, "character varying", "", PlusHeader);
    case kNumeric:
    case kNumericArray:
      return Numeric(text);
    case kTime:
    case kTimeArray:
      return Simple(text, "time", " without time zone", Identity);
    case kTimetz:
    case kTimetzArray:
      return Simple(text, "time", " with time zone", Identity);
    case kTimestamp:
    case kTimestampArray:
      return Simple(text, "timestamp", " without time zone", Identity);
    case kTimestamptz:
    case kTimestamptzArray:
      return Simple(text, "timestamp", " with time zone", Identity);
    case kInterval:
    case kIntervalArray:
      return Interval(text);
    case kBit:
    case kBitArray:
      return Simple(text, "bit", "", Identity);
    case kVarbit:
    case kVarbitArray:
      return Simple(text, "bit varying", "", Identity);
    default:
      // Other types print no modifier unless an extension's typmodout adds one.
      if (text.find('(') != std::string_view::npos) return std::nullopt;
      return -1;
  }
}

bool MayBeToasted(uint32_t type_oid) {
  // typlen > 0 in pg_type.dat: bool, "char", name, int8, int2, int4, regproc, oid, tid, xid,
  // cid, point, lseg, box, line, circle, float4, float8, money, macaddr8, macaddr, date,
  // time, timestamp, timestamptz, interval, timetz, uuid, pg_lsn, the reg* types, xid8.
  static constexpr uint32_t kFixed[] = {16,   18,   19,   20,   21,   23,   24,   26,   27,   28,
                                        29,   600,  601,  603,  628,  700,  701,  718,  774,  790,
                                        829,  1082, 1083, 1114, 1184, 1186, 1266, 2202, 2203, 2204,
                                        2205, 2206, 2950, 3220, 3734, 3769, 4089, 4096, 5069};
  return !std::binary_search(std::begin(kFixed), std::end(kFixed), type_oid);
}

}  // namespace pgfanout::wal2json
