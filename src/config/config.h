#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "src/core/error.h"

namespace pgfanout {

struct SourceConfig {
  std::string dsn;  // libpq connection string; a password belongs in PGPASSWORD or a passfile
  // `signal_table`: a table on the source whose INSERTs ask for copies (resnapshots);
  // empty: none (src/pipeline/signal_queue.h).
  std::string signal_schema;
  std::string signal_table;
  bool HasSignalTable() const { return !signal_table.empty(); }
  std::string QualifiedSignalTable() const { return signal_schema + "." + signal_table; }
  std::string slot = "pgfanout";
  std::string publication = "pgfanout";
  // How often a standby status update is sent when the server does not ask for one.
  // Must stay well inside the server's wal_sender_timeout (60 s by default).
  std::chrono::milliseconds status_interval{10'000};
  // The output plugin the slot uses: pgoutput (default; protocol v2, streams large
  // transactions) or wal2json (format-version 2; the server must allow it in
  // output_plugin_libraries on hardened builds).
  std::string decoder = "pgoutput";
  // Write a non-transactional logical message this often (0: never), so the slot moves
  // even when neither the tracked tables nor anything else on the server writes.
  std::chrono::milliseconds heartbeat_interval{0};
  // Warn (log, every 5 minutes while it lasts) when the source retains this much WAL for
  // the slot; 0: never.
  uint64_t retained_wal_warn = uint64_t{1} << 30;
  // From `password_file` (the file's first line); handed to libpq apart from the DSN.
  std::string password;
  // Where the slot is confirmed (README, "High availability"). kLog: at what the event log
  // made durable. kSinks: at what every sink made durable in its destination, so the slot
  // itself keeps what some sink still needs and a standby pgfanout can take over without
  // this machine's state dir; only sink kinds that store their position in the destination
  // may run so.
  enum class Confirm { kLog, kSinks };
  Confirm confirm = Confirm::kLog;

  friend bool operator==(const SourceConfig&, const SourceConfig&) = default;
};

// Names below are as Postgres stores them (case kept, no quotes): the YAML may write
// `public."Order Items"`; unquoted names fold to lower case as in SQL.
struct TableConfig {
  std::string schema;  // "public" when the config names the table without a schema
  std::string name;
  std::string tenant_column;  // empty: the table has no tenant; its events reach "*" sinks only
  // The row's identity for sinks that upsert. From YAML `key:` if given, else filled in at
  // start-up from the source's primary key (needed when the replica identity is FULL,
  // where pgoutput flags every column as key).
  std::vector<std::string> key;
  // The publication's row filter and column list for the table (YAML `where:`, SQL over
  // the source row, and `columns:`): rows and columns outside them never leave the server,
  // in the stream or in a copy. Empty: every row, every column.
  std::string row_filter;
  std::vector<std::string> published_columns;

  std::string QualifiedName() const { return schema + "." + name; }
  bool Publishes(const std::string& column) const {
    return published_columns.empty() ||
           std::find(published_columns.begin(), published_columns.end(), column) !=
               published_columns.end();
  }

  friend bool operator==(const TableConfig&, const TableConfig&) = default;
};

enum class DeleteMode { kHard, kSoft };

struct ComputedColumn {
  std::string target;      // target column name
  std::string expression;  // SQL over the incoming row's (source) column names

  friend bool operator==(const ComputedColumn&, const ComputedColumn&) = default;
};

// How one source table lands in one sink.
struct SinkTableConfig {
  std::string source;         // qualified source table, "public.users" (see TableConfig)
  std::string target_schema;  // defaults to the sink's `schema`
  std::string target;         // target table name; defaults to the source's table name
  // Source columns to copy, in order; empty: every column, and the sink follows ADD/DROP
  // COLUMN when it creates its tables.
  std::vector<std::string> columns;
  std::vector<std::pair<std::string, std::string>> rename;  // source column -> target column
  std::vector<ComputedColumn> computed;
  DeleteMode delete_mode = DeleteMode::kHard;
  // kSoft: a boolean column is set true; any other type gets the commit time.
  std::string soft_delete_column;
  // Only the rows this predicate (src/core/predicate.h, not SQL) holds for reach this sink,
  // in the stream and in its copies; empty: every row. Any sink kind.
  std::string where;

  // The target name of source column `column` (after `rename`).
  std::string TargetColumn(const std::string& column) const;

  friend bool operator==(const SinkTableConfig&, const SinkTableConfig&) = default;
};

// Each sink kind's own options (the YAML keys only that kind takes). `kType` is the kind's
// name, as `type:` spells it.
struct PostgresSinkOptions {
  static constexpr std::string_view kType = "postgres";
  std::string dsn;                                  // target database
  std::string schema = "public";                    // default target schema; sink state lives here
  bool create_tables = false;                       // create missing target tables
  std::string version_column = "pgfanout_version";  // BIGINT: commit LSN of the row's last change
  std::string password;  // from `password_file`, handed to libpq apart from the DSN

  friend bool operator==(const PostgresSinkOptions&, const PostgresSinkOptions&) = default;
};

struct ClickHouseSinkOptions {
  static constexpr std::string_view kType = "clickhouse";
  std::string url;  // http(s)://host:8123
  std::string database = "default";
  std::string user;
  std::string password;                       // from `password_file`: HTTP basic auth with `user`
  bool create_tables = true;                  // create missing target tables
  std::chrono::milliseconds timeout{10'000};  // per request

  friend bool operator==(const ClickHouseSinkOptions&, const ClickHouseSinkOptions&) = default;
};

struct WebhookSinkOptions {
  static constexpr std::string_view kType = "webhook";
  std::string url;                            // the endpoint
  std::string secret;                         // signing secret, from `secret_file`
  std::chrono::milliseconds timeout{10'000};  // per request
  bool allow_private = false;                 // allow loopback, private, link-local targets
  std::string ca_file;                        // PEM CA bundle for https; empty: the system's
  std::string envelope = "pgfanout";          // pgfanout or debezium

  friend bool operator==(const WebhookSinkOptions&, const WebhookSinkOptions&) = default;
};

struct NatsSinkOptions {
  static constexpr std::string_view kType = "nats";
  std::string url;                   // nats://host:4222
  std::vector<std::string> servers;  // more URLs of the same cluster (failover)
  std::string user;
  std::string password;                       // from `password_file`: CONNECT with `user`
  std::string stream = "PGFANOUT";            // the JetStream stream
  std::string subject_prefix = "pgfanout";    // <prefix>.<tenant>.<schema>.<table>
  size_t replicas = 1;                        // replicas of the stream when pgfanout creates it
  std::chrono::milliseconds timeout{10'000};  // per request

  friend bool operator==(const NatsSinkOptions&, const NatsSinkOptions&) = default;
};

struct JsonlSinkOptions {
  static constexpr std::string_view kType = "jsonl";
  std::string path;  // output file

  friend bool operator==(const JsonlSinkOptions&, const JsonlSinkOptions&) = default;
};

struct DiscardSinkOptions {
  static constexpr std::string_view kType = "discard";

  friend bool operator==(const DiscardSinkOptions&, const DiscardSinkOptions&) = default;
};

// A sink's kind and its options. The first alternative is what a SinkConfig built in code
// without options is: a sink that keeps nothing.
using SinkOptions = std::variant<DiscardSinkOptions, JsonlSinkOptions, PostgresSinkOptions,
                                 ClickHouseSinkOptions, WebhookSinkOptions, NatsSinkOptions>;

// "postgres", "jsonl", ...: the kind's name as `type:` spells it.
std::string_view SinkTypeName(const SinkOptions& options);

// Where a sink table's target goes when it names no schema, unless the kind says
// otherwise (the postgres sink's `schema`).
inline constexpr std::string_view kDefaultTargetSchema = "public";

// The mapping for `qualified_source` in a sink's `tables`, or nullptr when `tables` is
// non-empty and omits it. With an empty `tables` every tracked table maps with defaults:
// `fallback` is filled, its target in `default_schema`.
const SinkTableConfig* FindSinkTable(const std::vector<SinkTableConfig>& tables,
                                     std::string_view default_schema,
                                     const std::string& qualified_source,
                                     SinkTableConfig& fallback);

struct SinkConfig {
  std::string id;
  std::vector<std::string> tenants;     // {"*"} for every tenant
  std::vector<SinkTableConfig> tables;  // empty: every tracked table, unrenamed
  size_t batch_size = 1000;             // events read from the log per delivery
  // and at most about this many bytes of them (encoded), so that a hundred tenant sinks of
  // large rows do not each hold batch_size of them; a batch has at least one event.
  uint64_t batch_bytes = uint64_t{4} << 20;
  // Copy the rows that exist already (of its tenants) when the sink is new, or a table is
  // added to it, before it follows the stream. false: it gets only changes from now on.
  // Default: true for postgres and clickhouse, false for jsonl, webhook and nats (change
  // streams).
  bool backfill = true;
  // false: the sink is paused (a registry row's `enabled`): it keeps its cursor and holds
  // its events under the log's lagging-sink policy, but opens nothing and writes nothing.
  bool enabled = true;
  SinkOptions options;  // the kind and what only it takes

  // jsonl, postgres, clickhouse, webhook, nats, discard
  std::string_view type() const { return SinkTypeName(options); }
  bool AllTenants() const { return tenants.size() == 1 && tenants[0] == "*"; }
  // Where targets of `tables` go when they name no schema: the postgres sink's `schema`,
  // else kDefaultTargetSchema.
  std::string_view DefaultTargetSchema() const;
  // The mapping for `qualified_source`, or nullptr when `tables` is non-empty and omits it.
  // With an empty `tables` every tracked table maps with defaults: `fallback` is filled.
  const SinkTableConfig* FindTable(const std::string& qualified_source,
                                   SinkTableConfig& fallback) const {
    return FindSinkTable(tables, DefaultTargetSchema(), qualified_source, fallback);
  }
  // Whether rows of `table` reach this sink: it maps the table, and the table has a tenant
  // column unless the sink takes every tenant (tenant-less rows go to "*" sinks only).
  bool Receives(const TableConfig& table) const;

  friend bool operator==(const SinkConfig&, const SinkConfig&) = default;
};

// What happens to a sink whose cursor falls behind `log.retain`.
enum class LaggingSinkPolicy {
  kHold,  // keep its events however old (the state dir grows); warn every retention pass
  kDrop,  // trim them anyway; the sink stops with an error and needs a re-snapshot
};

struct LogConfig {
  // Events every sink has passed are kept this long before retention deletes them, so
  // `pgfanout replay` can go back that far.
  std::chrono::seconds retain{3600};
  LaggingSinkPolicy lagging_sinks = LaggingSinkPolicy::kHold;

  friend bool operator==(const LogConfig&, const LogConfig&) = default;
};

// How sinks are run (src/pipeline/delivery_pool.h).
struct DeliveryConfig {
  // Worker threads every sink's batches run on; 0: 4 per core, 16 to 64.
  size_t workers = 0;
  // All batches in flight at once hold at most about this much row data: each worker's
  // batch is capped at memory / workers (below a sink's batch_bytes when smaller).
  uint64_t memory = 256ull << 20;
  // A sink with nothing to do this long closes its target connection until it has events
  // again; 0: never.
  std::chrono::milliseconds idle_close{60'000};
  // Target connections all sinks hold at once (src/pipeline/connection_budget.h); 0: no
  // cap. Sinks beyond it wait in line, idle sinks give theirs up first.
  size_t max_connections = 256;
  // Rows per chunk of a copy of existing rows (first copies, refills, resnapshots): one
  // COPY and one sink write each.
  size_t copy_chunk_rows = 10'000;
  // A copy that runs while its sink keeps streaming (`pgfanout resnapshot`) copies this
  // long, at least one chunk, before the sink's stream gets its turn.
  std::chrono::milliseconds copy_round{2'000};

  friend bool operator==(const DeliveryConfig&, const DeliveryConfig&) = default;
};

// Per-sink series in /metrics (labels sink, tenant): `auto` has them up to
// kPerSinkMetricsAutoLimit sinks and aggregates above, so a scrape of 10,000 sinks stays
// small (status and `pgfanout status --sink` still show each sink).
enum class PerSinkMetrics { kAuto, kOn, kOff };
inline constexpr size_t kPerSinkMetricsAutoLimit = 500;

// A named sink definition (`sink_templates:`) with placeholders that each row of the sink
// registry fills in (src/config/sink_templates.h).
struct SinkTemplate {
  std::string name;
  std::string yaml;  // the definition as written (no id, no tenants), placeholders kept

  friend bool operator==(const SinkTemplate&, const SinkTemplate&) = default;
};

// `sink_registry:`: a table on the source whose rows are sinks (src/pipeline/sink_registry.h).
struct SinkRegistryConfig {
  std::string schema;  // empty: no registry
  std::string table;

  bool enabled() const { return !table.empty(); }
  std::string QualifiedName() const { return schema + "." + table; }
  friend bool operator==(const SinkRegistryConfig&, const SinkRegistryConfig&) = default;
};

struct Config {
  std::string path;  // where it was loaded from, for messages
  SourceConfig source;
  std::string state_dir = "./pgfanout-state";
  std::string http_listen = "127.0.0.1:8686";  // "" or "off": no HTTP endpoint
  std::string http_token;  // from http.token_file; empty: no token asked
  // Host names the endpoint answers to besides IP literals and localhost (its Host header
  // check against DNS rebinding).
  std::vector<std::string> http_allowed_hosts;
  // Listening beyond loopback without http.token_file is refused unless this says so (a
  // proxy in front authenticates).
  bool http_allow_unauthenticated = false;
  // How often the slot and every sink's lag are sampled (/status, /metrics, the lag page).
  std::chrono::milliseconds sample_interval{5000};
  // How many sinks may copy existing rows (backfill) at the same time. Each copy takes a
  // temporary replication slot and several source connections (max_replication_slots,
  // max_connections): a hundred new tenants' sinks must not all start at once.
  size_t backfill_concurrency = 2;
  // SIGTERM/SIGINT: how long in-flight batches get before pgfanout exits anyway.
  std::chrono::milliseconds shutdown_timeout{30'000};
  LogConfig log;
  DeliveryConfig delivery;
  PerSinkMetrics per_sink_metrics = PerSinkMetrics::kAuto;  // metrics.per_sink
  std::vector<TableConfig> tables;
  std::vector<SinkConfig> sinks;  // the static ones, from `sinks:`
  std::vector<SinkTemplate> sink_templates;
  SinkRegistryConfig sink_registry;
  // Found while loading and let pass: `pgfanout run` logs them (a secret file other users
  // can read, a password sent without TLS).
  std::vector<std::string> warnings;

  const SinkConfig* FindSink(std::string_view id) const;
  const SinkTemplate* FindTemplate(std::string_view name) const;
  // Whether /metrics has per-sink series, for the sinks this config has (decided once, at
  // start: a reload does not switch the series' shape).
  // A sink registry can add thousands at run time: `auto` then has aggregates.
  bool PerSinkSeries() const {
    return per_sink_metrics == PerSinkMetrics::kOn ||
           (per_sink_metrics == PerSinkMetrics::kAuto && !sink_registry.enabled() &&
            sinks.size() <= kPerSinkMetricsAutoLimit);
  }
  const TableConfig* FindTable(std::string_view schema, std::string_view name) const;

  friend bool operator==(const Config&, const Config&) = default;
};

// What a reload (SIGHUP) cannot apply: the top-level keys whose values differ between the
// running config and `next`, by their YAML names ("source", "http", "delivery", ...).
// Sinks are applied while running and are never named. Complete by construction: a
// difference in a setting this list does not know yet is named "other settings".
std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& next);

// "public.users" -> {"public", "users"}; `orders` -> {default_schema, "orders"};
// `app."Order Items"` -> {"app", "Order Items"}. Unquoted parts fold to lower case as in
// SQL. nullopt when malformed.
std::optional<std::pair<std::string, std::string>> ParseQualifiedName(
    std::string_view text, std::string_view default_schema);

// Loads and validates a config file. Errors (kInvalidArgument) name the file, the line
// and the key, and say what was expected: "pgfanout.yaml:7: sinks[0].type: unknown sink
// type 'jsonll' (expected one of: jsonl)". Relative paths (state_dir, sink paths) are
// taken relative to the current directory.
Result<Config> LoadConfig(const std::string& path);

// Same, from text; `file_name` is used in messages only.
Result<Config> ParseConfig(std::string_view yaml_text, std::string_view file_name);

// "host=x password=secret" -> "host=x password=********"; also hides the password part of
// a postgresql:// URI. Everything that prints a DSN goes through this. What libpq reads
// decides (PQconninfoParse): when the text as written would still give libpq a password
// (a percent-encoded key: `?%70assword=x`), it is shown as the options libpq reads, the
// password masked. A DSN longer than 4096 bytes comes back as "<connection string of N
// bytes, not shown>"; one libpq cannot read, as "<… not shown>".
std::string RedactDsn(std::string_view dsn);

// The password libpq would read from `dsn` (PQconninfoParse), or nullopt.
std::optional<std::string> DsnPassword(std::string_view dsn);

// Parses "250ms", "10s", "5m", "24h" into milliseconds; nullopt on anything else.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Parses "0", "4096", "64kB", "512MB", "1GB", "2TB" (powers of 1024, as Postgres reads
// memory settings; KiB/MiB/GiB/TiB too) into bytes; nullopt on anything else.
std::optional<uint64_t> ParseSize(std::string_view text);

}  // namespace pgfanout
