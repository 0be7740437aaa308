#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "src/config/config.h"
#include "src/core/error.h"
#include "src/pgclient/pg_connection.h"

namespace pgfanout {

// What the sink registry (src/pipeline/sink_registry.h) needs of the source.

// Creates the registry table when it is missing (migrations/source/004_sink_registry.sql),
// then checks its shape: the five columns with their types, sink_id its primary key.
// kInvalidArgument naming the column otherwise.
Result<void> EnsureRegistryTable(const SinkRegistryConfig& registry, const PgConnection& sql);

// Creates the signal table (source.signal_table) when it is missing
// (migrations/source/005_signal_table.sql), then checks its columns: id bigint (its
// primary key), sink_id text, table_name text, replace boolean.
Result<void> EnsureSignalTable(const SourceConfig& source, const PgConnection& sql);

// The registry's rows as the table holds them now, in text form.
struct RegistryTableRow {
  std::string sink_id, template_name, tenants, params;
  bool enabled = true;
};
Result<std::vector<RegistryTableRow>> ReadRegistryTable(const SinkRegistryConfig& registry,
                                                        const PgConnection& sql);

// Tenant values are compared in the form the source writes them (source_setup.h,
// CheckTenantValues); a registry row is checked against the tenant columns of the tables
// its sink receives. Caches the columns' types and each value's form.
class TenantForms {
 public:
  // "" when every tenant of `sink` is written as the source writes it, else the row's
  // error ("tenants: \"07\" is written \"7\" by ..."). An error of the connection is an
  // error (the caller retries), not the row's.
  Result<std::string> Check(const Config& config, const SinkConfig& sink, const PgConnection& sql);

 private:
  std::map<std::string, std::string> type_of_;  // qualified table -> tenant column's type
  std::map<std::pair<std::string, std::string>, std::optional<std::string>> form_;
};

}  // namespace pgfanout
