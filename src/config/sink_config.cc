#include <fmt/format.h>

#include <algorithm>
#include <regex>
#include <set>

#include "src/config/yaml_reader.h"
#include "src/core/predicate.h"

namespace pgfanout::config_internal {
namespace {

Result<SinkTableConfig> ParseSinkTable(const Reader& r, const YAML::Node& node,
                                       const std::string& where, const SinkConfig& sink,
                                       const Config& config) {
  PGF_TRY(r.OnlyKeys(node, where,
                     {"source", "target", "columns", "rename", "computed", "delete",
                      "soft_delete_column", "where"}));
  if (!std::holds_alternative<PostgresSinkOptions>(sink.options)) {
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
    t.target_schema = sink.DefaultTargetSchema();
    t.target = src->second;
  } else {
    auto tgt = ParseQualifiedName(target, sink.DefaultTargetSchema());
    if (!tgt) return r.Fail(node["target"], where + ".target", kNameHelp);
    std::tie(t.target_schema, t.target) = *tgt;
  }
  if (auto cols = node["columns"]) {
    PGF_TRY(t.columns, Columns(r, cols, where + ".columns"));
  }
  PGF_TRY(t.where, r.String(node, where, "where", false));
  if (!t.where.empty()) {
    // Checked against the columns' types when the sink first sees the table.
    auto parsed = Predicate::Parse(t.where);
    if (!parsed) return r.Fail(node["where"], where + ".where", parsed.error().message);
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


// Which keys each sink kind takes besides the common ones; a key of another kind is a
// mistake, not a silently ignored setting.
struct KindKeys {
  SinkOptions defaults;  // the kind, its options at their defaults
  std::vector<std::string_view> keys;

  std::string_view type() const { return SinkTypeName(defaults); }
};
const std::vector<KindKeys>& Kinds() {
  static const std::vector<KindKeys> kinds = {
      {JsonlSinkOptions{}, {"path"}},
      {DiscardSinkOptions{}, {}},
      {PostgresSinkOptions{},
       {"dsn", "password_file", "schema", "create_tables", "version_column"}},
      {ClickHouseSinkOptions{},
       {"url", "database", "user", "password_file", "create_tables", "timeout"}},
      {WebhookSinkOptions{},
       {"url", "secret_file", "timeout", "allow_private", "envelope", "ca_file"}},
      {NatsSinkOptions{},
       {"url", "servers", "user", "password_file", "stream", "subject_prefix", "replicas",
        "timeout"}},
  };
  return kinds;
}

// The per-request timeout of the kinds that talk to a server over the network.
Result<void> ParseTimeout(const Reader& r, const YAML::Node& node, const std::string& where,
                          std::chrono::milliseconds& timeout) {
  PGF_TRY(timeout, r.Duration(node, where, "timeout", timeout));
  if (timeout < std::chrono::milliseconds(100)) {
    return r.Fail(node["timeout"], where + ".timeout", "expected at least 100ms");
  }
  return boost::outcome_v2::success();
}

// An http(s):// or nats:// URL as the sink will use it: scheme, host, optional port and
// path. Credentials in it are refused (like a password in a DSN).
Result<std::string> Url(const Reader& r, const YAML::Node& parent, const std::string& where,
                        const char* key, std::initializer_list<std::string_view> schemes) {
  PGF_TRY(auto url, r.String(parent, where, key, true));
  const std::string name = where + "." + key;
  auto colon = url.find("://");
  std::string scheme = colon == std::string::npos ? "" : url.substr(0, colon);
  if (std::find(schemes.begin(), schemes.end(), scheme) == schemes.end()) {
    std::string list;
    for (auto s : schemes) list += (list.empty() ? "" : ", ") + std::string(s) + "://";
    return r.Fail(parent[key], name, "expected a URL starting with " + list);
  }
  const std::string rest = url.substr(colon + 3);
  const std::string authority = rest.substr(0, rest.find('/'));
  if (authority.empty()) return r.Fail(parent[key], name, "the URL names no host");
  if (authority.find('@') != std::string::npos) {
    return r.Fail(parent[key], name,
                  "holds credentials; keep them out of the config: user and password_file");
  }
  return url;
}

}  // namespace

Result<void> CheckKindUnderConfirm(const Reader& r, const YAML::Node& node,
                                   const std::string& where, const Config& config) {
  if (config.source.confirm != SourceConfig::Confirm::kSinks) return boost::outcome_v2::success();
  auto type_node = node["type"];
  if (!type_node || !type_node.IsScalar()) return boost::outcome_v2::success();
  const std::string type = type_node.as<std::string>();
  if (type == "postgres" || type == "clickhouse" || type == "discard") {
    return boost::outcome_v2::success();
  }
  // The slot is confirmed at what each sink's destination stores: a kind that stores no
  // position there cannot say what it holds, and a standby could not resume it.
  return r.Fail(type_node, where + ".type",
                fmt::format("a {} sink cannot run under source.confirm: sinks: it keeps no "
                            "position in its destination that the slot could be confirmed at "
                            "or a standby resume from (postgres and clickhouse sinks can). Use "
                            "source.confirm: log, or another kind",
                            type));
}

Result<SinkConfig> ParseSink(const Reader& r, const YAML::Node& node, const std::string& where,
                             const Config& config) {
  if (!node.IsMap()) return r.Fail(node, where, "expected a mapping");
  SinkConfig sink;
  PGF_TRY(sink.id, r.String(node, where, "id", true));
  static const std::regex id_re("[A-Za-z0-9_.-]{1,64}");
  if (!std::regex_match(sink.id, id_re)) {
    return r.Fail(node["id"], where + ".id", "letters, digits, '_', '-', '.', at most 64");
  }
  PGF_TRY(auto type, r.String(node, where, "type", true));
  const KindKeys* kind = nullptr;
  for (const auto& k : Kinds()) {
    if (type == k.type()) kind = &k;
  }
  if (!kind) {
    return r.Fail(node["type"], where + ".type",
                  "unknown sink type '" + type +
                      "' (expected one of: jsonl, postgres, clickhouse, webhook, nats, discard)");
  }
  PGF_TRY(CheckKindUnderConfirm(r, node, where, config));
  sink.options = kind->defaults;
  for (const auto& k : Kinds()) {
    for (auto key : k.keys) {
      const std::string ks(key);
      if (!node[ks] || std::find(kind->keys.begin(), kind->keys.end(), key) != kind->keys.end()) {
        continue;
      }
      std::string owners;
      for (const auto& o : Kinds()) {
        if (std::find(o.keys.begin(), o.keys.end(), key) != o.keys.end()) {
          owners += (owners.empty() ? "" : ", ") + std::string(o.type());
        }
      }
      return r.Fail(node[ks], where + "." + ks, "only for " + owners + " sinks");
    }
  }
  std::vector<std::string_view> keys = {"id",         "type",        "tenants", "tables",
                                        "batch_size", "batch_bytes", "backfill"};
  keys.insert(keys.end(), kind->keys.begin(), kind->keys.end());
  PGF_TRY(r.OnlyKeys(node, where, keys));
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
  if (auto* pg = std::get_if<PostgresSinkOptions>(&sink.options)) {
    PGF_TRY(pg->dsn, r.String(node, where, "dsn", true));
    PGF_TRY(NoInlinePassword(r, node["dsn"], where + ".dsn"));
    PGF_TRY(pg->password, r.SecretFile(node, where, "password_file"));
    PGF_TRY(auto schema, r.String(node, where, "schema", false, "public"));
    size_t at = 0;
    auto ident = NextIdentifier(schema, at);
    if (!ident || at != schema.size()) return r.Fail(node["schema"], where + ".schema", kNameHelp);
    pg->schema = *ident;
    if (auto ct = node["create_tables"]) {
      bool value = false;
      if (!ct.IsScalar() || !YAML::convert<bool>::decode(ct, value)) {
        return r.Fail(ct, where + ".create_tables", "expected true or false");
      }
      pg->create_tables = value;
    }
    PGF_TRY(pg->version_column, r.String(node, where, "version_column", false, pg->version_column));
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
  PGF_TRY(sink.batch_bytes, r.Size(node, where, "batch_bytes", sink.batch_bytes));
  if (sink.batch_bytes < (uint64_t{64} << 10) || sink.batch_bytes > (uint64_t{1} << 30)) {
    return r.Fail(node["batch_bytes"], where + ".batch_bytes", "expected a size from 64kB to 1GB");
  }
  // JSONL, webhook and NATS sinks are change streams: by default they start with the
  // changes, not with an insert for every row that exists already. A database sink needs
  // those rows to be a copy.
  sink.backfill = std::holds_alternative<PostgresSinkOptions>(sink.options) ||
                  std::holds_alternative<ClickHouseSinkOptions>(sink.options);
  if (auto bf = node["backfill"]) {
    if (!bf.IsScalar() || !YAML::convert<bool>::decode(bf, sink.backfill)) {
      return r.Fail(bf, where + ".backfill", "expected true or false");
    }
  }
  if (auto* jsonl = std::get_if<JsonlSinkOptions>(&sink.options)) {
    PGF_TRY(jsonl->path, r.String(node, where, "path", true));
  }
  if (auto* ch = std::get_if<ClickHouseSinkOptions>(&sink.options)) {
    PGF_TRY(ParseTimeout(r, node, where, ch->timeout));
    PGF_TRY(ch->url, Url(r, node, where, "url", {"http", "https"}));
    PGF_TRY(ch->database, r.String(node, where, "database", false, ch->database));
    PGF_TRY(ch->user, r.String(node, where, "user", false));
    PGF_TRY(ch->password, r.SecretFile(node, where, "password_file"));
    PGF_TRY(ch->create_tables, Bool(r, node["create_tables"], where + ".create_tables", true));
    if (!ch->password.empty() && ch->url.rfind("http://", 0) == 0) {
      r.Warn(fmt::format("{} (sink {}): the ClickHouse password goes in an HTTP Basic "
                         "Authorization header over plain http://, readable by anyone on the "
                         "way; use https://",
                         where, sink.id));
    }
  }
  if (auto* hook = std::get_if<WebhookSinkOptions>(&sink.options)) {
    PGF_TRY(ParseTimeout(r, node, where, hook->timeout));
    PGF_TRY(hook->url, Url(r, node, where, "url", {"http", "https"}));
    PGF_TRY(hook->secret, r.SecretFile(node, where, "secret_file"));
    if (hook->secret.empty()) {
      return r.Fail(node, where + ".secret_file",
                    "missing (required): the file with the signing secret (whsec_<base64>, "
                    "as Standard Webhooks define it)");
    }
    PGF_TRY(hook->allow_private, Bool(r, node["allow_private"], where + ".allow_private", false));
    PGF_TRY(hook->ca_file, r.String(node, where, "ca_file", false));
    PGF_TRY(hook->envelope, r.String(node, where, "envelope", false, hook->envelope));
    if (hook->envelope != "pgfanout" && hook->envelope != "debezium") {
      return r.Fail(node["envelope"], where + ".envelope", "expected pgfanout or debezium");
    }
  }
  if (auto* nats = std::get_if<NatsSinkOptions>(&sink.options)) {
    PGF_TRY(ParseTimeout(r, node, where, nats->timeout));
    PGF_TRY(nats->url, Url(r, node, where, "url", {"nats"}));
    if (auto list = node["servers"]) {
      if (!list.IsSequence()) return r.Fail(list, where + ".servers", "expected a list of URLs");
      for (size_t i = 0; i < list.size(); ++i) {
        YAML::Node holder;
        holder["u"] = list[i];
        PGF_TRY(auto u, Url(r, holder, fmt::format("{}.servers[{}]", where, i), "u", {"nats"}));
        nats->servers.push_back(std::move(u));
      }
    }
    PGF_TRY(nats->user, r.String(node, where, "user", false));
    PGF_TRY(nats->password, r.SecretFile(node, where, "password_file"));
    PGF_TRY(nats->stream, r.String(node, where, "stream", false, nats->stream));
    static const std::regex stream_re("[A-Za-z0-9_-]{1,64}");
    if (!std::regex_match(nats->stream, stream_re)) {
      return r.Fail(node["stream"], where + ".stream", "letters, digits, '_', '-', at most 64");
    }
    PGF_TRY(nats->subject_prefix,
            r.String(node, where, "subject_prefix", false, nats->subject_prefix));
    static const std::regex prefix_re("[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*");
    if (!std::regex_match(nats->subject_prefix, prefix_re)) {
      return r.Fail(node["subject_prefix"], where + ".subject_prefix",
                    "dot-separated tokens of letters, digits, '_', '-' (no wildcards)");
    }
    PGF_TRY(nats->replicas, r.Count(node, where, "replicas", nats->replicas, 1, 5));
    if (!nats->password.empty()) {
      r.Warn(fmt::format("{} (sink {}): the NATS password goes in the CONNECT line without "
                         "TLS (the sink speaks plain nats://), readable by anyone on the way; "
                         "keep the server on a private network",
                         where, sink.id));
    }
  }
  return sink;
}


}  // namespace pgfanout::config_internal
