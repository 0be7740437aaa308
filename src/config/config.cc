#include "src/config/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
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
    return secret;
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

// A password written into a connection string ends up in shell history, process lists
// and backups of the config: refuse it and say where it belongs.
Result<void> NoInlinePassword(const Reader& r, const YAML::Node& node, const std::string& where) {
  const std::string dsn = node.as<std::string>();
  if (RedactDsn(dsn) == dsn) return boost::outcome_v2::success();
  return r.Fail(node, where,
                "holds a password; keep it out of the config: password_file (a file with the "
                "password), PGPASSWORD in the environment, or a passfile (~/.pgpass, PGPASSFILE)");
}

bool IsIdentifier(const std::string& s) {
  static const std::regex re("[a-z_][a-z0-9_]{0,62}");
  return std::regex_match(s, re);
}

// One SQL identifier at `text[at]`: "quoted" (kept exactly, "" is a quote) or bare (folded
// to lower case, letters, digits, '_', '$'). Advances `at`; nullopt when malformed.
std::optional<std::string> NextIdentifier(std::string_view text, size_t& at) {
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

}  // namespace

std::optional<std::pair<std::string, std::string>> ParseQualifiedName(
    std::string_view text, std::string_view default_schema) {
  size_t at = 0;
  auto first = NextIdentifier(text, at);
  if (!first) return std::nullopt;
  if (at == text.size()) return std::pair(std::string(default_schema), *first);
  if (text[at] != '.') return std::nullopt;
  ++at;
  auto second = NextIdentifier(text, at);
  if (!second || at != text.size()) return std::nullopt;
  return std::pair(*first, *second);
}

namespace {

constexpr const char* kNameHelp =
    "expected [schema.]table; unquoted names fold to lower case, write \"Mixed Case\" in "
    "double quotes to keep it";

// Reads a list of column names (exact, as Postgres stores them).
Result<std::vector<std::string>> Columns(const Reader& r, const YAML::Node& node,
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

Result<void> ParseSource(const Reader& r, const YAML::Node& root, SourceConfig& out) {
  auto node = root["source"];
  if (!node) return r.Fail(root, "source", "missing (required): the database to tail");
  PGF_TRY(r.OnlyKeys(node, "source",
                     {"dsn", "password_file", "slot", "publication", "status_interval",
                      "heartbeat_interval", "retained_wal_warn"}));
  PGF_TRY(out.dsn, r.String(node, "source", "dsn", true));
  PGF_TRY(NoInlinePassword(r, node["dsn"], "source.dsn"));
  PGF_TRY(out.password, r.SecretFile(node, "source", "password_file"));
  if (auto hb = node["heartbeat_interval"]; hb && hb.IsScalar() && hb.as<std::string>() == "0") {
    out.heartbeat_interval = std::chrono::milliseconds(0);
  } else {
    PGF_TRY(out.heartbeat_interval,
            r.Duration(node, "source", "heartbeat_interval", out.heartbeat_interval));
    if (node["heartbeat_interval"] && out.heartbeat_interval < std::chrono::seconds(1)) {
      return r.Fail(node["heartbeat_interval"], "source.heartbeat_interval",
                    "expected 0 (off) or at least 1s");
    }
  }
  PGF_TRY(out.retained_wal_warn, r.Size(node, "source", "retained_wal_warn", out.retained_wal_warn));
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
    PGF_TRY(r.OnlyKeys(node, where, {"name", "tenant_column", "key"}));
    PGF_TRY(auto name, r.String(node, where, "name", true));
    TableConfig table;
    auto parsed = ParseQualifiedName(name, "public");
    if (!parsed) return r.Fail(node["name"], where + ".name", kNameHelp);
    std::tie(table.schema, table.name) = *parsed;
    PGF_TRY(table.tenant_column, r.String(node, where, "tenant_column", false));
    if (auto key = node["key"]) {
      PGF_TRY(table.key, Columns(r, key, where + ".key"));
    }
    if (!seen.insert(table.QualifiedName()).second) {
      return r.Fail(node, where + ".name", "table " + table.QualifiedName() + " listed twice");
    }
    out.tables.push_back(std::move(table));
  }
  return boost::outcome_v2::success();
}

Result<SinkTableConfig> ParseSinkTable(const Reader& r, const YAML::Node& node,
                                       const std::string& where, const SinkConfig& sink,
                                       const Config& config) {
  PGF_TRY(r.OnlyKeys(
      node, where,
      {"source", "target", "columns", "rename", "computed", "delete", "soft_delete_column"}));
  if (sink.type != "postgres") {
    for (const char* key : {"columns", "rename", "computed", "delete", "soft_delete_column"}) {
      if (node[key]) {
        return r.Fail(node, where, "columns, rename, computed and delete are for postgres sinks");
      }
    }
  }
  SinkTableConfig t;
  PGF_TRY(auto source, r.String(node, where, "source", true));
  auto src = ParseQualifiedName(source, "public");
  if (!src) return r.Fail(node["source"], where + ".source", kNameHelp);
  t.source = src->first + "." + src->second;
  const TableConfig* table = config.FindTable(src->first, src->second);
  if (!table) {
    return r.Fail(node["source"], where + ".source",
                  "table " + t.source + " is not in the top-level tables list");
  }
  PGF_TRY(auto target, r.String(node, where, "target", false));
  if (target.empty()) {
    t.target_schema = sink.schema;
    t.target = src->second;
  } else {
    auto tgt = ParseQualifiedName(target, sink.schema);
    if (!tgt) return r.Fail(node["target"], where + ".target", kNameHelp);
    std::tie(t.target_schema, t.target) = *tgt;
  }
  if (auto cols = node["columns"]) {
    PGF_TRY(t.columns, Columns(r, cols, where + ".columns"));
  }
  auto listed = [&](const std::string& c) {
    return t.columns.empty() || std::find(t.columns.begin(), t.columns.end(), c) != t.columns.end();
  };
  std::set<std::string> targets;
  if (auto rename = node["rename"]) {
    if (!rename.IsMap()) return r.Fail(rename, where + ".rename", "expected source: target pairs");
    for (const auto& kv : rename) {
      auto from = kv.first.as<std::string>();
      if (!kv.second.IsScalar() || kv.second.as<std::string>().empty()) {
        return r.Fail(kv.second, where + ".rename." + from, "expected a target column name");
      }
      if (!listed(from)) {
        return r.Fail(kv.first, where + ".rename." + from, "column is not in columns:");
      }
      t.rename.emplace_back(from, kv.second.as<std::string>());
    }
  }
  for (const auto& c : t.columns) {
    if (!targets.insert(t.TargetColumn(c)).second) {
      return r.Fail(node, where, "two columns map to target column '" + t.TargetColumn(c) + "'");
    }
  }
  if (auto computed = node["computed"]) {
    if (!computed.IsMap()) {
      return r.Fail(computed, where + ".computed", "expected target_column: SQL expression");
    }
    for (const auto& kv : computed) {
      auto name = kv.first.as<std::string>();
      if (!kv.second.IsScalar() || kv.second.as<std::string>().empty()) {
        return r.Fail(kv.second, where + ".computed." + name, "expected a SQL expression");
      }
      if (!targets.insert(name).second) {
        return r.Fail(kv.first, where + ".computed." + name,
                      "target column '" + name + "' is already mapped");
      }
      t.computed.push_back({name, kv.second.as<std::string>()});
    }
  }
  PGF_TRY(auto mode, r.String(node, where, "delete", false, "hard"));
  if (mode != "hard" && mode != "soft") {
    return r.Fail(node["delete"], where + ".delete", "expected hard or soft");
  }
  t.delete_mode = mode == "soft" ? DeleteMode::kSoft : DeleteMode::kHard;
  PGF_TRY(t.soft_delete_column, r.String(node, where, "soft_delete_column", false));
  if (t.delete_mode == DeleteMode::kSoft && t.soft_delete_column.empty()) {
    return r.Fail(node, where + ".soft_delete_column",
                  "missing: delete: soft needs the column to mark (a boolean such as "
                  "is_deleted, or a timestamp such as deleted_at)");
  }
  if (t.delete_mode == DeleteMode::kHard && !t.soft_delete_column.empty()) {
    return r.Fail(node["soft_delete_column"], where + ".soft_delete_column",
                  "only with delete: soft");
  }
  if (!t.soft_delete_column.empty() && !targets.insert(t.soft_delete_column).second) {
    return r.Fail(node["soft_delete_column"], where + ".soft_delete_column",
                  "column '" + t.soft_delete_column + "' is already mapped");
  }
  // A per-tenant sink turns TRUNCATE into "delete my tenants' rows", which needs the
  // tenant column in the target.
  if (!sink.AllTenants() && !table->tenant_column.empty() && !listed(table->tenant_column)) {
    return r.Fail(node["columns"], where + ".columns",
                  "must include the tenant column '" + table->tenant_column +
                      "': this sink serves only some tenants, and needs it to delete theirs "
                      "on TRUNCATE");
  }
  return t;
}

Result<SinkConfig> ParseSink(const Reader& r, const YAML::Node& node, const std::string& where,
                             const Config& config) {
  PGF_TRY(r.OnlyKeys(node, where,
                     {"id", "type", "tenants", "tables", "path", "batch_size", "backfill", "dsn",
                      "password_file", "schema", "create_tables", "version_column"}));
  SinkConfig sink;
  PGF_TRY(sink.id, r.String(node, where, "id", true));
  static const std::regex id_re("[A-Za-z0-9_.-]{1,64}");
  if (!std::regex_match(sink.id, id_re)) {
    return r.Fail(node["id"], where + ".id", "letters, digits, '_', '-', '.', at most 64");
  }
  PGF_TRY(sink.type, r.String(node, where, "type", true));
  if (sink.type != "jsonl" && sink.type != "postgres") {
    return r.Fail(node["type"], where + ".type",
                  "unknown sink type '" + sink.type + "' (expected one of: jsonl, postgres)");
  }
  // Keys of the other sink kind are mistakes, not silently ignored settings.
  const bool pg = sink.type == "postgres";
  for (const char* key : {"dsn", "password_file", "schema", "create_tables", "version_column"}) {
    if (!pg && node[key]) return r.Fail(node[key], where + "." + key, "only for postgres sinks");
  }
  if (pg && node["path"]) return r.Fail(node["path"], where + ".path", "only for jsonl sinks");
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
  if (pg) {
    PGF_TRY(sink.dsn, r.String(node, where, "dsn", true));
    PGF_TRY(NoInlinePassword(r, node["dsn"], where + ".dsn"));
    PGF_TRY(sink.password, r.SecretFile(node, where, "password_file"));
    PGF_TRY(auto schema, r.String(node, where, "schema", false, "public"));
    size_t at = 0;
    auto ident = NextIdentifier(schema, at);
    if (!ident || at != schema.size()) return r.Fail(node["schema"], where + ".schema", kNameHelp);
    sink.schema = *ident;
    if (auto ct = node["create_tables"]) {
      bool value = false;
      if (!ct.IsScalar() || !YAML::convert<bool>::decode(ct, value)) {
        return r.Fail(ct, where + ".create_tables", "expected true or false");
      }
      sink.create_tables = value;
    }
    PGF_TRY(sink.version_column,
            r.String(node, where, "version_column", false, sink.version_column));
  }
  if (auto tables = node["tables"]) {
    if (!tables.IsSequence()) return r.Fail(tables, where + ".tables", "expected a list");
    std::set<std::string> sources, targets;
    for (size_t i = 0; i < tables.size(); ++i) {
      std::string twhere = fmt::format("{}.tables[{}]", where, i);
      PGF_TRY(auto t, ParseSinkTable(r, tables[i], twhere, sink, config));
      if (!sources.insert(t.source).second) {
        return r.Fail(tables[i], twhere + ".source", "table " + t.source + " mapped twice");
      }
      if (!targets.insert(t.target_schema + "." + t.target).second) {
        return r.Fail(tables[i], twhere + ".target", "two tables map to " + t.target);
      }
      sink.tables.push_back(std::move(t));
    }
  }
  PGF_TRY(sink.batch_size, r.Count(node, where, "batch_size", sink.batch_size, 1, 1'000'000));
  // A JSONL sink is a change log: by default it starts with the changes, not with lines for
  // the rows that exist already. A database sink needs those rows to be a copy.
  sink.backfill = sink.type != "jsonl";
  if (auto bf = node["backfill"]) {
    if (!bf.IsScalar() || !YAML::convert<bool>::decode(bf, sink.backfill)) {
      return r.Fail(bf, where + ".backfill", "expected true or false");
    }
  }
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

std::string SinkTableConfig::TargetColumn(const std::string& column) const {
  for (const auto& [from, to] : rename) {
    if (from == column) return to;
  }
  return column;
}

const SinkTableConfig* SinkConfig::FindTable(const std::string& qualified_source,
                                             SinkTableConfig& fallback) const {
  if (tables.empty()) {
    auto dot = qualified_source.find('.');
    fallback = SinkTableConfig{.source = qualified_source,
                               .target_schema = schema,
                               .target = qualified_source.substr(dot + 1)};
    return &fallback;
  }
  for (const auto& t : tables) {
    if (t.source == qualified_source) return &t;
  }
  return nullptr;
}

bool SinkConfig::Receives(const TableConfig& table) const {
  SinkTableConfig fallback;
  return FindTable(table.QualifiedName(), fallback) != nullptr &&
         (AllTenants() || !table.tenant_column.empty());
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

std::optional<uint64_t> ParseSize(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string_view unit(end, text.data() + text.size() - end);
  int shift = -1;
  if (unit.empty() || unit == "B") shift = 0;
  if (unit == "kB" || unit == "KB" || unit == "KiB") shift = 10;
  if (unit == "MB" || unit == "MiB") shift = 20;
  if (unit == "GB" || unit == "GiB") shift = 30;
  if (unit == "TB" || unit == "TiB") shift = 40;
  if (shift < 0 || (shift > 0 && value > (UINT64_MAX >> shift))) return std::nullopt;
  return value << shift;
}

std::string RedactDsn(std::string_view dsn) {
  // libstdc++'s regex recurses once per character matched: tens of kB overflow the stack.
  // No real DSN comes near the limit, so a longer one is not shown at all.
  constexpr size_t kMaxShown = 4096;
  if (dsn.size() > kMaxShown) {
    return fmt::format("<connection string of {} bytes, not shown>", dsn.size());
  }
  std::string out(dsn);
  // key=value form: password = 'quoted value' or bare value.
  static const std::regex kv(R"((password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+))", std::regex::icase);
  out = std::regex_replace(out, kv, "$1********");
  // URI form: postgresql://user:secret@host. libpq reads user and password up to the '@',
  // spaces included, so the pattern does too.
  static const std::regex uri(R"(((?:postgres|postgresql)://[^:/@]*:)[^@]*@)", std::regex::icase);
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
    PGF_TRY(r.OnlyKeys(root, "",
                       {"source", "state_dir", "http", "log", "tables", "sinks", "shutdown_timeout"}));
    PGF_TRY(ParseSource(r, root, config.source));
    PGF_TRY(config.state_dir, r.String(root, "", "state_dir", false, config.state_dir));
    PGF_TRY(config.shutdown_timeout,
            r.Duration(root, "", "shutdown_timeout", config.shutdown_timeout));
    if (auto http = root["http"]) {
      PGF_TRY(r.OnlyKeys(http, "http", {"listen", "token_file", "sample_interval"}));
      PGF_TRY(config.sample_interval,
              r.Duration(http, "http", "sample_interval", config.sample_interval));
      if (config.sample_interval < std::chrono::milliseconds(100)) {
        return r.Fail(http["sample_interval"], "http.sample_interval", "expected at least 100ms");
      }
      PGF_TRY(config.http_listen, r.String(http, "http", "listen", false, config.http_listen));
      if (config.http_listen == "off") config.http_listen.clear();
      PGF_TRY(config.http_token, r.SecretFile(http, "http", "token_file"));
    }
    if (auto log = root["log"]) {
      PGF_TRY(r.OnlyKeys(log, "log", {"retain", "lagging_sinks"}));
      PGF_TRY(auto retain, r.Duration(log, "log", "retain", config.log.retain));
      config.log.retain = std::chrono::duration_cast<std::chrono::seconds>(retain);
      PGF_TRY(auto policy, r.String(log, "log", "lagging_sinks", false, "hold"));
      if (policy != "hold" && policy != "drop") {
        return r.Fail(log["lagging_sinks"], "log.lagging_sinks",
                      "expected hold (keep events for a sink behind log.retain, the state dir "
                      "grows) or drop (trim them, the sink stops and needs a re-snapshot)");
      }
      config.log.lagging_sinks =
          policy == "drop" ? LaggingSinkPolicy::kDrop : LaggingSinkPolicy::kHold;
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
