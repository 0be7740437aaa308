#pragma once

// Internal to src/config: the YAML walker and the helpers config.cc and sink_config.cc
// share. Not part of the component's interface (config.h is).

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <algorithm>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "src/config/config.h"

namespace pgfanout::config_internal {

constexpr const char* kNameHelp =
    "expected [schema.]table; unquoted names fold to lower case, write \"Mixed Case\" in "
    "double quotes to keep it";


// Walks the YAML tree, remembering where it is so every error names file, line and key.
class Reader {
 public:
  explicit Reader(std::string_view file) : file_(file) {}

  Error Fail(const YAML::Node& node, const std::string& key, const std::string& what) const {
    int line = node.Mark().line >= 0 ? node.Mark().line + 1 : 0;
    return MakeError(ErrorKind::kInvalidArgument,
                     line > 0 ? fmt::format("{}:{}: {}: {}", file_, line, key, what)
                              : fmt::format("{}: {}: {}", file_, key, what));
  }

  // Rejects keys outside `known`, so a typo is an error rather than a silent default.
  Result<void> OnlyKeys(const YAML::Node& map, const std::string& where,
                        std::initializer_list<std::string_view> known) const {
    return OnlyKeys(map, where, std::vector<std::string_view>(known));
  }
  Result<void> OnlyKeys(const YAML::Node& map, const std::string& where,
                        const std::vector<std::string_view>& known) const {
    if (!map.IsMap()) return Fail(map, where, "expected a mapping");
    for (const auto& kv : map) {
      auto key = kv.first.as<std::string>();
      bool ok = false;
      for (auto k : known) ok = ok || k == key;
      if (!ok) {
        std::string list;
        for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        return Fail(kv.first, where.empty() ? key : where + "." + key,
                    "unknown key (expected one of: " + list + ")");
      }
    }
    return boost::outcome_v2::success();
  }

  Result<std::string> String(const YAML::Node& parent, const std::string& where, const char* key,
                             bool required, std::string fallback = "") const {
    auto node = parent[key];
    std::string name = where.empty() ? key : where + "." + key;
    if (!node) {
      if (required) return Fail(parent, name, "missing (required)");
      return fallback;
    }
    if (!node.IsScalar()) return Fail(node, name, "expected a string");
    auto value = node.as<std::string>();
    if (required && value.empty()) return Fail(node, name, "must not be empty");
    return value;
  }

  Result<std::chrono::milliseconds> Duration(const YAML::Node& parent, const std::string& where,
                                             const char* key,
                                             std::chrono::milliseconds fallback) const {
    auto node = parent[key];
    if (!node) return fallback;
    std::string name = where.empty() ? key : where + "." + key;
    auto parsed = node.IsScalar() ? ParseDuration(node.as<std::string>()) : std::nullopt;
    if (!parsed) return Fail(node, name, "expected a duration such as 500ms, 10s, 5m or 24h");
    return *parsed;
  }

  Result<uint64_t> Size(const YAML::Node& parent, const std::string& where, const char* key,
                        uint64_t fallback) const {
    auto node = parent[key];
    if (!node) return fallback;
    auto parsed = node.IsScalar() ? ParseSize(node.as<std::string>()) : std::nullopt;
    if (!parsed) return Fail(node, where + "." + key, "expected a size such as 0, 512MB or 1GB");
    return *parsed;
  }

  // `<key>_file`: the secret is the file's first line (a trailing newline is not part of
  // it). The path is named in errors; the content never is.
  Result<std::string> SecretFile(const YAML::Node& parent, const std::string& where,
                                 const char* key) const {
    auto node = parent[key];
    if (!node) return std::string();
    PGF_TRY(auto path, String(parent, where, key, true));
    std::ifstream in(path);
    if (!in) {
      return Fail(node, where + "." + key,
                  fmt::format("cannot read {}: {}", path, std::strerror(errno)));
    }
    std::string secret;
    std::getline(in, secret);
    if (!secret.empty() && secret.back() == '\r') secret.pop_back();
    if (secret.empty()) return Fail(node, where + "." + key, path + " is empty");
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      warnings_.push_back(fmt::format(
          "{}: {}.{}: {} can be read by other users (mode {:o}); chmod 600 it", file_, where,
          key, path, st.st_mode & 0777));
    }
    return secret;
  }

  // Looked at and let pass, for the daemon to log once loaded (a secret file others can
  // read).
  const std::vector<std::string>& warnings() const { return warnings_; }
  void Warn(std::string what) const { warnings_.push_back(fmt::format("{}: {}", file_, what)); }

  Result<size_t> Count(const YAML::Node& parent, const std::string& where, const char* key,
                       size_t fallback, size_t min, size_t max) const {
    auto node = parent[key];
    if (!node) return fallback;
    std::string name = where.empty() ? key : where + "." + key;
    size_t value = 0;
    auto text = node.IsScalar() ? node.as<std::string>() : std::string();
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min ||
        value > max) {
      return Fail(node, name, fmt::format("expected a whole number from {} to {}", min, max));
    }
    return value;
  }

 private:
  std::string file_;
  mutable std::vector<std::string> warnings_;
};

inline Result<bool> Bool(const Reader& r, const YAML::Node& node, const std::string& where,
                         bool fallback) {
  if (!node) return fallback;
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    return r.Fail(node, where, "expected true or false");
  }
  return value;
}

// A password written into a connection string ends up in shell history, process lists
// and backups of the config: refuse it and say where it belongs.
inline Result<void> NoInlinePassword(const Reader& r, const YAML::Node& node, const std::string& where) {
  const std::string dsn = node.as<std::string>();
  if (!DsnPassword(dsn)) return boost::outcome_v2::success();
  return r.Fail(node, where,
                "holds a password; keep it out of the config: password_file (a file with the "
                "password), PGPASSWORD in the environment, or a passfile (~/.pgpass, PGPASSFILE)");
}

inline bool IsIdentifier(const std::string& s) {
  static const std::regex re("[a-z_][a-z0-9_]{0,62}");
  return std::regex_match(s, re);
}

// One SQL identifier at `text[at]`: "quoted" (kept exactly, "" is a quote) or bare (folded
// to lower case, letters, digits, '_', '$'). Advances `at`; nullopt when malformed.
inline std::optional<std::string> NextIdentifier(std::string_view text, size_t& at) {
  std::string out;
  if (at < text.size() && text[at] == '"') {
    for (++at; at < text.size(); ++at) {
      if (text[at] != '"') {
        out += text[at];
      } else if (at + 1 < text.size() && text[at + 1] == '"') {
        out += '"';
        ++at;
      } else {
        ++at;
        return out.empty() || out.size() > 63 ? std::nullopt : std::optional(out);
      }
    }
    return std::nullopt;  // unterminated
  }
  while (at < text.size() && text[at] != '.') {
    char c = text[at++];
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
    if (!ok) return std::nullopt;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (out.empty() || out.size() > 63 || std::isdigit(static_cast<unsigned char>(out[0]))) {
    return std::nullopt;
  }
  return out;
}


// Reads a list of column names (exact, as Postgres stores them).
inline Result<std::vector<std::string>> Columns(const Reader& r, const YAML::Node& node,
                                         const std::string& where) {
  if (!node.IsSequence() || node.size() == 0) {
    return r.Fail(node, where, "expected a non-empty list of column names");
  }
  std::vector<std::string> out;
  for (const auto& c : node) {
    if (!c.IsScalar() || c.as<std::string>().empty()) {
      return r.Fail(c, where, "expected column names");
    }
    if (std::find(out.begin(), out.end(), c.as<std::string>()) != out.end()) {
      return r.Fail(c, where, "column '" + c.as<std::string>() + "' listed twice");
    }
    out.push_back(c.as<std::string>());
  }
  return out;
}

// Under source.confirm: sinks only kinds that store their position in the destination
// may run: kInvalidArgument naming `<where>.type` for the others.
Result<void> CheckKindUnderConfirm(const Reader& r, const YAML::Node& node,
                                   const std::string& where, const Config& config);

// sinks[i] of the config (sink_config.cc); `config` holds the tables parsed so far.
Result<SinkConfig> ParseSink(const Reader& r, const YAML::Node& node, const std::string& where,
                             const Config& config);

// `sink_templates:` and `sink_registry:` of the config root, after tables and sinks
// (sink_templates.cc): each template is tried with stand-in values, so that its errors
// name the template and the key.
Result<void> ParseSinkTemplates(const Reader& r, const YAML::Node& root, Config& config);

}  // namespace pgfanout::config_internal
