#include "src/config/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace pgfanout {
namespace {

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

  Result<size_t> Count(const YAML::Node& parent, const std::string& where, const char* key,
                       size_t fallback, size_t min, size_t max) const {
    auto node = parent[key];
    if (!node) return fallback;
    std::string name = where + "." + key;
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
};

bool IsIdentifier(const std::string& s) {
  static const std::regex re("[a-z_][a-z0-9_]{0,62}");
  return std::regex_match(s, re);
}

Result<void> ParseSource(const Reader& r, const YAML::Node& root, SourceConfig& out) {
  auto node = root["source"];
  if (!node) return r.Fail(root, "source", "missing (required): the database to tail");
  PGF_TRY(r.OnlyKeys(node, "source", {"dsn", "slot", "publication", "status_interval"}));
  PGF_TRY(out.dsn, r.String(node, "source", "dsn", true));
  PGF_TRY(out.slot, r.String(node, "source", "slot", false, out.slot));
  PGF_TRY(out.publication, r.String(node, "source", "publication", false, out.publication));
  PGF_TRY(out.status_interval, r.Duration(node, "source", "status_interval", out.status_interval));
  if (!IsIdentifier(out.slot)) {
    return r.Fail(node["slot"], "source.slot",
                  "a slot name is lower-case letters, digits and '_', at most 63");
  }
  if (!IsIdentifier(out.publication)) {
    return r.Fail(node["publication"], "source.publication",
                  "a publication name is lower-case letters, digits and '_', at most 63");
  }
  if (out.status_interval < std::chrono::milliseconds(100) ||
      out.status_interval > std::chrono::seconds(30)) {
    return r.Fail(node["status_interval"], "source.status_interval",
                  "expected 100ms to 30s (it must stay well inside wal_sender_timeout)");
  }
  return boost::outcome_v2::success();
}

Result<void> ParseTables(const Reader& r, const YAML::Node& root, Config& out) {
  auto list = root["tables"];
  if (!list || !list.IsSequence() || list.size() == 0) {
    return r.Fail(list ? list : root, "tables", "expected a non-empty list of tables to track");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    auto node = list[i];
    std::string where = fmt::format("tables[{}]", i);
    PGF_TRY(r.OnlyKeys(node, where, {"name", "tenant_column"}));
    PGF_TRY(auto name, r.String(node, where, "name", true));
    TableConfig table;
    auto dot = name.find('.');
    table.schema = dot == std::string::npos ? "public" : name.substr(0, dot);
    table.name = dot == std::string::npos ? name : name.substr(dot + 1);
    if (!IsIdentifier(table.schema) || !IsIdentifier(table.name)) {
      return r.Fail(node["name"], where + ".name",
                    "expected schema.table in lower-case letters, digits and '_'");
    }
    PGF_TRY(table.tenant_column, r.String(node, where, "tenant_column", false));
    if (!seen.insert(table.QualifiedName()).second) {
      return r.Fail(node, where + ".name", "table " + table.QualifiedName() + " listed twice");
    }
    out.tables.push_back(std::move(table));
  }
  return boost::outcome_v2::success();
}

Result<SinkConfig> ParseSink(const Reader& r, const YAML::Node& node, const std::string& where,
                             const Config& config) {
  PGF_TRY(r.OnlyKeys(node, where, {"id", "type", "tenants", "tables", "path", "batch_size"}));
  SinkConfig sink;
  PGF_TRY(sink.id, r.String(node, where, "id", true));
  static const std::regex id_re("[A-Za-z0-9_.-]{1,64}");
  if (!std::regex_match(sink.id, id_re)) {
    return r.Fail(node["id"], where + ".id", "letters, digits, '_', '-', '.', at most 64");
  }
  PGF_TRY(sink.type, r.String(node, where, "type", true));
  if (sink.type != "jsonl") {
    return r.Fail(node["type"], where + ".type",
                  "unknown sink type '" + sink.type + "' (expected one of: jsonl)");
  }
  auto tenants = node["tenants"];
  if (!tenants || !tenants.IsSequence() || tenants.size() == 0) {
    return r.Fail(tenants ? tenants : node, where + ".tenants",
                  "expected a non-empty list of tenant values, or [\"*\"] for every tenant");
  }
  for (const auto& t : tenants) {
    if (!t.IsScalar()) return r.Fail(t, where + ".tenants", "expected tenant values");
    sink.tenants.push_back(t.as<std::string>());
  }
  if (sink.tenants.size() > 1 && std::count(sink.tenants.begin(), sink.tenants.end(), "*")) {
    return r.Fail(tenants, where + ".tenants", "\"*\" cannot be combined with other tenants");
  }
  if (auto tables = node["tables"]) {
    if (!tables.IsSequence()) return r.Fail(tables, where + ".tables", "expected a list");
    for (size_t i = 0; i < tables.size(); ++i) {
      std::string twhere = fmt::format("{}.tables[{}]", where, i);
      PGF_TRY(r.OnlyKeys(tables[i], twhere, {"source", "target"}));
      SinkTableConfig t;
      PGF_TRY(t.source, r.String(tables[i], twhere, "source", true));
      if (t.source.find('.') == std::string::npos) t.source = "public." + t.source;
      auto dot = t.source.find('.');
      if (!config.FindTable(t.source.substr(0, dot), t.source.substr(dot + 1))) {
        return r.Fail(tables[i]["source"], twhere + ".source",
                      "table " + t.source + " is not in the top-level tables list");
      }
      PGF_TRY(t.target, r.String(tables[i], twhere, "target", false, t.source.substr(dot + 1)));
      sink.tables.push_back(std::move(t));
    }
  }
  PGF_TRY(sink.batch_size, r.Count(node, where, "batch_size", sink.batch_size, 1, 1'000'000));
  if (sink.type == "jsonl") {
    PGF_TRY(sink.path, r.String(node, where, "path", true));
  }
  return sink;
}

}  // namespace

const SinkConfig* Config::FindSink(std::string_view id) const {
  for (const auto& s : sinks) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

const TableConfig* Config::FindTable(std::string_view schema, std::string_view name) const {
  for (const auto& t : tables) {
    if (t.schema == schema && t.name == name) return &t;
  }
  return nullptr;
}

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string_view unit(end, text.data() + text.size() - end);
  uint64_t factor = 0;
  if (unit == "ms")
    factor = 1;
  else if (unit == "s")
    factor = 1000;
  else if (unit == "m")
    factor = 60'000;
  else if (unit == "h")
    factor = 3'600'000;
  else
    return std::nullopt;
  if (value > UINT64_MAX / factor / 1000) return std::nullopt;
  return std::chrono::milliseconds(value * factor);
}

std::string RedactDsn(std::string_view dsn) {
  std::string out(dsn);
  // key=value form: password = 'quoted value' or bare value.
  static const std::regex kv(R"((password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+))", std::regex::icase);
  out = std::regex_replace(out, kv, "$1********");
  // URI form: postgresql://user:secret@host
  static const std::regex uri(R"(((?:postgres|postgresql)://[^:/@\s]*:)[^@\s]*@)",
                              std::regex::icase);
  out = std::regex_replace(out, uri, "$1********@");
  return out;
}

Result<Config> ParseConfig(std::string_view yaml_text, std::string_view file_name) {
  Reader r(file_name);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("{}:{}: not valid YAML: {}", file_name, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap()) {
    return MakeError(
        ErrorKind::kInvalidArgument,
        fmt::format("{}: expected a mapping with source, tables and sinks", file_name));
  }
  Config config;
  config.path = std::string(file_name);
  try {
    PGF_TRY(r.OnlyKeys(root, "", {"source", "state_dir", "http", "log", "tables", "sinks"}));
    PGF_TRY(ParseSource(r, root, config.source));
    PGF_TRY(config.state_dir, r.String(root, "", "state_dir", false, config.state_dir));
    if (auto http = root["http"]) {
      PGF_TRY(r.OnlyKeys(http, "http", {"listen"}));
      PGF_TRY(config.http_listen, r.String(http, "http", "listen", false, config.http_listen));
    }
    if (auto log = root["log"]) {
      PGF_TRY(r.OnlyKeys(log, "log", {"retain"}));
      PGF_TRY(auto retain, r.Duration(log, "log", "retain", config.log.retain));
      config.log.retain = std::chrono::duration_cast<std::chrono::seconds>(retain);
    }
    PGF_TRY(ParseTables(r, root, config));
    auto sinks = root["sinks"];
    if (!sinks || !sinks.IsSequence() || sinks.size() == 0) {
      return r.Fail(sinks ? sinks : root, "sinks", "expected a non-empty list of sinks");
    }
    for (size_t i = 0; i < sinks.size(); ++i) {
      PGF_TRY(auto sink, ParseSink(r, sinks[i], fmt::format("sinks[{}]", i), config));
      if (config.FindSink(sink.id)) {
        return r.Fail(sinks[i]["id"], fmt::format("sinks[{}].id", i),
                      "sink id '" + sink.id + "' is used twice");
      }
      config.sinks.push_back(std::move(sink));
    }
  } catch (const YAML::Exception& e) {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("{}:{}: {}", file_name, e.mark.line + 1, e.msg));
  }
  return config;
}

Result<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("cannot read config file {}: {}", path, std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

}  // namespace pgfanout
