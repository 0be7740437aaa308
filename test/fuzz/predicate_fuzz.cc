// Fuzz target: the per-sink row predicate, src/core/predicate.h. Build and run:
// test/fuzz/README.md. Seeds: corpus/predicate/.
//
// The input's first line is an expression; each later line is a row (tab-separated
// values for columns id int8, name text, code char(4), score numeric, ok bool, uid uuid,
// "\N" for NULL). What is asserted:
// - Parse never throws or crashes; an error is kInvalidArgument and names a position.
// - A parsed expression binds or is refused with kInvalidArgument; a bound one renders SQL
//   whose single quotes pair up (no literal left open), and evaluates every row.
// - Matches is deterministic, and NOT (e) is false wherever e is true.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/predicate.h"

namespace {

using namespace pgfanout;

[[noreturn]] void Fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "predicate_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

const std::vector<ColumnSchema> kColumns = {{"id", 20, -1, true},     {"name", 25, -1, false},
                                            {"code", 1042, 8, false}, {"score", 1700, -1, false},
                                            {"ok", 16, -1, false},    {"uid", 2950, -1, false}};

// Single quotes in rendered SQL pair up (E'…' with '' inside): an odd count would be an
// injection hole.
void CheckQuotes(const std::string& sql) {
  size_t quotes = 0;
  for (char c : sql) quotes += c == '\'';
  if (quotes % 2) Fail("unbalanced quotes in rendered SQL", sql);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  std::string_view text = input.substr(0, nl);
  auto parsed = Predicate::Parse(text);
  if (!parsed) {
    if (parsed.error().kind != ErrorKind::kInvalidArgument) Fail("error kind", text);
    return 0;
  }
  auto bound = BoundPredicate::Bind(parsed.value(), kColumns);
  if (!bound) {
    if (bound.error().kind != ErrorKind::kInvalidArgument) Fail("bind error kind", text);
    return 0;
  }
  CheckQuotes(bound.value().Sql());
  auto negated = Predicate::Parse("NOT (" + std::string(text) + ")");
  if (!negated) return 0;  // deeper than the limit
  auto bound_not = BoundPredicate::Bind(negated.value(), kColumns);
  if (!bound_not) Fail("NOT (e) does not bind where e does", text);
  std::string_view rest = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    std::vector<Datum> row;
    size_t at = 0;
    for (size_t i = 0; i < kColumns.size(); ++i) {
      const size_t tab = line.find('\t', at);
      std::string_view v = at > line.size() ? std::string_view("\\N") : line.substr(at, tab - at);
      row.push_back(v == "\\N" ? Datum{} : Datum{ValueKind::kText, std::string(v)});
      at = tab == std::string_view::npos ? line.size() + 1 : tab + 1;
    }
    auto a = bound.value().Matches(row);
    auto b = bound.value().Matches(row);
    if (a != b) Fail("not deterministic", text);
    auto n = bound_not.value().Matches(row);
    if (!a || !n) Fail("a full row gave no answer", text);
    if (*a && *n) Fail("e and NOT (e) both true", text);
  }
  return 0;
}
