#include "src/core/predicate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace pgfanout {

namespace {

constexpr size_t kMaxText = 8192;
constexpr int kMaxDepth = 64;

struct Literal {
  enum class Kind { kText, kNumber, kBool } kind = Kind::kText;
  std::string text;  // kText: the value; kNumber: as written; kBool: "true"/"false"
};

enum class TypeClass { kNumber, kText, kChar, kUuid, kBool };

}  // namespace

struct Predicate::Node {
  enum class Kind { kAnd, kOr, kNot, kCompare, kIn, kIsNull } kind = Kind::kCompare;
  std::vector<std::shared_ptr<const Node>> children;  // kAnd, kOr, kNot
  size_t column = 0;                                  // index into Predicate::columns_
  std::string op;                                     // kCompare: = <> < <= > >=
  bool negated = false;                               // NOT IN, IS NOT NULL
  std::vector<Literal> literals;                      // kCompare: one; kIn: one or more
};

namespace {

using Node = Predicate::Node;
using NodePtr = std::shared_ptr<const Node>;

struct Token {
  enum class Kind { kEnd, kIdent, kQuotedIdent, kText, kNumber, kOp, kOpen, kClose, kComma };
  Kind kind = Kind::kEnd;
  std::string text;  // identifiers folded to lower case unless quoted
  size_t at = 0;     // byte offset, for errors
};

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<NodePtr> Run(std::vector<std::string>& columns) {
    columns_ = &columns;
    PGF_TRY(Lex());
    PGF_TRY(auto root, Or(0));
    if (Peek().kind != Token::Kind::kEnd) return Fail(Peek(), "expected AND, OR or the end");
    return root;
  }

 private:
  Error Fail(const Token& at, std::string_view what) const {
    std::string near = at.kind == Token::Kind::kEnd ? "the end" : "'" + Shown(at) + "'";
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("at {} ({}): {}", at.at + 1, near, what));
  }
  static std::string Shown(const Token& t) {
    std::string s = t.kind == Token::Kind::kText ? "'" + t.text + "'" : t.text;
    return s.size() > 24 ? s.substr(0, 24) + "..." : s;
  }

  Result<void> Lex() {
    size_t i = 0;
    while (i < text_.size()) {
      const char c = text_[i];
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++i;
        continue;
      }
      Token t{.at = i};
      if (IsIdentStart(c)) {
        size_t j = i;
        while (j < text_.size() && IsIdentChar(text_[j])) ++j;
        t.kind = Token::Kind::kIdent;
        for (size_t k = i; k < j; ++k) {
          t.text.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(text_[k]))));
        }
        i = j;
      } else if (c == '"' || c == '\'') {
        t.kind = c == '"' ? Token::Kind::kQuotedIdent : Token::Kind::kText;
        size_t j = i + 1;
        while (true) {
          if (j >= text_.size()) {
            return MakeError(ErrorKind::kInvalidArgument,
                             fmt::format("at {}: {} is not closed", i + 1,
                                         c == '"' ? "a quoted name" : "a text literal"));
          }
          if (text_[j] == c) {
            if (j + 1 < text_.size() && text_[j + 1] == c) {
              t.text.push_back(c);
              j += 2;
              continue;
            }
            break;
          }
          t.text.push_back(text_[j++]);
        }
        if (t.kind == Token::Kind::kQuotedIdent && t.text.empty()) {
          return MakeError(ErrorKind::kInvalidArgument,
                           fmt::format("at {}: an empty quoted name", i + 1));
        }
        i = j + 1;
      } else if (IsDigit(c) || ((c == '-' || c == '+' || c == '.') && i + 1 < text_.size() &&
                                (IsDigit(text_[i + 1]) || text_[i + 1] == '.'))) {
        size_t j = i;
        if (text_[j] == '-' || text_[j] == '+') ++j;
        size_t digits = 0;
        while (j < text_.size() && IsDigit(text_[j])) ++j, ++digits;
        if (j < text_.size() && text_[j] == '.') {
          ++j;
          while (j < text_.size() && IsDigit(text_[j])) ++j, ++digits;
        }
        if (digits == 0)
          return Fail(Token{.kind = Token::Kind::kOp, .text = ".", .at = i}, "not a number");
        if (j < text_.size() && (text_[j] == 'e' || text_[j] == 'E')) {
          size_t k = j + 1;
          if (k < text_.size() && (text_[k] == '-' || text_[k] == '+')) ++k;
          size_t exp_digits = 0;
          while (k < text_.size() && IsDigit(text_[k])) ++k, ++exp_digits;
          if (exp_digits == 0 || exp_digits > 4) {
            return MakeError(
                ErrorKind::kInvalidArgument,
                fmt::format("at {}: a number's exponent is missing or too long", i + 1));
          }
          j = k;
        }
        if (j < text_.size() && IsIdentChar(text_[j])) {
          return MakeError(ErrorKind::kInvalidArgument,
                           fmt::format("at {}: a number runs into a name", j + 1));
        }
        t.kind = Token::Kind::kNumber;
        t.text = std::string(text_.substr(i, j - i));
        if (t.text[0] == '+') t.text.erase(0, 1);
        i = j;
      } else if (c == '(' || c == ')' || c == ',') {
        t.kind = c == '('   ? Token::Kind::kOpen
                 : c == ')' ? Token::Kind::kClose
                            : Token::Kind::kComma;
        t.text = std::string(1, c);
        ++i;
      } else if (c == '=' || c == '<' || c == '>' || c == '!') {
        size_t j = i + 1;
        if (j < text_.size() && (text_[j] == '=' || (c == '<' && text_[j] == '>'))) ++j;
        t.kind = Token::Kind::kOp;
        t.text = std::string(text_.substr(i, j - i));
        if (t.text == "!") return Fail(t, "expected != (or NOT)");
        if (t.text == "==") return Fail(t, "equality is a single =");
        if (t.text == "!=") t.text = "<>";
        i = j;
      } else {
        return MakeError(ErrorKind::kInvalidArgument,
                         fmt::format("at {}: unexpected character '{}'", i + 1, c));
      }
      tokens_.push_back(std::move(t));
    }
    tokens_.push_back(Token{.kind = Token::Kind::kEnd, .at = text_.size()});
    return boost::outcome_v2::success();
  }

  const Token& Peek() const { return tokens_[pos_]; }
  const Token& Next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool IsKeyword(const Token& t, std::string_view word) const {
    return t.kind == Token::Kind::kIdent && t.text == word;
  }
  bool Accept(std::string_view keyword) {
    if (!IsKeyword(Peek(), keyword)) return false;
    ++pos_;
    return true;
  }

  // or := and ("OR" and)*; and := not ("AND" not)*.
  Result<NodePtr> Or(int depth) { return Chain(depth, "or", Node::Kind::kOr, &Parser::And); }
  Result<NodePtr> And(int depth) { return Chain(depth, "and", Node::Kind::kAnd, &Parser::Not); }

  Result<NodePtr> Chain(int depth, std::string_view keyword, Node::Kind kind,
                        Result<NodePtr> (Parser::*operand)(int)) {
    PGF_TRY(auto left, (this->*operand)(depth));
    if (!IsKeyword(Peek(), keyword)) return left;
    auto node = std::make_shared<Node>();
    node->kind = kind;
    node->children.push_back(std::move(left));
    while (Accept(keyword)) {
      PGF_TRY(auto right, (this->*operand)(depth));
      node->children.push_back(std::move(right));
    }
    return NodePtr(node);
  }

  Result<NodePtr> Not(int depth) {
    if (depth > kMaxDepth) return Fail(Peek(), "nested too deeply");
    if (Accept("not")) {
      PGF_TRY(auto inner, Not(depth + 1));
      auto node = std::make_shared<Node>();
      node->kind = Node::Kind::kNot;
      node->children.push_back(std::move(inner));
      return NodePtr(node);
    }
    if (Peek().kind == Token::Kind::kOpen) {
      ++pos_;
      PGF_TRY(auto inner, Or(depth + 1));
      if (Peek().kind != Token::Kind::kClose) return Fail(Peek(), "expected ')'");
      ++pos_;
      return inner;
    }
    return Test();
  }

  Result<Literal> Lit() {
    const Token& t = Peek();
    Literal lit;
    if (t.kind == Token::Kind::kText) {
      lit.kind = Literal::Kind::kText;
    } else if (t.kind == Token::Kind::kNumber) {
      lit.kind = Literal::Kind::kNumber;
    } else if (IsKeyword(t, "true") || IsKeyword(t, "false")) {
      lit.kind = Literal::Kind::kBool;
    } else if (IsKeyword(t, "null")) {
      return Fail(t, "a comparison with NULL is never true: use IS NULL or IS NOT NULL");
    } else {
      return Fail(t, "expected a literal: 'text', a number, TRUE or FALSE");
    }
    lit.text = t.text;
    ++pos_;
    return lit;
  }

  Result<NodePtr> Test() {
    const Token& name = Peek();
    static constexpr std::string_view kKeywords[] = {"and", "or",   "not",  "in",
                                                     "is",  "null", "true", "false"};
    if (name.kind != Token::Kind::kQuotedIdent &&
        (name.kind != Token::Kind::kIdent ||
         std::find(std::begin(kKeywords), std::end(kKeywords), name.text) != std::end(kKeywords))) {
      return Fail(name, "expected a column name (double-quote a column named like a keyword)");
    }
    ++pos_;
    auto node = std::make_shared<Node>();
    auto at = std::find(columns_->begin(), columns_->end(), name.text);
    node->column = static_cast<size_t>(at - columns_->begin());
    if (at == columns_->end()) columns_->push_back(name.text);
    const Token& op = Peek();
    if (op.kind == Token::Kind::kOp) {
      ++pos_;
      node->kind = Node::Kind::kCompare;
      node->op = op.text;
      PGF_TRY(auto lit, Lit());
      node->literals.push_back(std::move(lit));
      return NodePtr(node);
    }
    if (Accept("is")) {
      node->kind = Node::Kind::kIsNull;
      node->negated = Accept("not");
      if (!Accept("null")) return Fail(Peek(), "expected NULL");
      return NodePtr(node);
    }
    node->negated = Accept("not");
    if (Accept("in")) {
      node->kind = Node::Kind::kIn;
      if (Peek().kind != Token::Kind::kOpen) return Fail(Peek(), "expected '(' after IN");
      ++pos_;
      while (true) {
        PGF_TRY(auto lit, Lit());
        node->literals.push_back(std::move(lit));
        if (Peek().kind == Token::Kind::kComma) {
          ++pos_;
          continue;
        }
        if (Peek().kind != Token::Kind::kClose) return Fail(Peek(), "expected ',' or ')'");
        ++pos_;
        break;
      }
      return NodePtr(node);
    }
    return Fail(Peek(), node->negated ? "expected IN" : "expected =, <>, <, <=, >, >=, IN or IS");
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  std::vector<std::string>* columns_ = nullptr;
};

// --- numbers, compared exactly as decimals ---------------------------------------------

struct Decimal {
  int rank = 1;  // 0 -infinity, 1 finite, 2 +infinity, 3 NaN
  bool negative = false;
  std::string digits;  // significant digits, no leading or trailing zeros; empty: zero
  long exponent = 0;   // value = 0.digits * 10^exponent
};

std::optional<Decimal> ParseDecimal(std::string_view s) {
  Decimal d;
  if (s == "NaN") return Decimal{.rank = 3};
  if (s == "Infinity" || s == "inf") return Decimal{.rank = 2};
  if (s == "-Infinity" || s == "-inf") return Decimal{.rank = 0};
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) d.negative = s[i++] == '-';
  std::string digits;
  long point = -1;
  for (; i < s.size() && (IsDigit(s[i]) || s[i] == '.'); ++i) {
    if (s[i] == '.') {
      if (point >= 0) return std::nullopt;
      point = static_cast<long>(digits.size());
    } else {
      digits.push_back(s[i]);
    }
  }
  if (digits.empty()) return std::nullopt;
  if (point < 0) point = static_cast<long>(digits.size());
  long exp = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool neg = false;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (i == s.size()) return std::nullopt;
    for (; i < s.size() && IsDigit(s[i]); ++i) {
      exp = exp * 10 + (s[i] - '0');
      if (exp > 100000) return std::nullopt;
    }
    if (neg) exp = -exp;
  }
  if (i != s.size()) return std::nullopt;
  size_t lead = 0;
  while (lead < digits.size() && digits[lead] == '0') ++lead;
  if (lead == digits.size()) return Decimal{};  // zero
  size_t end = digits.size();
  while (end > lead && digits[end - 1] == '0') --end;
  d.digits = digits.substr(lead, end - lead);
  d.exponent = point - static_cast<long>(lead) + exp;
  return d;
}

// <0, 0, >0 as a <, =, > b. NaN equals NaN and sorts above everything (as PostgreSQL's
// numeric and float types do).
int CompareDecimal(const Decimal& a, const Decimal& b) {
  if (a.rank != b.rank) return a.rank < b.rank ? -1 : 1;
  if (a.rank != 1) return 0;
  const int sa = a.digits.empty() ? 0 : (a.negative ? -1 : 1);
  const int sb = b.digits.empty() ? 0 : (b.negative ? -1 : 1);
  if (sa != sb) return sa < sb ? -1 : 1;
  if (sa == 0) return 0;
  int magnitude;
  if (a.exponent != b.exponent) {
    magnitude = a.exponent < b.exponent ? -1 : 1;
  } else {
    const int c = a.digits.compare(b.digits);
    magnitude = c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  return sa * magnitude;
}

std::optional<TypeClass> ClassOf(uint32_t oid) {
  switch (oid) {
    case 20:    // int8
    case 21:    // int2
    case 23:    // int4
    case 26:    // oid
    case 700:   // float4
    case 701:   // float8
    case 1700:  // numeric
      return TypeClass::kNumber;
    case 19:    // name
    case 25:    // text
    case 1043:  // varchar
      return TypeClass::kText;
    case 1042:  // bpchar
      return TypeClass::kChar;
    case 2950:
      return TypeClass::kUuid;
    case 16:
      return TypeClass::kBool;
    default:
      return std::nullopt;
  }
}

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

bool IsUuidText(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

enum class Tri { kFalse, kTrue, kNull };

std::string QuoteName(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

std::string QuoteText(std::string_view text) {
  std::string out = "E'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out.push_back(c);
    out.push_back(c);
  }
  return out + "'";
}

}  // namespace

Result<Predicate> Predicate::Parse(std::string_view text) {
  if (text.size() > kMaxText) {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("longer than {} characters", kMaxText));
  }
  Predicate p;
  p.text_ = std::string(text);
  Parser parser(text);
  PGF_TRY(p.root_, parser.Run(p.columns_));
  return p;
}

namespace {

struct Evaluator {
  const std::vector<ColumnSchema>& columns;
  const std::vector<size_t>& reads;
  const std::vector<Datum>& row;

  TypeClass Class(size_t column) const { return *ClassOf(columns[reads[column]].type_oid); }

  // The literal and the value compared: <0, 0, >0.
  int Compare(TypeClass cls, const std::string& value, const Literal& lit) const {
    switch (cls) {
      case TypeClass::kNumber: {
        auto a = ParseDecimal(value);
        auto b = ParseDecimal(lit.text);
        // The server's text form of a number and a lexed literal always parse.
        if (!a || !b) return 1;
        return CompareDecimal(*a, *b);
      }
      case TypeClass::kChar:
        return TrimBlanks(value).compare(TrimBlanks(lit.text));
      case TypeClass::kUuid: {
        std::string lower = lit.text;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return value.compare(lower);
      }
      case TypeClass::kBool:
        return (value == "t" ? 1 : 0) - (lit.text == "true" ? 1 : 0);
      case TypeClass::kText:
        break;
    }
    return std::string_view(value).compare(lit.text);
  }

  Tri Eval(const Node& node) const {
    switch (node.kind) {
      case Node::Kind::kAnd: {
        Tri out = Tri::kTrue;
        for (const auto& c : node.children) {
          Tri t = Eval(*c);
          if (t == Tri::kFalse) return Tri::kFalse;
          if (t == Tri::kNull) out = Tri::kNull;
        }
        return out;
      }
      case Node::Kind::kOr: {
        Tri out = Tri::kFalse;
        for (const auto& c : node.children) {
          Tri t = Eval(*c);
          if (t == Tri::kTrue) return Tri::kTrue;
          if (t == Tri::kNull) out = Tri::kNull;
        }
        return out;
      }
      case Node::Kind::kNot: {
        Tri t = Eval(*node.children[0]);
        return t == Tri::kNull ? t : (t == Tri::kTrue ? Tri::kFalse : Tri::kTrue);
      }
      case Node::Kind::kIsNull: {
        const bool null = row[reads[node.column]].kind == ValueKind::kNull;
        return null != node.negated ? Tri::kTrue : Tri::kFalse;
      }
      case Node::Kind::kCompare:
      case Node::Kind::kIn:
        break;
    }
    const Datum& d = row[reads[node.column]];
    if (d.kind == ValueKind::kNull) return Tri::kNull;
    const TypeClass cls = Class(node.column);
    if (node.kind == Node::Kind::kIn) {
      bool any = false;
      for (const auto& lit : node.literals) any = any || Compare(cls, d.text, lit) == 0;
      return any != node.negated ? Tri::kTrue : Tri::kFalse;
    }
    const int c = Compare(cls, d.text, node.literals[0]);
    bool r = false;
    if (node.op == "=")
      r = c == 0;
    else if (node.op == "<>")
      r = c != 0;
    else if (node.op == "<")
      r = c < 0;
    else if (node.op == "<=")
      r = c <= 0;
    else if (node.op == ">")
      r = c > 0;
    else if (node.op == ">=")
      r = c >= 0;
    return r ? Tri::kTrue : Tri::kFalse;
  }
};

Result<void> CheckTypes(const Node& node, const std::vector<std::string>& names,
                        const std::vector<ColumnSchema>& columns,
                        const std::vector<size_t>& reads) {
  for (const auto& c : node.children) PGF_TRY(CheckTypes(*c, names, columns, reads));
  if (node.kind != Node::Kind::kCompare && node.kind != Node::Kind::kIn)
    return boost::outcome_v2::success();
  const ColumnSchema& column = columns[reads[node.column]];
  const TypeClass cls = *ClassOf(column.type_oid);
  auto fail = [&](std::string_view why) {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("column {}: {}", names[node.column], why));
  };
  const bool ordering = node.kind == Node::Kind::kCompare && node.op != "=" && node.op != "<>";
  for (const auto& lit : node.literals) {
    switch (cls) {
      case TypeClass::kNumber:
        if (lit.kind != Literal::Kind::kNumber) {
          return fail("is a number; compare it with a number, not " +
                      std::string(lit.kind == Literal::Kind::kText ? "text" : "a boolean"));
        }
        break;
      case TypeClass::kText:
      case TypeClass::kChar:
        if (lit.kind != Literal::Kind::kText) return fail("is text; compare it with 'quoted text'");
        break;
      case TypeClass::kUuid:
        if (lit.kind != Literal::Kind::kText || !IsUuidText(lit.text)) {
          return fail("is a uuid; compare it with 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'");
        }
        if (ordering) return fail("is a uuid; only =, <> and IN compare it");
        break;
      case TypeClass::kBool:
        if (lit.kind != Literal::Kind::kBool)
          return fail("is a boolean; compare it with TRUE or FALSE");
        if (ordering) return fail("is a boolean; only =, <> and IN compare it");
        break;
    }
  }
  return boost::outcome_v2::success();
}

std::string Render(const Node& node, const std::vector<std::string>& names,
                   const std::vector<ColumnSchema>& columns, const std::vector<size_t>& reads) {
  auto lit_sql = [](const Literal& lit) {
    return lit.kind == Literal::Kind::kText ? QuoteText(lit.text) : lit.text;
  };
  switch (node.kind) {
    case Node::Kind::kAnd:
    case Node::Kind::kOr: {
      std::string out = "(";
      for (size_t i = 0; i < node.children.size(); ++i) {
        if (i) out += node.kind == Node::Kind::kAnd ? " AND " : " OR ";
        out += Render(*node.children[i], names, columns, reads);
      }
      return out + ")";
    }
    case Node::Kind::kNot:
      return "(NOT " + Render(*node.children[0], names, columns, reads) + ")";
    case Node::Kind::kIsNull:
      return "(" + QuoteName(names[node.column]) + (node.negated ? " IS NOT NULL)" : " IS NULL)");
    case Node::Kind::kIn: {
      std::string out =
          "(" + QuoteName(names[node.column]) + (node.negated ? " NOT IN (" : " IN (");
      for (size_t i = 0; i < node.literals.size(); ++i) {
        out += (i ? ", " : "") + lit_sql(node.literals[i]);
      }
      return out + "))";
    }
    case Node::Kind::kCompare:
      break;
  }
  std::string column = QuoteName(names[node.column]);
  const TypeClass cls = *ClassOf(columns[reads[node.column]].type_oid);
  // Text orders byte by byte here, as the router compares it.
  if ((cls == TypeClass::kText || cls == TypeClass::kChar) && node.op != "=" && node.op != "<>") {
    column += " COLLATE \"C\"";
  }
  return "(" + column + " " + node.op + " " + lit_sql(node.literals[0]) + ")";
}

}  // namespace

Result<BoundPredicate> BoundPredicate::Bind(const Predicate& predicate,
                                            const std::vector<ColumnSchema>& columns) {
  BoundPredicate b;
  b.root_ = predicate.root_;
  b.columns_ = columns;
  for (const auto& name : predicate.columns_) {
    auto at = std::find_if(columns.begin(), columns.end(),
                           [&](const ColumnSchema& c) { return c.name == name; });
    if (at == columns.end()) {
      return MakeError(ErrorKind::kInvalidArgument, fmt::format("no column {}", name));
    }
    if (!ClassOf(at->type_oid)) {
      return MakeError(ErrorKind::kInvalidArgument,
                       fmt::format("column {} has a type (oid {}) that where does not compare; it "
                                   "compares integer, numeric, real, double precision, text, "
                                   "varchar, char, name, uuid and boolean columns",
                                   name, at->type_oid));
    }
    b.reads_.push_back(static_cast<size_t>(at - columns.begin()));
  }
  PGF_TRY(CheckTypes(*b.root_, predicate.columns_, columns, b.reads_));
  b.names_ = predicate.columns_;
  return b;
}

std::optional<bool> BoundPredicate::Matches(const std::vector<Datum>& row, bool key_only) const {
  for (size_t r : reads_) {
    if (r >= row.size() || row[r].kind == ValueKind::kUnchangedToast) return std::nullopt;
    if (key_only && !columns_[r].part_of_key) return std::nullopt;
  }
  return Evaluator{columns_, reads_, row}.Eval(*root_) == Tri::kTrue;
}

std::string BoundPredicate::Sql() const { return Render(*root_, names_, columns_, reads_); }

Result<std::string> WhereSql(std::string_view where, const std::vector<ColumnSchema>& columns) {
  if (where.empty()) return std::string();
  PGF_TRY(auto predicate, Predicate::Parse(where));
  PGF_TRY(auto bound, BoundPredicate::Bind(predicate, columns));
  return bound.Sql();
}

}  // namespace pgfanout
