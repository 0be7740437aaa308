#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/error.h"

namespace pgfanout {

struct SourceConfig {
  std::string dsn;  // libpq connection string; a password belongs in PGPASSWORD or a passfile
  std::string slot = "pgfanout";
  std::string publication = "pgfanout";
  // How often a standby status update is sent when the server does not ask for one.
  // Must stay well inside the server's wal_sender_timeout (60 s by default).
  std::chrono::milliseconds status_interval{10'000};
};

struct TableConfig {
  std::string schema;  // "public" when the config names the table without a schema
  std::string name;
  std::string tenant_column;  // empty: the table has no tenant; its events reach "*" sinks only

  std::string QualifiedName() const { return schema + "." + name; }
};

struct SinkTableConfig {
  std::string source;  // qualified source table, "public.users"
  std::string target;  // target name in the sink; defaults to the source's table name
};

struct SinkConfig {
  std::string id;
  std::string type;                     // "jsonl"
  std::vector<std::string> tenants;     // {"*"} for every tenant
  std::vector<SinkTableConfig> tables;  // empty: every tracked table, unrenamed
  std::string path;                     // jsonl: output file
  size_t batch_size = 1000;             // events read from the log per delivery

  bool AllTenants() const { return tenants.size() == 1 && tenants[0] == "*"; }
};

struct LogConfig {
  // Events every sink has passed are kept this long before retention deletes them, so
  // `pgfanout replay` can go back that far.
  std::chrono::seconds retain{3600};
};

struct Config {
  std::string path;  // where it was loaded from, for messages
  SourceConfig source;
  std::string state_dir = "./pgfanout-state";
  std::string http_listen = "127.0.0.1:8686";
  LogConfig log;
  std::vector<TableConfig> tables;
  std::vector<SinkConfig> sinks;

  const SinkConfig* FindSink(std::string_view id) const;
  const TableConfig* FindTable(std::string_view schema, std::string_view name) const;
};

// Loads and validates a config file. Errors (kInvalidArgument) name the file, the line
// and the key, and say what was expected: "pgfanout.yaml:7: sinks[0].type: unknown sink
// type 'jsonll' (expected one of: jsonl)". Relative paths (state_dir, sink paths) are
// taken relative to the current directory.
Result<Config> LoadConfig(const std::string& path);

// Same, from text; `file_name` is used in messages only.
Result<Config> ParseConfig(std::string_view yaml_text, std::string_view file_name);

// "host=x password=secret" -> "host=x password=********"; also hides the password part of
// a postgresql:// URI. Everything that prints a DSN goes through this.
std::string RedactDsn(std::string_view dsn);

// Parses "250ms", "10s", "5m", "24h" into milliseconds; nullopt on anything else.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace pgfanout
