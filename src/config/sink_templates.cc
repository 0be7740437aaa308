#include "src/config/sink_templates.h"

#include <fmt/format.h>

#include <algorithm>
#include <regex>
#include <set>

#include "src/config/yaml_reader.h"

namespace pgfanout {
namespace {

using config_internal::Reader;

const std::regex& PlaceholderRe() {
  static const std::regex re(R"(\{([A-Za-z_][A-Za-z0-9_]*)\})");
  return re;
}
const std::regex& SinkIdRe() {
  static const std::regex re("[A-Za-z0-9_.-]{1,64}");
  return re;
}
// What a param value or a substituted tenant may be: nothing that could end a connection
// string's value, start a URL's user part or a path's parent.
const std::regex& FillValueRe() {
  static const std::regex re("[A-Za-z0-9._-]{1,128}");
  return re;
}
const std::regex& ParamNameRe() {
  static const std::regex re("[A-Za-z_][A-Za-z0-9_]{0,63}");
  return re;
}

constexpr const char* kFillableHelp =
    "placeholders ({name}) may appear only in dsn, url, path, subject_prefix, schema, "
    "database and tables[].target";
constexpr const char* kFillValueHelp = "letters, digits, '.', '_', '-' (at most 128)";

bool FillableKey(std::string_view key) {
  for (std::string_view k : {"dsn", "url", "path", "subject_prefix", "schema", "database"}) {
    if (key == k) return true;
  }
  return false;
}

// Calls `f(scalar, key_path, fillable)` for every scalar value of a template, where
// `fillable` says whether placeholders may appear in it.
template <class F>
void EachScalar(YAML::Node node, const std::string& path, bool fillable, F&& f) {
  if (node.IsScalar()) {
    f(node, path, fillable);
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      // tables[i].target is the one fillable key below the top level.
      const bool table = path == "tables" && node[i].IsMap();
      if (table) {
        for (auto kv : node[i]) {
          const auto key = kv.first.as<std::string>();
          EachScalar(kv.second, fmt::format("{}[{}].{}", path, i, key), key == "target", f);
        }
      } else {
        EachScalar(node[i], fmt::format("{}[{}]", path, i), false, f);
      }
    }
  } else if (node.IsMap()) {
    const bool top = path.empty();
    for (auto kv : node) {
      const auto key = kv.first.as<std::string>();
      EachScalar(kv.second, top ? key : path + "." + key, top && FillableKey(key), f);
    }
  }
}

// The placeholder names in `text`, in order.
std::vector<std::string> Placeholders(const std::string& text) {
  std::vector<std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), PlaceholderRe()), end; it != end; ++it) {
    out.push_back((*it)[1].str());
  }
  return out;
}

// The placeholder names the fillable values of `node` use.
std::set<std::string> UsedNames(YAML::Node node) {
  std::set<std::string> names;
  EachScalar(node, "", false, [&](YAML::Node scalar, const std::string&, bool fillable) {
    if (!fillable) return;
    for (auto& n : Placeholders(scalar.as<std::string>())) names.insert(std::move(n));
  });
  return names;
}

// Replaces every placeholder of the fillable values by `values[name]` (every name is there).
void Fill(YAML::Node node, const std::map<std::string, std::string>& values) {
  EachScalar(node, "", false, [&](YAML::Node scalar, const std::string&, bool fillable) {
    if (!fillable) return;
    const std::string text = scalar.as<std::string>();
    std::string out;
    auto last = text.cbegin();
    for (std::sregex_iterator it(text.begin(), text.end(), PlaceholderRe()), end; it != end; ++it) {
      out.append(last, (*it)[0].first);
      out += values.at((*it)[1].str());
      last = (*it)[0].second;
    }
    out.append(last, text.cend());
    scalar = out;
  });
}

void SetIdentity(YAML::Node node, const std::string& id, const std::vector<std::string>& tenants) {
  node["id"] = id;
  YAML::Node list(YAML::NodeType::Sequence);
  for (const auto& t : tenants) list.push_back(t);
  node["tenants"] = list;
}

bool SpeaksOfASecret(std::string key) {
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* word : {"password", "passwd", "pwd", "secret", "token"}) {
    if (key.find(word) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

Result<SinkConfig> InstantiateTemplate(const Config& config, const RegistryRow& row) {
  auto fail = [&](const std::string& column, const std::string& what) -> Error {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("sink {}: {}: {}", row.sink_id, column, what));
  };
  if (!std::regex_match(row.sink_id, SinkIdRe())) {
    // The id is not echoed in full: it is not known to be printable.
    return MakeError(ErrorKind::kInvalidArgument,
                     "a registry row's sink_id: expected letters, digits, '_', '-', '.', at "
                     "most 64");
  }
  if (config.FindSink(row.sink_id)) {
    return fail("sink_id", "a static sink (sinks: in the config) has this id");
  }
  const SinkTemplate* tmpl = config.FindTemplate(row.template_name);
  if (!tmpl) {
    std::string known;
    for (const auto& t : config.sink_templates) known += (known.empty() ? "" : ", ") + t.name;
    return fail(
        "template",
        std::regex_match(row.template_name, SinkIdRe())
            ? fmt::format("no template '{}' in sink_templates (known: {})", row.template_name,
                          known)
            : fmt::format("not the name of a template in sink_templates (known: {})", known));
  }
  if (row.tenants.empty()) return fail("tenants", "must not be empty");
  std::set<std::string> seen;
  for (const auto& t : row.tenants) {
    if (t == "*") {
      return fail("tenants",
                  "\"*\" (every tenant) is for static sinks only (sinks: in the config)");
    }
    if (t.empty()) return fail("tenants", "a tenant must not be empty");
    if (!seen.insert(t).second) return fail("tenants", "a tenant is listed twice");
  }
  for (const auto& [key, value] : row.params) {
    if (!std::regex_match(key, ParamNameRe())) {
      return fail("params", "keys are letters, digits and '_' (at most 64)");
    }
    if (SpeaksOfASecret(key)) {
      return fail("params." + key,
                  "passwords never live in the registry: the template's password_file, a "
                  "passfile (~/.pgpass, PGPASSFILE) or PGPASSWORD gives them");
    }
    if (!std::regex_match(value, FillValueRe())) return fail("params." + key, kFillValueHelp);
  }

  YAML::Node node;
  try {
    node = YAML::Load(tmpl->yaml);
  } catch (const YAML::Exception& e) {
    return fail("template", fmt::format("template {} does not load: {}", tmpl->name, e.msg));
  }
  std::map<std::string, std::string> values;
  for (const auto& name : UsedNames(node)) {
    if (name == "tenant") {
      if (row.tenants.size() != 1) {
        return fail("tenants", fmt::format("template {} uses {{tenant}}, so the row names "
                                           "exactly one tenant",
                                           tmpl->name));
      }
      if (!std::regex_match(row.tenants[0], FillValueRe())) {
        return fail("tenants", fmt::format("template {} fills {{tenant}} in, so the tenant is {}",
                                           tmpl->name, kFillValueHelp));
      }
      values[name] = row.tenants[0];
    } else if (name == "sink_id") {
      values[name] = row.sink_id;
    } else if (auto it = row.params.find(name); it != row.params.end()) {
      values[name] = it->second;
    } else {
      return fail("params." + name,
                  fmt::format("missing (template {} uses {{{}}})", tmpl->name, name));
    }
  }
  Fill(node, values);
  SetIdentity(node, row.sink_id, row.tenants);
  Reader r(config.path);
  Result<SinkConfig> sink = [&]() -> Result<SinkConfig> {
    try {
      return config_internal::ParseSink(r, node, "sink_templates." + tmpl->name, config);
    } catch (const YAML::Exception& e) {
      return MakeError(ErrorKind::kInvalidArgument, e.msg);
    }
  }();
  if (!sink) {
    return fail("params", fmt::format("template {} makes no valid sink with them: {}", tmpl->name,
                                      sink.error().message));
  }
  sink.value().enabled = row.enabled;
  return sink;
}

namespace config_internal {

Result<void> ParseSinkTemplates(const Reader& r, const YAML::Node& root, Config& config) {
  if (auto reg = root["sink_registry"]) {
    PGF_TRY(r.OnlyKeys(reg, "sink_registry", {"table"}));
    PGF_TRY(auto table, r.String(reg, "sink_registry", "table", true));
    auto name = ParseQualifiedName(table, "public");
    if (!name) return r.Fail(reg["table"], "sink_registry.table", kNameHelp);
    std::tie(config.sink_registry.schema, config.sink_registry.table) = *name;
    if (config.FindTable(name->first, name->second)) {
      return r.Fail(reg["table"], "sink_registry.table",
                    "is also in tables: (the registry's rows are sinks, not data to deliver)");
    }
  }
  if (config.source.HasSignalTable() &&
      (config.FindTable(config.source.signal_schema, config.source.signal_table) ||
       config.source.QualifiedSignalTable() == config.sink_registry.QualifiedName())) {
    return r.Fail(root["source"]["signal_table"], "source.signal_table",
                  "is also in tables: or the sink registry (its rows are requests, not data)");
  }
  auto templates = root["sink_templates"];
  if (!templates) {
    if (config.sink_registry.enabled()) {
      return r.Fail(root["sink_registry"], "sink_registry",
                    "needs sink_templates: (each registry row names one)");
    }
    return boost::outcome_v2::success();
  }
  if (!templates.IsMap() || templates.size() == 0) {
    return r.Fail(templates, "sink_templates", "expected a mapping of template names to sinks");
  }
  if (!config.sink_registry.enabled()) {
    r.Warn("sink_templates: no sink_registry uses them");
  }
  for (auto kv : templates) {
    const std::string name = kv.first.as<std::string>();
    const std::string where = "sink_templates." + name;
    if (!std::regex_match(name, SinkIdRe())) {
      return r.Fail(kv.first, where, "letters, digits, '_', '-', '.', at most 64");
    }
    YAML::Node node = kv.second;
    if (!node.IsMap()) return r.Fail(node, where, "expected a sink definition (a mapping)");
    for (const char* key : {"id", "tenants"}) {
      if (node[key]) {
        return r.Fail(node[key], where + "." + key,
                      "each registry row gives it (sink_id, tenants), not the template");
      }
    }
    std::optional<Error> misplaced;
    EachScalar(node, "", false, [&](YAML::Node scalar, const std::string& path, bool fillable) {
      if (!misplaced && !fillable && !Placeholders(scalar.as<std::string>()).empty()) {
        misplaced = r.Fail(scalar, where + "." + path, kFillableHelp);
      }
    });
    if (misplaced) return *misplaced;
    PGF_TRY(CheckKindUnderConfirm(r, node, where, config));
    // Tried with stand-in values (a word, then a number, for placeholders that must be a
    // port), so that what is wrong with the template itself is found now, by its key.
    std::optional<Error> first_error;
    for (const char* stand_in : {"p1", "1"}) {
      YAML::Node trial = YAML::Clone(node);
      std::map<std::string, std::string> values;
      for (const auto& n : UsedNames(trial)) values[n] = stand_in;
      Fill(trial, values);
      SetIdentity(trial, "template-check", {"tenant1"});
      auto parsed = ParseSink(r, trial, where, config);
      if (parsed) {
        first_error.reset();
        break;
      }
      if (!first_error) first_error = parsed.error();
    }
    if (first_error) return *first_error;
    YAML::Emitter out;
    out << node;
    config.sink_templates.push_back(SinkTemplate{.name = name, .yaml = out.c_str()});
  }
  return boost::outcome_v2::success();
}

}  // namespace config_internal
}  // namespace pgfanout
