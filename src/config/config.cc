#include "src/config/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <type_traits>

#include "src/config/yaml_reader.h"

namespace pgfanout {
namespace {

using namespace config_internal;



Result<void> ParseSource(const Reader& r, const YAML::Node& root, SourceConfig& out) {
  auto node = root["source"];
  if (!node) return r.Fail(root, "source", "missing (required): the database to tail");
  PGF_TRY(r.OnlyKeys(node, "source",
                     {"dsn", "password_file", "slot", "publication", "decoder", "status_interval",
                      "heartbeat_interval", "retained_wal_warn", "confirm", "signal_table"}));
  if (node["signal_table"]) {
    PGF_TRY(auto signal, r.String(node, "source", "signal_table", true));
    auto name = ParseQualifiedName(signal, "public");
    if (!name) return r.Fail(node["signal_table"], "source.signal_table", kNameHelp);
    std::tie(out.signal_schema, out.signal_table) = *name;
  }
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
  PGF_TRY(out.decoder, r.String(node, "source", "decoder", false, out.decoder));
  if (out.decoder != "pgoutput" && out.decoder != "wal2json") {
    return r.Fail(node["decoder"], "source.decoder",
                  "expected pgoutput (the default) or wal2json");
  }
  PGF_TRY(out.status_interval, r.Duration(node, "source", "status_interval", out.status_interval));
  PGF_TRY(auto confirm, r.String(node, "source", "confirm", false, "log"));
  if (confirm == "log") {
    out.confirm = SourceConfig::Confirm::kLog;
  } else if (confirm == "sinks") {
    out.confirm = SourceConfig::Confirm::kSinks;
  } else {
    return r.Fail(node["confirm"], "source.confirm",
                  "expected log (the default: the slot is confirmed at the event log) or sinks "
                  "(at what every sink made durable in its destination)");
  }
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
    PGF_TRY(r.OnlyKeys(node, where, {"name", "tenant_column", "key", "where", "columns"}));
    PGF_TRY(auto name, r.String(node, where, "name", true));
    TableConfig table;
    auto parsed = ParseQualifiedName(name, "public");
    if (!parsed) return r.Fail(node["name"], where + ".name", kNameHelp);
    std::tie(table.schema, table.name) = *parsed;
    PGF_TRY(table.tenant_column, r.String(node, where, "tenant_column", false));
    if (auto key = node["key"]) {
      PGF_TRY(table.key, Columns(r, key, where + ".key"));
    }
    PGF_TRY(table.row_filter, r.String(node, where, "where", false));
    if (auto columns = node["columns"]) {
      PGF_TRY(table.published_columns, Columns(r, columns, where + ".columns"));
      std::vector<std::string> needed = table.key;
      if (!table.tenant_column.empty()) needed.push_back(table.tenant_column);
      for (const auto& c : needed) {
        if (!table.Publishes(c)) {
          return r.Fail(columns, where + ".columns",
                        fmt::format("must include {} (the table's {}): sinks route and upsert "
                                    "rows by it",
                                    c, c == table.tenant_column ? "tenant_column" : "key"));
        }
      }
    }
    if (out.source.decoder == "wal2json" &&
        (!table.row_filter.empty() || !table.published_columns.empty())) {
      return r.Fail(node[table.row_filter.empty() ? "columns" : "where"],
                    where + (table.row_filter.empty() ? ".columns" : ".where"),
                    "needs source.decoder pgoutput: wal2json has no publication, so every row "
                    "and column would leave the server and be dropped only by pgfanout");
    }
    if (!seen.insert(table.QualifiedName()).second) {
      return r.Fail(node, where + ".name", "table " + table.QualifiedName() + " listed twice");
    }
    out.tables.push_back(std::move(table));
  }
  return boost::outcome_v2::success();
}

}  // namespace

std::optional<std::pair<std::string, std::string>> ParseQualifiedName(
    std::string_view text, std::string_view default_schema) {
  size_t at = 0;
  auto first = config_internal::NextIdentifier(text, at);
  if (!first) return std::nullopt;
  if (at == text.size()) return std::pair(std::string(default_schema), *first);
  if (text[at] != '.') return std::nullopt;
  ++at;
  auto second = config_internal::NextIdentifier(text, at);
  if (!second || at != text.size()) return std::nullopt;
  return std::pair(*first, *second);
}

const SinkTemplate* Config::FindTemplate(std::string_view name) const {
  for (const auto& t : sink_templates) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

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

std::string_view SinkTypeName(const SinkOptions& options) {
  return std::visit([](const auto& o) { return std::decay_t<decltype(o)>::kType; }, options);
}

const SinkTableConfig* FindSinkTable(const std::vector<SinkTableConfig>& tables,
                                     std::string_view default_schema,
                                     const std::string& qualified_source,
                                     SinkTableConfig& fallback) {
  if (tables.empty()) {
    auto dot = qualified_source.find('.');
    fallback = SinkTableConfig{.source = qualified_source,
                               .target_schema = std::string(default_schema),
                               .target = qualified_source.substr(dot + 1)};
    return &fallback;
  }
  for (const auto& t : tables) {
    if (t.source == qualified_source) return &t;
  }
  return nullptr;
}

std::string_view SinkConfig::DefaultTargetSchema() const {
  if (const auto* pg = std::get_if<PostgresSinkOptions>(&options)) return pg->schema;
  return kDefaultTargetSchema;
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

namespace {

// Whether http.listen ("host:port") binds loopback only: localhost, 127.0.0.0/8, ::1.
bool IsLoopbackListen(std::string_view listen) {
  auto colon = listen.rfind(':');
  std::string_view host = colon == std::string_view::npos ? listen : listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") return true;
  // An address literal only: "127.example.com" is a name that may resolve anywhere.
  const std::string literal(host);
  in_addr v4{};
  if (inet_pton(AF_INET, literal.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, literal.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// The options libpq reads from `dsn`, in libpq's order; nullopt when it cannot read it.
// What libpq reads is the truth: a password hidden in a percent-encoded URI key
// (`?%70assword=x`) is a password to it.
std::optional<std::vector<std::pair<std::string, std::string>>> LibpqOptions(
    std::string_view dsn, std::string* error = nullptr) {
  char* message = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(std::string(dsn).c_str(), &message);
  if (message) {
    if (error) *error = message;
    PQfreemem(message);
  }
  if (!parsed) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> out;
  for (PQconninfoOption* o = parsed; o->keyword; ++o) {
    if (o->val) out.emplace_back(o->keyword, o->val);
  }
  PQconninfoFree(parsed);
  return out;
}

std::string QuoteConninfoValue(const std::string& value) {
  bool plain = !value.empty();
  for (char c : value) plain = plain && c != ' ' && c != '\'' && c != '\\' && c != '=';
  if (plain) return value;
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "'";
}

}  // namespace

std::optional<std::string> DsnPassword(std::string_view dsn) {
  auto options = LibpqOptions(dsn);
  if (!options) return std::nullopt;
  for (const auto& [key, value] : *options) {
    if (key == "password" && !value.empty()) return value;
  }
  return std::nullopt;
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
  // What libpq reads from the result decides: a password written some other way (a
  // percent-encoded key, …) means the text cannot be shown as written; it is shown as the
  // options libpq reads, the password masked.
  auto after = LibpqOptions(out);
  if (!after) {
    if (!LibpqOptions(dsn)) return "<a connection string libpq cannot read, not shown>";
  } else {
    bool leaks = false;
    for (const auto& [key, value] : *after) {
      leaks = leaks || (key == "password" && value != "********");
    }
    if (!leaks) return out;
  }
  auto options = LibpqOptions(dsn);
  if (!options) return "<a connection string libpq cannot read, not shown>";
  std::string shown;
  for (const auto& [key, value] : *options) {
    if (!shown.empty()) shown += ' ';
    shown += key + "=" + (key == "password" ? std::string("********") : QuoteConninfoValue(value));
  }
  return shown;
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
    PGF_TRY(r.OnlyKeys(
        root, "",
        {"source", "state_dir", "http", "log", "tables", "sinks", "shutdown_timeout",
         "backfill_concurrency", "delivery", "metrics", "sink_templates", "sink_registry"}));
    PGF_TRY(ParseSource(r, root, config.source));
    PGF_TRY(config.state_dir, r.String(root, "", "state_dir", false, config.state_dir));
    PGF_TRY(config.shutdown_timeout,
            r.Duration(root, "", "shutdown_timeout", config.shutdown_timeout));
    PGF_TRY(config.backfill_concurrency,
            r.Count(root, "", "backfill_concurrency", config.backfill_concurrency, 1, 64));
    if (auto http = root["http"]) {
      PGF_TRY(r.OnlyKeys(http, "http",
                         {"listen", "token_file", "sample_interval", "allowed_hosts",
                          "allow_unauthenticated"}));
      PGF_TRY(config.sample_interval,
              r.Duration(http, "http", "sample_interval", config.sample_interval));
      if (config.sample_interval < std::chrono::milliseconds(100)) {
        return r.Fail(http["sample_interval"], "http.sample_interval", "expected at least 100ms");
      }
      PGF_TRY(config.http_listen, r.String(http, "http", "listen", false, config.http_listen));
      if (config.http_listen == "off") config.http_listen.clear();
      PGF_TRY(config.http_token, r.SecretFile(http, "http", "token_file"));
      if (auto hosts = http["allowed_hosts"]) {
        if (!hosts.IsSequence()) {
          return r.Fail(hosts, "http.allowed_hosts", "expected a list of host names");
        }
        for (const auto& h : hosts) {
          if (!h.IsScalar() || h.as<std::string>().empty()) {
            return r.Fail(h, "http.allowed_hosts", "expected a list of host names");
          }
          config.http_allowed_hosts.push_back(h.as<std::string>());
        }
      }
      PGF_TRY(config.http_allow_unauthenticated,
              Bool(r, http["allow_unauthenticated"], "http.allow_unauthenticated", false));
      if (!config.http_listen.empty() && !IsLoopbackListen(config.http_listen) &&
          config.http_token.empty() && !config.http_allow_unauthenticated) {
        return r.Fail(http["listen"] ? http["listen"] : http, "http.listen",
                      fmt::format("'{}' is reachable beyond this machine, and without "
                                  "http.token_file anyone who reaches it reads every sink's "
                                  "state: set http.token_file, listen on 127.0.0.1, or (behind "
                                  "a proxy that authenticates) http.allow_unauthenticated: true",
                                  config.http_listen));
      }
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
    if (auto delivery = root["delivery"]) {
      PGF_TRY(r.OnlyKeys(
          delivery, "delivery",
          {"workers", "memory", "idle_close", "max_connections", "copy_chunk_rows", "copy_round"}));
      PGF_TRY(config.delivery.workers,
              r.Count(delivery, "delivery", "workers", config.delivery.workers, 0, 256));
      PGF_TRY(config.delivery.memory,
              r.Size(delivery, "delivery", "memory", config.delivery.memory));
      if (config.delivery.memory < (1u << 20)) {
        return r.Fail(delivery["memory"], "delivery.memory", "expected at least 1MB");
      }
      PGF_TRY(config.delivery.idle_close,
              r.Duration(delivery, "delivery", "idle_close", config.delivery.idle_close));
      PGF_TRY(config.delivery.max_connections,
              r.Count(delivery, "delivery", "max_connections", config.delivery.max_connections,
                      0, 1'000'000));
      PGF_TRY(config.delivery.copy_chunk_rows,
              r.Count(delivery, "delivery", "copy_chunk_rows", config.delivery.copy_chunk_rows, 100,
                      1'000'000));
      PGF_TRY(config.delivery.copy_round,
              r.Duration(delivery, "delivery", "copy_round", config.delivery.copy_round));
      if (config.delivery.copy_round.count() <= 0) {
        return r.Fail(delivery["copy_round"], "delivery.copy_round", "expected more than 0");
      }
    }
    if (auto metrics = root["metrics"]) {
      PGF_TRY(r.OnlyKeys(metrics, "metrics", {"per_sink"}));
      PGF_TRY(auto per_sink, r.String(metrics, "metrics", "per_sink", false, "auto"));
      if (per_sink == "auto") {
        config.per_sink_metrics = PerSinkMetrics::kAuto;
      } else if (per_sink == "on" || per_sink == "true") {
        config.per_sink_metrics = PerSinkMetrics::kOn;
      } else if (per_sink == "off" || per_sink == "false") {
        config.per_sink_metrics = PerSinkMetrics::kOff;
      } else {
        return r.Fail(metrics["per_sink"], "metrics.per_sink",
                      fmt::format("expected auto (per-sink series up to {} sinks, aggregates "
                                  "above), on or off",
                                  kPerSinkMetricsAutoLimit));
      }
    }
    PGF_TRY(ParseTables(r, root, config));
    // With a sink registry every sink may come from it.
    auto sinks = root["sinks"];
    const bool registry = static_cast<bool>(root["sink_registry"]);
    if (!sinks && registry) sinks = YAML::Node(YAML::NodeType::Sequence);
    if (!sinks || !sinks.IsSequence() || (sinks.size() == 0 && !registry)) {
      return r.Fail(sinks ? sinks : root, "sinks",
                    "expected a non-empty list of sinks (or a sink_registry)");
    }
    for (size_t i = 0; i < sinks.size(); ++i) {
      PGF_TRY(auto sink, ParseSink(r, sinks[i], fmt::format("sinks[{}]", i), config));
      if (config.FindSink(sink.id)) {
        return r.Fail(sinks[i]["id"], fmt::format("sinks[{}].id", i),
                      "sink id '" + sink.id + "' is used twice");
      }
      config.sinks.push_back(std::move(sink));
    }
    PGF_TRY(ParseSinkTemplates(r, root, config));
  } catch (const YAML::Exception& e) {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("{}:{}: {}", file_name, e.mark.line + 1, e.msg));
  }
  config.warnings = r.warnings();
  return config;
}

std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& next) {
  std::vector<std::string> out;
  if (!(next.source == running.source)) out.push_back("source");
  if (next.tables != running.tables) out.push_back("tables");
  if (next.state_dir != running.state_dir) out.push_back("state_dir");
  if (next.http_listen != running.http_listen || next.http_token != running.http_token ||
      next.http_allowed_hosts != running.http_allowed_hosts ||
      next.http_allow_unauthenticated != running.http_allow_unauthenticated ||
      next.sample_interval != running.sample_interval) {
    out.push_back("http");
  }
  if (!(next.log == running.log)) out.push_back("log");
  if (!(next.delivery == running.delivery)) out.push_back("delivery");
  if (next.backfill_concurrency != running.backfill_concurrency) {
    out.push_back("backfill_concurrency");
  }
  if (next.shutdown_timeout != running.shutdown_timeout) out.push_back("shutdown_timeout");
  if (next.per_sink_metrics != running.per_sink_metrics) out.push_back("metrics");
  if (!(next.sink_registry == running.sink_registry)) out.push_back("sink_registry");
  if (out.empty()) {
    Config same = running;
    same.path = next.path;
    same.sinks = next.sinks;
    same.sink_templates = next.sink_templates;  // applied: the registry's sinks restart
    same.warnings = next.warnings;
    if (!(same == next)) out.push_back("other settings");
  }
  return out;
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
