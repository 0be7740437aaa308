// Every rejected config, and the exact message a person sees.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "src/config/config.h"
#include "test/unit/config/config_pieces.h"

namespace pgfanout::config_test {
namespace {

// One invalid config and the exact message a person sees: file:line: key path: what was
// expected.
struct BadConfig {
  const char* name;
  std::string yaml;
  std::string message;
};

class ConfigErrorTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigErrorTest, NamesFileLineKeyAndExpectation) {
  auto config = ParseConfig(GetParam().yaml, "cfg.yaml");
  ASSERT_FALSE(config.has_value()) << "accepted:\n" << GetParam().yaml;
  EXPECT_EQ(config.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(config.error().message, GetParam().message);
}

const char* kSinkKeys =
    "(expected one of: id, type, tenants, tables, batch_size, batch_bytes, backfill, path)";
const char* kTenantsHint =
    "expected a non-empty list of tenant values, or [\"*\"] for every tenant";
const char* kDurationHint = "expected a duration such as 500ms, 10s, 5m or 24h";

INSTANTIATE_TEST_SUITE_P(
    Errors, ConfigErrorTest,
    ::testing::Values(
        BadConfig{"TypoInSourceKey", Cat({kSource, "  slott: other\n", kTables, kSinks}),
                  "cfg.yaml:3: source.slott: unknown key (expected one of: dsn, password_file, "
                  "slot, publication, decoder, status_interval, heartbeat_interval, "
                  "retained_wal_warn, confirm, signal_table)"},
        BadConfig{"SignalTableIsATrackedTable",
                  Cat({kSource, "  signal_table: public.users\n", kTables, kSinks}),
                  "cfg.yaml:3: source.signal_table: is also in tables: or the sink registry (its "
                  "rows are requests, not data)"},
        BadConfig{"TypoInTopLevelKey", Cat({kSource, kTables, "sink:\n  - id: out\n"}),
                  "cfg.yaml:7: sink: unknown key (expected one of: source, state_dir, http, log, "
                  "tables, sinks, shutdown_timeout, "
                  "backfill_concurrency, delivery, metrics, sink_templates, sink_registry)"},
        BadConfig{"TypoInSinkKey", Cat({kSource, kTables, SinkWith("    batchsize: 10\n")}),
                  std::string("cfg.yaml:12: sinks[0].batchsize: unknown key ") + kSinkKeys},
        BadConfig{"MissingSource", Cat({kTables, kSinks}),
                  "cfg.yaml:1: source: missing (required): the database to tail"},
        BadConfig{"MissingDsn", Cat({"source:\n  slot: pgfanout\n", kTables, kSinks}),
                  "cfg.yaml:2: source.dsn: missing (required)"},
        BadConfig{"EmptyDsn", Cat({"source:\n  dsn: \"\"\n", kTables, kSinks}),
                  "cfg.yaml:2: source.dsn: must not be empty"},
        BadConfig{"BadSlotName", Cat({kSource, "  slot: My-Slot\n", kTables, kSinks}),
                  "cfg.yaml:3: source.slot: a slot name is lower-case letters, digits and '_', "
                  "at most 63"},
        BadConfig{"BadDuration", Cat({kSource, "  status_interval: 10 seconds\n", kTables, kSinks}),
                  std::string("cfg.yaml:3: source.status_interval: ") + kDurationHint},
        BadConfig{"StatusIntervalBeyondSenderTimeout",
                  Cat({kSource, "  status_interval: 90s\n", kTables, kSinks}),
                  "cfg.yaml:3: source.status_interval: expected 100ms to 30s (it must stay well "
                  "inside wal_sender_timeout)"},
        BadConfig{"BadRetention", Cat({kSource, "log:\n  retain: 1d\n", kTables, kSinks}),
                  std::string("cfg.yaml:4: log.retain: ") + kDurationHint},
        BadConfig{"DeliveryMemoryTooSmall",
                  Cat({kSource, "delivery:\n  memory: 64KB\n", kTables, kSinks}),
                  "cfg.yaml:4: delivery.memory: expected at least 1MB"},
        BadConfig{"DeliveryTypo",
                  Cat({kSource, "delivery:\n  max_connection: 5\n", kTables, kSinks}),
                  "cfg.yaml:4: delivery.max_connection: unknown key (expected one of: workers, "
                  "memory, idle_close, max_connections, copy_chunk_rows, copy_round)"},
        BadConfig{"DeliveryCopyRoundZero",
                  Cat({kSource, "delivery:\n  copy_round: 0s\n", kTables, kSinks}),
                  "cfg.yaml:4: delivery.copy_round: expected more than 0"},
        BadConfig{
            "DeliveryCopyChunkRowsTooFew",
            Cat({kSource, "delivery:\n  copy_chunk_rows: 10\n", kTables, kSinks}),
            "cfg.yaml:4: delivery.copy_chunk_rows: expected a whole number from 100 to 1000000"},
        BadConfig{"DeliveryMaxConnectionsNotACount",
                  Cat({kSource, "delivery:\n  max_connections: many\n", kTables, kSinks}),
                  "cfg.yaml:4: delivery.max_connections: expected a whole number from 0 to "
                  "1000000"},
        BadConfig{"EmptyTables", Cat({kSource, "tables: []\n", kSinks}),
                  "cfg.yaml:3: tables: expected a non-empty list of tables to track"},
        BadConfig{"MissingTables", Cat({kSource, kSinks}),
                  "cfg.yaml:1: tables: expected a non-empty list of tables to track"},
        BadConfig{"BadTableName", Cat({kSource, "tables:\n  - name: public.Users-x\n", kSinks}),
                  "cfg.yaml:4: tables[0].name: expected [schema.]table; unquoted names fold "
                  "to lower case, write \"Mixed Case\" in double quotes to keep it"},
        BadConfig{"PublishedColumnsWithoutTheTenantColumn",
                  Cat({kSource,
                       "tables:\n  - name: users\n    tenant_column: tenant_id\n"
                       "    columns: [id, name]\n",
                       kSinks}),
                  "cfg.yaml:6: tables[0].columns: must include tenant_id (the table's "
                  "tenant_column): sinks route and upsert rows by it"},
        BadConfig{"PublishedColumnsWithoutTheKey",
                  Cat({kSource, "tables:\n  - name: users\n    key: [id]\n    columns: [name]\n",
                       kSinks}),
                  "cfg.yaml:6: tables[0].columns: must include id (the table's key): sinks "
                  "route and upsert rows by it"},
        BadConfig{"RowFilterUnderWal2Json",
                  Cat({kSource, "  decoder: wal2json\n",
                       "tables:\n  - name: users\n    where: \"status <> 'gone'\"\n", kSinks}),
                  "cfg.yaml:6: tables[0].where: needs source.decoder pgoutput: wal2json has no "
                  "publication, so every row and column would leave the server and be dropped "
                  "only by pgfanout"},
        BadConfig{"DuplicateSinkId",
                  Cat({kSource, kTables, kSinks,
                       "  - id: out\n    type: jsonl\n    tenants: [\"9\"]\n    path: b.jsonl\n"}),
                  "cfg.yaml:12: sinks[1].id: sink id 'out' is used twice"},
        BadConfig{"UnknownSinkType",
                  Cat({kSource, kTables,
                       "sinks:\n  - id: out\n    type: jsonll\n    tenants: [\"7\"]\n"}),
                  "cfg.yaml:9: sinks[0].type: unknown sink type 'jsonll' (expected one of: "
                  "jsonl, postgres, clickhouse, webhook, nats, discard)"},
        BadConfig{"KeyOfAnotherSinkKind",
                  Cat({kSource, kTables,
                       "sinks:\n  - id: out\n    type: jsonl\n    tenants: [\"7\"]\n"
                       "    path: x\n    url: http://h\n"}),
                  "cfg.yaml:12: sinks[0].url: only for clickhouse, webhook, nats sinks"},
        BadConfig{"CredentialsInAUrl",
                  Cat({kSource, kTables,
                       "sinks:\n  - id: ch\n    type: clickhouse\n    tenants: [\"*\"]\n"
                       "    url: http://app:hunter2@ch:8123\n"}),
                  "cfg.yaml:11: sinks[0].url: holds credentials; keep them out of the config: "
                  "user and password_file"},
        BadConfig{"WebhookWithoutSecret",
                  Cat({kSource, kTables,
                       "sinks:\n  - id: hook\n    type: webhook\n    tenants: [\"7\"]\n"
                       "    url: https://example.com/in\n"}),
                  "cfg.yaml:8: sinks[0].secret_file: missing (required): the file with the "
                  "signing secret (whsec_<base64>, as Standard Webhooks define it)"},
        BadConfig{"NatsUrlScheme",
                  Cat({kSource, kTables,
                       "sinks:\n  - id: bus\n    type: nats\n    tenants: [\"*\"]\n"
                       "    url: http://nats:4222\n"}),
                  "cfg.yaml:11: sinks[0].url: expected a URL starting with nats://"},
        BadConfig{"UnknownConfirm", Cat({kSource, "  confirm: destinations\n", kTables, kSinks}),
                  "cfg.yaml:3: source.confirm: expected log (the default: the slot is confirmed "
                  "at the event log) or sinks (at what every sink made durable in its "
                  "destination)"},
        // Under confirm: sinks a sink's destination must store its position.
        BadConfig{
            "ConfirmSinksRefusesJsonl", Cat({kSource, "  confirm: sinks\n", kTables, kSinks}),
            "cfg.yaml:10: sinks[0].type: "
            "a jsonl sink cannot run under source.confirm: sinks: it keeps no position in its "
            "destination that the slot could be confirmed at or a standby resume from "
            "(postgres and clickhouse sinks can). Use source.confirm: log, or another kind"},
        BadConfig{
            "ConfirmSinksRefusesWebhookTemplate",
            Cat({kSource, "  confirm: sinks\n", kTables,
                 "sinks:\n  - id: d\n    type: discard\n    tenants: [\"*\"]\n",
                 "sink_registry: {table: public.pgfanout_sinks}\n"
                 "sink_templates:\n  hook:\n    type: webhook\n"
                 "    url: https://example.com/{tenant}\n"}),
            "cfg.yaml:15: sink_templates.hook.type: "
            "a webhook sink cannot run under source.confirm: sinks: it keeps no position in its "
            "destination that the slot could be confirmed at or a standby resume from "
            "(postgres and clickhouse sinks can). Use source.confirm: log, or another kind"},
        BadConfig{"UnknownDecoder", Cat({kSource, "  decoder: test_decoding\n", kTables, kSinks}),
                  "cfg.yaml:3: source.decoder: expected pgoutput (the default) or wal2json"},
        BadConfig{"MissingTenants",
                  Cat({kSource, kTables, "sinks:\n  - id: out\n    type: jsonl\n    path: a\n"}),
                  std::string("cfg.yaml:8: sinks[0].tenants: ") + kTenantsHint},
        BadConfig{"EmptyTenants",
                  Cat({kSource, kTables,
                       "sinks:\n  - id: out\n    type: jsonl\n    tenants: []\n    path: a\n"}),
                  std::string("cfg.yaml:10: sinks[0].tenants: ") + kTenantsHint},
        BadConfig{"StarMixedWithTenants",
                  Cat({kSource, kTables,
                       "sinks:\n  - id: out\n    type: jsonl\n    tenants: [\"*\", \"7\"]\n"
                       "    path: a\n"}),
                  "cfg.yaml:10: sinks[0].tenants: \"*\" cannot be combined with other tenants"},
        BadConfig{"SinkTableNotTracked",
                  Cat({kSource, kTables, SinkWith("    tables:\n      - source: orders\n")}),
                  "cfg.yaml:13: sinks[0].tables[0].source: table public.orders is not in the "
                  "top-level tables list"},
        BadConfig{
            "JsonlSinkWithoutPath",
            Cat({kSource, kTables, "sinks:\n  - id: out\n    type: jsonl\n    tenants: [\"7\"]\n"}),
            "cfg.yaml:8: sinks[0].path: missing (required)"},
        BadConfig{"ZeroBatchSize", Cat({kSource, kTables, SinkWith("    batch_size: 0\n")}),
                  "cfg.yaml:12: sinks[0].batch_size: expected a whole number from 1 to 1000000"},
        BadConfig{"ZeroBackfillConcurrency",
                  Cat({kSource, "backfill_concurrency: 0\n", kTables, SinkWith("")}),
                  "cfg.yaml:3: backfill_concurrency: expected a whole number from 1 to 64"},
        BadConfig{"TinyBatchBytes", Cat({kSource, kTables, SinkWith("    batch_bytes: 1kB\n")}),
                  "cfg.yaml:12: sinks[0].batch_bytes: expected a size from 64kB to 1GB"},
        BadConfig{"HugeBatchSize", Cat({kSource, kTables, SinkWith("    batch_size: 1000001\n")}),
                  "cfg.yaml:12: sinks[0].batch_size: expected a whole number from 1 to 1000000"},
        BadConfig{"NegativeBatchSize", Cat({kSource, kTables, SinkWith("    batch_size: -5\n")}),
                  "cfg.yaml:12: sinks[0].batch_size: expected a whole number from 1 to 1000000"},
        BadConfig{"PostgresWithoutDsn",
                  Cat({kSource, kTables,
                       "sinks:\n  - id: db\n    type: postgres\n    tenants: [\"7\"]\n"}),
                  "cfg.yaml:8: sinks[0].dsn: missing (required)"},
        BadConfig{"PathOnPostgresSink",
                  Cat({kSource, kTables,
                       "sinks:\n  - id: db\n    type: postgres\n    tenants: [\"7\"]\n"
                       "    dsn: x\n    path: a.jsonl\n"}),
                  "cfg.yaml:12: sinks[0].path: only for jsonl sinks"},
        BadConfig{"DsnOnJsonlSink", Cat({kSource, kTables, SinkWith("    dsn: x\n")}),
                  "cfg.yaml:12: sinks[0].dsn: only for postgres sinks"},
        BadConfig{"MappingOnJsonlSink",
                  Cat({kSource, kTables,
                       SinkWith("    tables:\n      - source: users\n        columns: [id]\n")}),
                  "cfg.yaml:13: sinks[0].tables[0]: columns, rename, computed and delete are "
                  "for postgres sinks"},
        BadConfig{"SinkWhereThatIsSql",
                  Cat({kSource, kTables,
                       SinkWith("    tables:\n      - source: users\n"
                                "        where: \"status = 'a'; DROP TABLE users\"\n")}),
                  "cfg.yaml:14: sinks[0].tables[0].where: at 13: unexpected character ';'"},
        BadConfig{"SoftDeleteWithoutColumn",
                  PostgresSink("      - source: users\n        delete: soft\n"),
                  "cfg.yaml:13: sinks[0].tables[0].soft_delete_column: missing: delete: soft "
                  "needs the column to mark (a boolean such as is_deleted, or a timestamp such "
                  "as deleted_at)"},
        BadConfig{"UnknownDeleteMode",
                  PostgresSink("      - source: users\n        delete: purge\n"),
                  "cfg.yaml:14: sinks[0].tables[0].delete: expected hard or soft"},
        BadConfig{"RenameOfUnlistedColumn",
                  PostgresSink("      - source: users\n        columns: [id, tenant_id]\n"
                               "        rename: {email: mail}\n"),
                  "cfg.yaml:15: sinks[0].tables[0].rename.email: column is not in columns:"},
        BadConfig{"TwoColumnsOneTarget",
                  PostgresSink("      - source: users\n        columns: [id, tenant_id, email]\n"
                               "        rename: {email: id}\n"),
                  "cfg.yaml:13: sinks[0].tables[0]: two columns map to target column 'id'"},
        BadConfig{"ComputedOverMappedColumn",
                  PostgresSink("      - source: users\n        columns: [id, tenant_id]\n"
                               "        computed: {id: \"1\"}\n"),
                  "cfg.yaml:15: sinks[0].tables[0].computed.id: target column 'id' is already "
                  "mapped"},
        BadConfig{"TenantSinkWithoutTenantColumn",
                  PostgresSink("      - source: users\n        columns: [id, email]\n"),
                  "cfg.yaml:14: sinks[0].tables[0].columns: must include the tenant column "
                  "'tenant_id': this sink serves only some tenants, and needs it to delete "
                  "theirs on TRUNCATE"},
        BadConfig{"UnknownLaggingPolicy",
                  Cat({kSource, "log:\n  lagging_sinks: maybe\n", kTables, kSinks}),
                  "cfg.yaml:4: log.lagging_sinks: expected hold (keep events for a sink "
                  "behind log.retain, the state dir grows) or drop (trim them, the sink stops "
                  "and needs a re-snapshot)"},
        BadConfig{"PasswordInSourceDsn",
                  Cat({"source:\n  dsn: \"host=db password=hunter2\"\n", kTables, kSinks}),
                  "cfg.yaml:2: source.dsn: holds a password; keep it out of the config: "
                  "password_file (a file with the password), PGPASSWORD in the environment, or "
                  "a passfile (~/.pgpass, PGPASSFILE)"},
        BadConfig{"PasswordInSinkUri",
                  Cat({kSource, kTables,
                       "sinks:\n  - id: t\n    type: postgres\n    tenants: [\"*\"]\n"
                       "    dsn: \"postgresql://app:hunter2@db/x\"\n"}),
                  "cfg.yaml:11: sinks[0].dsn: holds a password; keep it out of the config: "
                  "password_file (a file with the password), PGPASSWORD in the environment, or "
                  "a passfile (~/.pgpass, PGPASSFILE)"},
        BadConfig{"PasswordBehindAPercentEncodedUriKey",
                  Cat({"source:\n  dsn: \"postgresql://app@db/x?%70assword=hunter2\"\n", kTables,
                       kSinks}),
                  "cfg.yaml:2: source.dsn: holds a password; keep it out of the config: "
                  "password_file (a file with the password), PGPASSWORD in the environment, or "
                  "a passfile (~/.pgpass, PGPASSFILE)"},
        BadConfig{"PublicListenWithoutAToken",
                  Cat({kSource, "http:\n  listen: \"0.0.0.0:8686\"\n", kTables, kSinks}),
                  "cfg.yaml:4: http.listen: '0.0.0.0:8686' is reachable beyond this machine, "
                  "and without http.token_file anyone who reaches it reads every sink's state: "
                  "set http.token_file, listen on 127.0.0.1, or (behind a proxy that "
                  "authenticates) http.allow_unauthenticated: true"},
        // A name that looks like a loopback address is a name: it may resolve anywhere.
        BadConfig{"PublicListenOnANameThatLooksLikeLoopback",
                  Cat({kSource, "http:\n  listen: \"127.example.com:8686\"\n", kTables, kSinks}),
                  "cfg.yaml:4: http.listen: '127.example.com:8686' is reachable beyond this "
                  "machine, and without http.token_file anyone who reaches it reads every "
                  "sink's state: set http.token_file, listen on 127.0.0.1, or (behind a proxy "
                  "that authenticates) http.allow_unauthenticated: true"},
        BadConfig{"MissingPasswordFile",
                  Cat({kSource, "  password_file: /nonexistent/pw\n", kTables, kSinks}),
                  "cfg.yaml:3: source.password_file: cannot read /nonexistent/pw: No such file "
                  "or directory"},
        BadConfig{"BadRetainedWalWarn",
                  Cat({kSource, "  retained_wal_warn: lots\n", kTables, kSinks}),
                  "cfg.yaml:3: source.retained_wal_warn: expected a size such as 0, 512MB or 1GB"},
        BadConfig{"HeartbeatTooOften",
                  Cat({kSource, "  heartbeat_interval: 10ms\n", kTables, kSinks}),
                  "cfg.yaml:3: source.heartbeat_interval: expected 0 (off) or at least 1s"},
        BadConfig{"NotAMapping", "- just\n- a list\n",
                  "cfg.yaml: expected a mapping with source, tables and sinks"}),
    [](const ::testing::TestParamInfo<BadConfig>& info) { return std::string(info.param.name); });

TEST(ConfigTest, InvalidYamlNamesTheLineOfTheSyntaxError) {
  auto config = ParseConfig(Cat({kSource, kTables, "sinks: [\n  {id: out\n"}), "cfg.yaml");
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().kind, ErrorKind::kInvalidArgument);
  // The flow list opened on line 7 is never closed; yaml-cpp reports where it noticed.
  EXPECT_TRUE(std::regex_match(config.error().message,
                               std::regex(R"(cfg\.yaml:(7|8|9): not valid YAML: .+)")))
      << config.error().message;
}

}  // namespace
}  // namespace pgfanout::config_test
