#include "src/config/config.h"

#include <yaml-cpp/yaml.h>

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

namespace pgfanout {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Pieces of a valid config, so each error case changes one thing. Line numbers in the
// expected messages count from the first line of the concatenated text.
constexpr const char* kSource =  // lines 1-2
    "source:\n"
    "  dsn: \"host=db\"\n";
constexpr const char* kTables =  // 4 lines
    "tables:\n"
    "  - name: users\n"
    "    tenant_column: tenant_id\n"
    "  - name: billing.invoices\n";
constexpr const char* kSinks =  // 5 lines
    "sinks:\n"
    "  - id: out\n"
    "    type: jsonl\n"
    "    tenants: [\"7\"]\n"
    "    path: out/7.jsonl\n";

std::string Cat(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) out += p;
  return out;
}

// The first sink of kSinks with `extra` lines added to it (from line 12 on when it follows
// kSource and kTables).
std::string SinkWith(const std::string& extra) { return std::string(kSinks) + extra; }

Config MustParse(const std::string& yaml) {
  auto config = ParseConfig(yaml, "cfg.yaml");
  EXPECT_TRUE(config.has_value()) << config.error().message;
  return config.has_value() ? std::move(config).value() : Config{};
}

TEST(ConfigTest, LoadsTheShippedExample) {
  auto loaded = LoadConfig(PGFANOUT_EXAMPLE_CONFIG);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  const Config& c = loaded.value();
  EXPECT_EQ(c.path, PGFANOUT_EXAMPLE_CONFIG);
  EXPECT_EQ(c.source.dsn, "host=127.0.0.1 port=5432 dbname=app user=pgfanout");
  EXPECT_EQ(c.source.slot, "pgfanout");
  EXPECT_EQ(c.source.publication, "pgfanout");
  EXPECT_EQ(c.source.status_interval, seconds(10));
  EXPECT_EQ(c.state_dir, "./pgfanout-state");
  EXPECT_EQ(c.log.retain, seconds(3600));
  EXPECT_EQ(c.http_listen, "127.0.0.1:8686");
  ASSERT_EQ(c.tables.size(), 2u);
  EXPECT_EQ(c.tables[0].QualifiedName(), "public.users");
  EXPECT_EQ(c.tables[0].tenant_column, "tenant_id");
  EXPECT_EQ(c.tables[1].QualifiedName(), "public.teams");
  EXPECT_EQ(c.log.lagging_sinks, LaggingSinkPolicy::kHold);
  ASSERT_EQ(c.sinks.size(), 2u);
  const SinkConfig& pg = c.sinks[1];
  EXPECT_EQ(pg.type, "postgres");
  EXPECT_EQ(pg.tenants, std::vector<std::string>{"7"});
  EXPECT_EQ(pg.version_column, "pgfanout_version");
  ASSERT_EQ(pg.tables.size(), 1u);
  EXPECT_EQ(pg.tables[0].target, "people");
  EXPECT_EQ(pg.tables[0].TargetColumn("email"), "mail");
  EXPECT_EQ(pg.tables[0].delete_mode, DeleteMode::kSoft);
  const SinkConfig& audit = c.sinks[0];
  EXPECT_EQ(audit.id, "audit");
  EXPECT_EQ(audit.type, "jsonl");
  EXPECT_TRUE(audit.AllTenants());
  EXPECT_EQ(audit.path, "./out/audit.jsonl");
  EXPECT_EQ(audit.batch_size, 1000u);
  ASSERT_EQ(audit.tables.size(), 1u);
  EXPECT_EQ(audit.tables[0].source, "public.users");
  EXPECT_EQ(audit.tables[0].target, "users");
  EXPECT_EQ(c.FindSink("audit"), &c.sinks[0]);
  EXPECT_EQ(c.FindTable("public", "teams"), &c.tables[1]);
}

TEST(ConfigTest, LoadsTheDockerComposeConfig) {
  auto loaded = LoadConfig(PGFANOUT_DOCKER_CONFIG);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  ASSERT_NE(loaded.value().FindSink("acme-db"), nullptr);
  EXPECT_EQ(loaded.value().FindSink("acme-db")->type, "postgres");
}

// docker-compose.yml cannot run here (no Docker engine), so check what can go wrong in it:
// the pgfanout service mounts, at the path its command names, a config the loader accepts,
// whose DSNs name services of the file; the primary runs with wal_level=logical; the HTTP
// port the config listens on is published.
TEST(ConfigTest, DockerComposeMountsAConfigTheLoaderAcceptsAndNamesItsServices) {
  const std::string root = PGFANOUT_SOURCE_ROOT;
  YAML::Node compose = YAML::LoadFile(root + "/docker-compose.yml");
  YAML::Node services = compose["services"];
  ASSERT_TRUE(services && services["pgfanout"] && services["postgres"] && services["clickhouse"]);
  YAML::Node pgfanout = services["pgfanout"];
  std::vector<std::string> command;
  for (const auto& c : pgfanout["command"]) command.push_back(c.as<std::string>());
  auto at = std::find(command.begin(), command.end(), "--config");
  ASSERT_NE(at, command.end());
  ASSERT_NE(at + 1, command.end());
  std::string host_path;
  for (const auto& v : pgfanout["volumes"]) {
    std::string spec = v.as<std::string>();
    auto colon = spec.find(':');
    if (spec.substr(colon + 1, (at + 1)->size()) == *(at + 1)) host_path = spec.substr(0, colon);
  }
  ASSERT_FALSE(host_path.empty()) << "no volume mounts " << *(at + 1);
  auto config = LoadConfig(root + "/" + host_path.substr(host_path.rfind("./") == 0 ? 2 : 0));
  ASSERT_TRUE(config.has_value()) << config.error().message;
  auto host_of = [](const std::string& dsn) {
    std::smatch m;
    return std::regex_search(dsn, m, std::regex("host=([^ ]+)")) ? std::string(m[1]) : "";
  };
  EXPECT_TRUE(services[host_of(config.value().source.dsn)]) << config.value().source.dsn;
  for (const auto& sink : config.value().sinks) {
    if (!sink.dsn.empty()) {
      EXPECT_TRUE(services[host_of(sink.dsn)]) << sink.id << ": " << sink.dsn;
    }
    if (!sink.url.empty()) {
      std::smatch m;
      ASSERT_TRUE(std::regex_search(sink.url, m, std::regex("://([^:/]+)"))) << sink.url;
      EXPECT_TRUE(services[std::string(m[1])]) << sink.id << ": " << sink.url;
    }
  }
  std::string args;
  for (const auto& c : services["postgres"]["command"]) args += c.as<std::string>() + " ";
  EXPECT_NE(args.find("wal_level=logical"), std::string::npos) << args;
  const std::string port = config.value().http_listen.substr(config.value().http_listen.rfind(':') + 1);
  bool published = false;
  for (const auto& p : pgfanout["ports"]) published = published || p.as<std::string>() == port + ":" + port;
  EXPECT_TRUE(published) << "the HTTP port " << port << " is not published";
}

TEST(ConfigTest, UnreadableFileIsNamedInTheError) {
  auto loaded = LoadConfig("/nonexistent/pgfanout.yaml");
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "/nonexistent/pgfanout.yaml", loaded.error().message);
}

TEST(ConfigTest, MinimalConfigGetsDocumentedDefaults) {
  Config c = MustParse(Cat({kSource, kTables, kSinks}));
  EXPECT_EQ(c.source.slot, "pgfanout");
  EXPECT_EQ(c.source.publication, "pgfanout");
  EXPECT_EQ(c.source.status_interval, seconds(10));
  EXPECT_EQ(c.state_dir, "./pgfanout-state");
  EXPECT_EQ(c.http_listen, "127.0.0.1:8686");
  EXPECT_EQ(c.log.retain, seconds(3600));
  ASSERT_EQ(c.sinks.size(), 1u);
  EXPECT_EQ(c.sinks[0].tenants, std::vector<std::string>{"7"});
  EXPECT_FALSE(c.sinks[0].AllTenants());
  EXPECT_EQ(c.sinks[0].batch_size, 1000u);
  EXPECT_EQ(c.sinks[0].batch_bytes, 4u << 20);
  EXPECT_EQ(c.backfill_concurrency, 2u);
  EXPECT_TRUE(c.sinks[0].tables.empty()) << "no tables key: every tracked table";
  EXPECT_FALSE(c.sinks[0].backfill) << "a jsonl sink is a change log: no backfill by default";
  EXPECT_TRUE(
      MustParse(Cat({kSource, kTables, SinkWith("    backfill: true\n")})).sinks[0].backfill);
}

TEST(ConfigTest, TableWithoutSchemaIsInPublic) {
  Config c = MustParse(Cat({kSource, kTables, SinkWith("    tables:\n      - source: users\n")}));
  ASSERT_EQ(c.tables.size(), 2u);
  EXPECT_EQ(c.tables[0].schema, "public");
  EXPECT_EQ(c.tables[0].name, "users");
  EXPECT_EQ(c.tables[1].schema, "billing");
  EXPECT_EQ(c.tables[1].name, "invoices");
  EXPECT_EQ(c.tables[1].tenant_column, "") << "no tenant_column: a tenant-less table";
  ASSERT_EQ(c.sinks[0].tables.size(), 1u);
  EXPECT_EQ(c.sinks[0].tables[0].source, "public.users");
  EXPECT_EQ(c.sinks[0].tables[0].target, "users");
}

TEST(ConfigTest, ReadsEveryOptionalKey) {
  Config c =
      MustParse(Cat({"source:\n"
                     "  dsn: \"host=db\"\n"
                     "  slot: s_1\n"
                     "  publication: p_1\n"
                     "  status_interval: 250ms\n"
                     "state_dir: /var/lib/pgf\n"
                     "http:\n"
                     "  listen: \"0.0.0.0:9000\"\n"
                     "log:\n"
                     "  retain: 24h\n",
                     kTables,
                     SinkWith("    batch_size: 5\n"
                              "    batch_bytes: 512kB\n"
                              "    tables:\n"
                              "      - source: billing.invoices\n"
                              "        target: inv\n")}));
  EXPECT_EQ(c.source.slot, "s_1");
  EXPECT_EQ(c.source.publication, "p_1");
  EXPECT_EQ(c.source.status_interval, milliseconds(250));
  EXPECT_EQ(c.state_dir, "/var/lib/pgf");
  EXPECT_EQ(c.http_listen, "0.0.0.0:9000");
  EXPECT_EQ(c.log.retain, seconds(24 * 3600));
  EXPECT_EQ(c.sinks[0].batch_size, 5u);
  EXPECT_EQ(c.sinks[0].batch_bytes, 512u << 10);
  ASSERT_EQ(c.sinks[0].tables.size(), 1u);
  EXPECT_EQ(c.sinks[0].tables[0].source, "billing.invoices");
  EXPECT_EQ(c.sinks[0].tables[0].target, "inv");
}

// A config with one postgres sink whose tables: list is `mapping` (lines from 13 on).
std::string PostgresSink(const std::string& mapping, const char* tenants = "[\"7\"]") {
  return Cat({kSource, kTables,
              "sinks:\n"
              "  - id: db7\n"
              "    type: postgres\n"
              "    tenants: ",
              tenants,
              "\n"
              "    dsn: \"host=t7\"\n"
              "    tables:\n",
              mapping});
}

TEST(ConfigTest, ReadsAPostgresMapping) {
  Config c = MustParse(
      PostgresSink("      - source: users\n"
                   "        target: crm.\"People Of Acme\"\n"
                   "        columns: [id, tenant_id, email]\n"
                   "        rename: {email: mail}\n"
                   "        computed: {verified: \"confirmed_at IS NOT NULL\", n: \"1\"}\n"
                   "        delete: soft\n"
                   "        soft_delete_column: is_deleted\n"));
  const SinkConfig& s = c.sinks[0];
  EXPECT_EQ(s.dsn, "host=t7");
  EXPECT_TRUE(s.backfill) << "a database sink copies existing rows by default";
  EXPECT_EQ(s.schema, "public");
  EXPECT_FALSE(s.create_tables);
  ASSERT_EQ(s.tables.size(), 1u);
  const SinkTableConfig& t = s.tables[0];
  EXPECT_EQ(t.source, "public.users");
  EXPECT_EQ(t.target_schema, "crm");
  EXPECT_EQ(t.target, "People Of Acme") << "quoted: case and spaces kept";
  EXPECT_EQ(t.columns, (std::vector<std::string>{"id", "tenant_id", "email"}));
  EXPECT_EQ(t.TargetColumn("email"), "mail");
  EXPECT_EQ(t.TargetColumn("id"), "id");
  ASSERT_EQ(t.computed.size(), 2u);
  EXPECT_EQ(t.computed[0].target, "verified");
  EXPECT_EQ(t.computed[0].expression, "confirmed_at IS NOT NULL");
  EXPECT_EQ(t.delete_mode, DeleteMode::kSoft);
  EXPECT_EQ(t.soft_delete_column, "is_deleted");
  SinkTableConfig fallback;
  EXPECT_EQ(s.FindTable("public.users", fallback), &s.tables[0]);
  EXPECT_EQ(s.FindTable("billing.invoices", fallback), nullptr) << "not in its tables: list";
}

TEST(ConfigTest, QuotedTableNamesKeepCaseUnquotedFold) {
  auto parsed = ParseQualifiedName("App.\"Order \"\"Items\"\"\"", "public");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->first, "app");
  EXPECT_EQ(parsed->second, "Order \"Items\"");
  EXPECT_EQ(ParseQualifiedName("Users", "public"),
            std::pair(std::string("public"), std::string("users")));
  for (const char* bad : {"", ".", "a.", "\"unterminated", "a.b.c", "a b", "\"\"", "1abc"}) {
    EXPECT_EQ(ParseQualifiedName(bad, "public"), std::nullopt) << bad;
  }
}

TEST(ConfigTest, SinkWithoutTablesMapsEveryTableWithDefaults) {
  Config c = MustParse(Cat({kSource, kTables,
                            "sinks:\n  - id: db\n    type: postgres\n    tenants: [\"*\"]\n"
                            "    dsn: \"host=t\"\n    schema: Sync\n"}));
  SinkTableConfig fallback;
  const SinkTableConfig* t = c.sinks[0].FindTable("billing.invoices", fallback);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->target_schema, "sync") << "the sink's schema, folded like SQL";
  EXPECT_EQ(t->target, "invoices");
  EXPECT_TRUE(t->columns.empty());
}

TEST(ConfigTest, LaggingSinkPolicyIsHoldUnlessSaid) {
  EXPECT_EQ(MustParse(Cat({kSource, kTables, kSinks})).log.lagging_sinks, LaggingSinkPolicy::kHold);
  EXPECT_EQ(
      MustParse(Cat({kSource, "log:\n  lagging_sinks: drop\n", kTables, kSinks})).log.lagging_sinks,
      LaggingSinkPolicy::kDrop);
}

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
                  "retained_wal_warn)"},
        BadConfig{"TypoInTopLevelKey", Cat({kSource, kTables, "sink:\n  - id: out\n"}),
                  "cfg.yaml:7: sink: unknown key (expected one of: source, state_dir, http, log, "
                  "tables, sinks, shutdown_timeout, "
                  "backfill_concurrency)"},
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
        BadConfig{"EmptyTables", Cat({kSource, "tables: []\n", kSinks}),
                  "cfg.yaml:3: tables: expected a non-empty list of tables to track"},
        BadConfig{"MissingTables", Cat({kSource, kSinks}),
                  "cfg.yaml:1: tables: expected a non-empty list of tables to track"},
        BadConfig{"BadTableName", Cat({kSource, "tables:\n  - name: public.Users-x\n", kSinks}),
                  "cfg.yaml:4: tables[0].name: expected [schema.]table; unquoted names fold "
                  "to lower case, write \"Mixed Case\" in double quotes to keep it"},
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

TEST(RedactDsnTest, HidesBarePassword) {
  EXPECT_EQ(RedactDsn("host=db password=s3cret user=app"), "host=db password=******** user=app");
}

TEST(RedactDsnTest, HidesQuotedPasswordWithSpacesAndEscapedQuote) {
  EXPECT_EQ(RedactDsn(R"(host=db password='s3 cr\'et' user=app)"),
            "host=db password=******** user=app");
}

TEST(RedactDsnTest, HidesPasswordWithSpacesAroundEquals) {
  EXPECT_EQ(RedactDsn("host=db password = s3cret user=app"),
            "host=db password = ******** user=app");
  EXPECT_EQ(RedactDsn("host=db password = 's3 cret'"), "host=db password = ********");
}

TEST(RedactDsnTest, HidesPasswordInUri) {
  EXPECT_EQ(RedactDsn("postgresql://app:s3cret@db:5432/x?sslmode=require"),
            "postgresql://app:********@db:5432/x?sslmode=require");
  EXPECT_EQ(RedactDsn("postgres://app:s3%40cret@db/x"), "postgres://app:********@db/x");
}

TEST(RedactDsnTest, HidesPasswordInUriQuery) {
  EXPECT_EQ(RedactDsn("postgresql://app@db/x?password=s3cret"),
            "postgresql://app@db/x?password=********");
}

TEST(RedactDsnTest, LeavesPasswordFreeDsnsUnchanged) {
  for (const char* dsn :
       {"host=127.0.0.1 port=5432 dbname=app user=pgfanout", "passfile=/etc/pgpass host=db",
        "postgresql://app@db:5432/x?sslmode=require", "postgresql://db:5432/x", ""}) {
    EXPECT_EQ(RedactDsn(dsn), dsn);
  }
}

TEST(ConfigTest, SecretsComeFromFilesAndOperatorKeysParse) {
  char dir[] = "/tmp/pgfanout-config-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string pw = std::string(dir) + "/pw", token = std::string(dir) + "/token";
  std::ofstream(pw) << "s3cret with spaces\r\nsecond line ignored\n";
  std::ofstream(token) << "tok\n";
  auto config = ParseConfig(
      Cat({kSource, "  password_file: ", pw.c_str(),
           "\n  heartbeat_interval: 30s\n  retained_wal_warn: 512MB\n", "http:\n  listen: off\n",
           "  token_file: ", token.c_str(), "\n  sample_interval: 1s\nshutdown_timeout: 5s\n",
           kTables, kSinks}),
      "cfg.yaml");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const Config& c = config.value();
  EXPECT_EQ(c.source.password, "s3cret with spaces") << "the first line, without CR LF";
  EXPECT_EQ(c.source.dsn, "host=db") << "the password stays out of the DSN";
  EXPECT_EQ(c.source.heartbeat_interval, milliseconds(30'000));
  EXPECT_EQ(c.source.retained_wal_warn, 512u << 20);
  EXPECT_EQ(c.http_listen, "") << "off: no endpoint";
  EXPECT_EQ(c.http_token, "tok");
  EXPECT_EQ(c.sample_interval, milliseconds(1000));
  EXPECT_EQ(c.shutdown_timeout, milliseconds(5000));
  std::filesystem::remove_all(dir);
}

TEST(ConfigTest, ClickHouseWebhookAndNatsSinksTakeTheirKeysWithDefaults) {
  char dir[] = "/tmp/pgfanout-config-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string secret = std::string(dir) + "/whsec";
  std::ofstream(secret) << "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n";
  auto config = ParseConfig(
      Cat({"source:\n  dsn: \"host=db\"\n  decoder: wal2json\n", kTables,
           "sinks:\n"
           "  - id: ch\n    type: clickhouse\n    tenants: [\"*\"]\n    url: http://ch:8123\n"
           "  - id: hook\n    type: webhook\n    tenants: [\"7\"]\n"
           "    url: https://hooks.example.com/in\n    secret_file: ", secret.c_str(),
           "\n    envelope: debezium\n    timeout: 3s\n"
           "  - id: bus\n    type: nats\n    tenants: [\"*\"]\n    url: nats://n1:4222\n"
           "    servers: [nats://n2:4222, nats://n3:4222]\n    replicas: 3\n"}),
      "cfg.yaml");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const Config& c = config.value();
  EXPECT_EQ(c.source.decoder, "wal2json");
  const SinkConfig* ch = c.FindSink("ch");
  ASSERT_NE(ch, nullptr);
  EXPECT_EQ(ch->url, "http://ch:8123");
  EXPECT_EQ(ch->database, "default");
  EXPECT_TRUE(ch->create_tables) << "a ClickHouse sink creates its tables unless told not to";
  EXPECT_TRUE(ch->backfill);
  const SinkConfig* hook = c.FindSink("hook");
  ASSERT_NE(hook, nullptr);
  EXPECT_EQ(hook->secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  EXPECT_EQ(hook->envelope, "debezium");
  EXPECT_EQ(hook->timeout, milliseconds(3000));
  EXPECT_FALSE(hook->allow_private);
  const SinkConfig* bus = c.FindSink("bus");
  ASSERT_NE(bus, nullptr);
  EXPECT_EQ(bus->servers, (std::vector<std::string>{"nats://n2:4222", "nats://n3:4222"}));
  EXPECT_EQ(bus->stream, "PGFANOUT");
  EXPECT_EQ(bus->subject_prefix, "pgfanout");
  EXPECT_EQ(bus->replicas, 3u);
  std::filesystem::remove_all(dir);
}

TEST(ParseSizeTest, ReadsPostgresStyleUnits) {
  EXPECT_EQ(ParseSize("0"), 0u);
  EXPECT_EQ(ParseSize("4096"), 4096u);
  EXPECT_EQ(ParseSize("64kB"), 64u << 10);
  EXPECT_EQ(ParseSize("512MB"), 512u << 20);
  EXPECT_EQ(ParseSize("1GiB"), uint64_t{1} << 30);
  EXPECT_EQ(ParseSize("2TB"), uint64_t{2} << 40);
  for (const char* bad : {"", "MB", "1.5GB", "1 GB", "1gb", "-1", "99999999999TB"}) {
    EXPECT_EQ(ParseSize(bad), std::nullopt) << "'" << bad << "'";
  }
}

TEST(ParseDurationTest, AcceptsEachUnit) {
  EXPECT_EQ(ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(ParseDuration("10s"), milliseconds(10'000));
  EXPECT_EQ(ParseDuration("5m"), milliseconds(300'000));
  EXPECT_EQ(ParseDuration("24h"), milliseconds(86'400'000));
  EXPECT_EQ(ParseDuration("0s"), milliseconds(0));
}

TEST(ParseDurationTest, RejectsAnythingElse) {
  for (const char* text : {"", "10", "ms", "10 s", " 10s", "-5s", "1.5s", "10sec", "5M", "1d",
                           "1h30m", "9999999999999h"}) {
    EXPECT_EQ(ParseDuration(text), std::nullopt) << "'" << text << "'";
  }
}

}  // namespace
}  // namespace pgfanout
