#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/change_event.h"
#include "src/core/error.h"

namespace pgfanout {

// A row predicate in a small language that pgfanout evaluates itself, on each event a sink
// receives (a sink's `tables[].where:`, README "Rows for one sink only"), and renders as SQL
// for the same sink's copies (backfill, resnapshot, verify), so a copy and the stream keep
// the same rows.
//
// Grammar (keywords in any case; identifiers as in SQL: folded to lower case unless
// "double-quoted"):
//   expr    := or
//   or      := and ("OR" and)*
//   and     := not ("AND" not)*
//   not     := "NOT" not | "(" expr ")" | test
//   test    := column ("=" | "<>" | "!=" | "<" | "<=" | ">" | ">=") literal
//            | column ["NOT"] "IN" "(" literal ("," literal)* ")"
//            | column "IS" ["NOT"] "NULL"
//   literal := 'text' ('' inside for a quote) | number (-12, 3.5, 1e6) | TRUE | FALSE
// Why not SQL: the same expression is evaluated on events by pgfanout, which must agree
// with the server on every row, and SQL text from a config or a request would be pasted
// into the copy's WHERE. This language is small enough to evaluate exactly and to render
// without injection.
//
// Semantics are SQL's: three-valued logic, a comparison with a NULL column is unknown, and
// a row matches only when the whole expression is true. Comparisons follow the column's
// type, fixed when the predicate is bound to a table (Bind):
// - integer, numeric, real, double precision, oid: numerically (exactly for integers and
//   numeric; NaN sorts above every number, as in PostgreSQL); the literal is a number;
// - text, varchar, char (trailing blanks ignored), name: byte by byte, as COLLATE "C";
//   uuid: = and <> and IN only; the literal is text;
// - boolean: TRUE or FALSE, = and <> only.
// Any other type is refused when binding, with the column named.
class Predicate {
 public:
  // Parses `text`; the error names the position and what was expected.
  static Result<Predicate> Parse(std::string_view text);

  const std::string& text() const { return text_; }
  // The columns it reads, each once, in order of first use.
  const std::vector<std::string>& columns() const { return columns_; }

  struct Node;

 private:
  std::string text_;
  std::vector<std::string> columns_;
  std::shared_ptr<const Node> root_;

  friend class BoundPredicate;
};

// A predicate checked against one table shape: every column it reads exists and has a type
// it compares. Cheap to copy.
class BoundPredicate {
 public:
  static Result<BoundPredicate> Bind(const Predicate& predicate,
                                     const std::vector<ColumnSchema>& columns);

  // Whether `row` (one Datum per column of the bound shape) matches. nullopt when a column
  // it reads is not in the row: an unchanged TOASTed value, or a non-key column of a
  // key-only old row (`key_only`).
  std::optional<bool> Matches(const std::vector<Datum>& row, bool key_only = false) const;

  // The predicate as a PostgreSQL boolean expression over the source table's columns
  // (quoted identifiers and literals), for a copy's WHERE.
  std::string Sql() const;

 private:
  std::shared_ptr<const Predicate::Node> root_;
  std::vector<ColumnSchema> columns_;
  std::vector<std::string> names_;  // the predicate's columns
  std::vector<size_t> reads_;       // their indexes in columns_
};

// `where` (a Predicate's text; empty: none) bound to `columns` and rendered as SQL, for a
// copy's or a verify's WHERE; empty when `where` is.
Result<std::string> WhereSql(std::string_view where, const std::vector<ColumnSchema>& columns);

}  // namespace pgfanout
