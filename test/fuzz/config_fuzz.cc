// Fuzz target: the config loader, src/config/config.h. Build and run: test/fuzz/README.md.
// Seeds: corpus/config/, the repository's sample configs and a few edge cases.
//
// The whole input is fed to each function; what is asserted:
// - ParseConfig(text) never throws, aborts or crashes; a rejection is kInvalidArgument and
//   names the file; an accepted Config holds what the loader validates (non-empty tables
//   and sinks, valid slot and publication names, unique ids, a tenant list where "*"
//   stands alone, every sink table listed at the top level, ...), since the daemon relies
//   on it without checking again.
// - ParseDuration accepts exactly <digits><ms|s|m|h> within its range, with the right value.
// - ParseQualifiedName gives non-empty names of at most 63 bytes that parse back to the
//   same pair when written quoted.
// - RedactDsn: (a) a password libpq would read from the input is not what libpq reads from
//   the output; (b) with the input as the password, each documented way of writing one
//   (bare with \' and \\ escapes, quoted, spaces around '=', URI user info, URI query)
//   comes out exactly as the header's example: the rest unchanged, the value "********".

#include <libpq-fe.h>

#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "src/config/config.h"

namespace {

using namespace pgfanout;

[[noreturn]] void Fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "config_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

void Check(bool ok, const char* what, std::string_view detail = "") {
  if (!ok) Fail(what, detail);
}

bool IsPgName(const std::string& s) {
  if (s.empty() || s.size() > 63 || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

void CheckAccepted(const Config& c) {
  Check(!c.source.dsn.empty(), "accepted an empty source.dsn");
  Check(IsPgName(c.source.slot), "accepted slot", c.source.slot);
  Check(IsPgName(c.source.publication), "accepted publication", c.source.publication);
  Check(c.source.status_interval >= std::chrono::milliseconds(100) &&
            c.source.status_interval <= std::chrono::seconds(30),
        "accepted a status_interval outside 100ms..30s");
  Check(!c.tables.empty(), "accepted no tables");
  std::set<std::string> tables;
  for (const TableConfig& t : c.tables) {
    Check(!t.schema.empty() && t.schema.size() <= 63 && !t.name.empty() && t.name.size() <= 63,
          "accepted table name", t.QualifiedName());
    Check(tables.insert(t.QualifiedName()).second, "accepted a table twice", t.QualifiedName());
    std::set<std::string> key(t.key.begin(), t.key.end());
    Check(key.size() == t.key.size() && !key.contains(""), "accepted key columns of",
          t.QualifiedName());
  }
  Check(!c.sinks.empty(), "accepted no sinks");
  std::set<std::string> ids;
  for (const SinkConfig& s : c.sinks) {
    Check(!s.id.empty() && s.id.size() <= 64 && ids.insert(s.id).second, "accepted sink id", s.id);
    Check(c.FindSink(s.id) == &s, "FindSink does not find", s.id);
    Check(s.type() == "jsonl" || s.type() == "postgres", "accepted sink type", s.type());
    Check(!s.tenants.empty(), "accepted a sink without tenants", s.id);
    for (const auto& tenant : s.tenants) {
      Check(tenant != "*" || s.tenants.size() == 1, "accepted \"*\" with other tenants", s.id);
    }
    Check(s.batch_size >= 1 && s.batch_size <= 1'000'000, "accepted batch_size of", s.id);
    if (const auto* jsonl = std::get_if<JsonlSinkOptions>(&s.options)) {
      Check(!jsonl->path.empty(), "accepted jsonl sink", s.id);
    } else if (const auto* pg = std::get_if<PostgresSinkOptions>(&s.options)) {
      Check(!pg->dsn.empty(), "accepted postgres sink", s.id);
    }
    std::set<std::string> targets;
    for (const SinkTableConfig& st : s.tables) {
      bool tracked = false;
      for (const TableConfig& t : c.tables) tracked = tracked || t.QualifiedName() == st.source;
      Check(tracked, "accepted an untracked sink table", st.source);
      Check(!st.target.empty() && !st.target_schema.empty(), "accepted an empty target", st.source);
      Check(targets.insert(st.target_schema + "." + st.target).second, "accepted a target twice",
            st.target);
      Check(st.delete_mode == DeleteMode::kHard || !st.soft_delete_column.empty(),
            "accepted delete: soft without a column", st.source);
      SinkTableConfig fallback;
      Check(s.FindTable(st.source, fallback) == &st, "FindTable does not find", st.source);
    }
  }
}

void FuzzParseConfig(std::string_view text) {
  try {
    auto parsed = ParseConfig(text, "fuzz.yaml");
    if (!parsed) {
      Check(parsed.error().kind == ErrorKind::kInvalidArgument, "error kind",
            parsed.error().message);
      Check(parsed.error().message.rfind("fuzz.yaml", 0) == 0, "error does not name the file",
            parsed.error().message);
      return;
    }
    Check(parsed.value().path == "fuzz.yaml", "path");
    CheckAccepted(parsed.value());
  } catch (const std::exception& e) {
    Fail("ParseConfig threw", e.what());
  } catch (...) {
    Fail("ParseConfig threw", "a non-std exception");
  }
}

void FuzzParseDuration(std::string_view text) {
  auto parsed = ParseDuration(text);
  // The oracle: digits, then a unit; the value in milliseconds must leave room for a
  // conversion to microseconds (value * factor <= UINT64_MAX / 1000).
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  std::string_view unit = text.substr(digits);
  unsigned __int128 factor = unit == "ms"  ? 1
                             : unit == "s" ? 1000
                             : unit == "m" ? 60'000
                             : unit == "h" ? 3'600'000
                                           : 0;
  unsigned __int128 value = 0;
  bool fits = digits > 0 && factor != 0;
  for (size_t i = 0; fits && i < digits; ++i) {
    value = value * 10 + static_cast<unsigned>(text[i] - '0');
    if (value * factor > UINT64_MAX / 1000) fits = false;
  }
  Check(parsed.has_value() == fits, "ParseDuration accepts or rejects wrongly", text);
  if (parsed) {
    Check(parsed->count() >= 0 && static_cast<unsigned __int128>(parsed->count()) == value * factor,
          "ParseDuration value", text);
  }
}

std::string Quote(const std::string& ident) {
  std::string out = "\"";
  for (char c : ident) out += c == '"' ? "\"\"" : std::string(1, c);
  return out + "\"";
}

void FuzzParseQualifiedName(std::string_view text) {
  auto parsed = ParseQualifiedName(text, "dflt");
  if (!parsed) return;
  const auto& [schema, name] = *parsed;
  Check(!schema.empty() && schema.size() <= 63 && !name.empty() && name.size() <= 63,
        "ParseQualifiedName gave a bad name for", text);
  auto again = ParseQualifiedName(Quote(schema) + "." + Quote(name), "other");
  Check(again == parsed, "quoted names do not parse back for", text);
}

// What libpq reads as the password of `dsn`: nullopt when libpq rejects the string, ""
// when it has no password.
std::optional<std::string> LibpqPassword(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (error) PQfreemem(error);
  if (!options) return std::nullopt;
  std::string password;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (std::string_view(o->keyword) == "password" && o->val) password = o->val;
  }
  PQconninfoFree(options);
  return password;
}

std::string PercentEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string EscapeValue(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out;
}

void CheckRedacts(const std::string& dsn, const std::string& expected,
                  const std::string& password) {
  // The way of writing it must be one libpq reads as `password`, or the check is moot.
  Check(LibpqPassword(dsn) == password, "test DSN not read back by libpq", dsn);
  Check(RedactDsn(dsn) == expected, "RedactDsn leaves", RedactDsn(dsn));
}

void FuzzRedactDsn(std::string_view text) {
  std::string input(text.substr(0, text.find('\0')));
  // (a) Whatever the input, the password libpq would use must not survive.
  std::string redacted = RedactDsn(input);
  auto before = LibpqPassword(input);
  if (before && !before->empty() && before->find('*') == std::string::npos) {
    auto after = LibpqPassword(redacted);
    Check(!after || *after != *before, "RedactDsn keeps the password of", input);
  }
  // (b) The input as a password, written each documented way (its start: std::regex is
  // slow under the sanitizers, and longer passwords add nothing).
  std::string p = input.substr(0, 64);
  bool has_space = false;
  for (unsigned char c : p) has_space = has_space || std::isspace(c);
  if (!p.empty() && !has_space) {
    CheckRedacts("host=db.example port=5432 password=" + EscapeValue(p) + " dbname=app",
                 "host=db.example port=5432 password=******** dbname=app", p);
  }
  CheckRedacts("host=db.example password='" + EscapeValue(p) + "' user=app",
               "host=db.example password=******** user=app", p);
  CheckRedacts("user=app password = '" + EscapeValue(p) + "'", "user=app password = ********", p);
  CheckRedacts("postgresql://app:" + PercentEncode(p) + "@db.example:5432/x?sslmode=require",
               "postgresql://app:********@db.example:5432/x?sslmode=require", p);
  if (!p.empty()) {
    CheckRedacts("postgres://app@db.example/x?sslmode=require&password=" + PercentEncode(p),
                 "postgres://app@db.example/x?sslmode=require&password=********", p);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  FuzzParseConfig(text);
  FuzzParseDuration(text);
  FuzzParseQualifiedName(text);
  FuzzRedactDsn(text);
  return 0;
}
