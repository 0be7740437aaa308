#pragma once

#include <map>
#include <string>
#include <vector>

#include "src/config/config.h"
#include "src/core/error.h"

namespace pgfanout {

// Sinks as data: a template (`sink_templates:` in the config) is a sink definition in which
// `{tenant}`, `{sink_id}` and `{<param>}` placeholders may appear in the values that say
// where the rows go: dsn, url, path, subject_prefix, schema, database and tables[].target.
// Each row of the sink registry (`sink_registry.table` on the source) names a template and
// fills its placeholders; the result is parsed exactly as a `sinks:` entry, so a registry
// sink has every rule a static one has.
//
// What a row may carry, so that a value written by a product's user can never reach beyond
// its place: param values and substituted tenants are letters, digits, '.', '_' and '-'
// (at most 128), so they cannot add a key to a connection string, a user to a URL or a
// level to a path; a param whose name speaks of a password, secret or token is refused
// (passwords come from a passfile, the template's password_file or the environment);
// `"*"` (every tenant) is for static sinks only.

// One row of the sink registry, as read from the source.
struct RegistryRow {
  std::string sink_id;
  std::string template_name;  // the `template` column
  std::vector<std::string> tenants;
  std::map<std::string, std::string> params;  // the jsonb object, its scalars as text
  bool enabled = true;

  friend bool operator==(const RegistryRow&, const RegistryRow&) = default;
};

// The sink `row` defines with the config's templates (its `enabled` copied). An error's
// message names the sink_id and the column at fault ("sink p7: params.host: missing (...)");
// it never quotes a param's value.
Result<SinkConfig> InstantiateTemplate(const Config& config, const RegistryRow& row);

}  // namespace pgfanout
