// Loading configs: the shipped examples, defaults, every optional key, each sink kind's keys.
#include "src/config/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "test/unit/config/config_pieces.h"

namespace pgfanout::config_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

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
  EXPECT_EQ(pg.type(), "postgres");
  EXPECT_EQ(pg.tenants, std::vector<std::string>{"7"});
  EXPECT_EQ(std::get<PostgresSinkOptions>(pg.options).version_column, "pgfanout_version");
  ASSERT_EQ(pg.tables.size(), 1u);
  EXPECT_EQ(pg.tables[0].target, "people");
  EXPECT_EQ(pg.tables[0].TargetColumn("email"), "mail");
  EXPECT_EQ(pg.tables[0].delete_mode, DeleteMode::kSoft);
  const SinkConfig& audit = c.sinks[0];
  EXPECT_EQ(audit.id, "audit");
  EXPECT_EQ(audit.type(), "jsonl");
  EXPECT_TRUE(audit.AllTenants());
  EXPECT_EQ(std::get<JsonlSinkOptions>(audit.options).path, "./out/audit.jsonl");
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
  EXPECT_EQ(loaded.value().FindSink("acme-db")->type(), "postgres");
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
    if (const auto* pg = std::get_if<PostgresSinkOptions>(&sink.options)) {
      EXPECT_TRUE(services[host_of(pg->dsn)]) << sink.id << ": " << pg->dsn;
    }
    const std::string url = std::visit(
        [](const auto& o) -> std::string {
          if constexpr (requires { o.url; }) return o.url;
          return "";
        },
        sink.options);
    if (!url.empty()) {
      std::smatch m;
      ASSERT_TRUE(std::regex_search(url, m, std::regex("://([^:/]+)"))) << url;
      EXPECT_TRUE(services[std::string(m[1])]) << sink.id << ": " << url;
    }
  }
  std::string args;
  for (const auto& c : services["postgres"]["command"]) args += c.as<std::string>() + " ";
  EXPECT_NE(args.find("wal_level=logical"), std::string::npos) << args;
  const std::string port =
      config.value().http_listen.substr(config.value().http_listen.rfind(':') + 1);
  bool published = false;
  for (const auto& p : pgfanout["ports"])
    published = published || p.as<std::string>() == "127.0.0.1:" + port + ":" + port;
  EXPECT_TRUE(published) << "the HTTP port " << port << " is not published on 127.0.0.1";
  // Every published port, on this machine only: the demo's passwords and its
  // unauthenticated endpoint must not face the network.
  for (const auto& service : services) {
    for (const auto& p : service.second["ports"]) {
      EXPECT_EQ(p.as<std::string>().rfind("127.0.0.1:", 0), 0u)
          << service.first.as<std::string>() << " publishes " << p.as<std::string>();
    }
  }
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
                     "  allow_unauthenticated: true\n"
                     "  allowed_hosts: [pgfanout.internal]\n"
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
  EXPECT_TRUE(c.http_allow_unauthenticated);
  EXPECT_EQ(c.http_allowed_hosts, std::vector<std::string>{"pgfanout.internal"});
  EXPECT_EQ(c.log.retain, seconds(24 * 3600));
  EXPECT_EQ(c.sinks[0].batch_size, 5u);
  EXPECT_EQ(c.sinks[0].batch_bytes, 512u << 10);
  ASSERT_EQ(c.sinks[0].tables.size(), 1u);
  EXPECT_EQ(c.sinks[0].tables[0].source, "billing.invoices");
  EXPECT_EQ(c.sinks[0].tables[0].target, "inv");
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
  const auto& pg = std::get<PostgresSinkOptions>(s.options);
  EXPECT_EQ(pg.dsn, "host=t7");
  EXPECT_TRUE(s.backfill) << "a database sink copies existing rows by default";
  EXPECT_EQ(pg.schema, "public");
  EXPECT_FALSE(pg.create_tables);
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

TEST(ConfigTest, ASinkOfAnyKindTakesAWherePerTable) {
  Config c = MustParse(Cat({kSource, kTables,
                            SinkWith("    tables:\n      - source: users\n"
                                     "        where: \"plan IN ('pro', 'team')\"\n")}));
  ASSERT_EQ(c.sinks[0].tables.size(), 1u);
  EXPECT_EQ(c.sinks[0].tables[0].where, "plan IN ('pro', 'team')");
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

TEST(ConfigTest, SecretsComeFromFilesAndOperatorKeysParse) {
  char dir[] = "/tmp/pgfanout-config-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string pw = std::string(dir) + "/pw", token = std::string(dir) + "/token";
  std::ofstream(pw) << "s3cret with spaces\r\nsecond line ignored\n";
  std::ofstream(token) << "tok\n";
  // Readable by others whatever the umask the tests run under.
  std::filesystem::permissions(pw, std::filesystem::perms(0644));
  std::filesystem::permissions(token, std::filesystem::perms(0644));
  auto config =
      ParseConfig(Cat({kSource, "  password_file: ", pw.c_str(),
                       "\n  heartbeat_interval: 30s\n  retained_wal_warn: 512MB\n",
                       "http:\n  listen: off\n", "  token_file: ", token.c_str(),
                       "\n  sample_interval: 1s\nshutdown_timeout: 5s\n", kTables, kSinks}),
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
  // Secret files only the daemon's user may read; these are 0644, so each is
  // named in a warning, and its content nowhere.
  ASSERT_EQ(c.warnings.size(), 2u);
  EXPECT_NE(c.warnings[0].find(pw + " can be read by other users (mode 644)"), std::string::npos)
      << c.warnings[0];
  for (const auto& w : c.warnings) EXPECT_EQ(w.find("s3cret"), std::string::npos) << w;
  ::chmod(pw.c_str(), 0600);
  ::chmod(token.c_str(), 0600);
  auto again =
      ParseConfig(Cat({kSource, "  password_file: ", pw.c_str(), "\nhttp:\n  token_file: ",
                       token.c_str(), "\n", kTables, kSinks}),
                  "cfg.yaml");
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_TRUE(again.value().warnings.empty()) << again.value().warnings[0];
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
           "    url: https://hooks.example.com/in\n    secret_file: ",
           secret.c_str(),
           "\n    envelope: debezium\n    timeout: 3s\n"
           "  - id: bus\n    type: nats\n    tenants: [\"*\"]\n    url: nats://n1:4222\n"
           "    servers: [nats://n2:4222, nats://n3:4222]\n    replicas: 3\n"}),
      "cfg.yaml");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const Config& c = config.value();
  EXPECT_EQ(c.source.decoder, "wal2json");
  ASSERT_NE(c.FindSink("ch"), nullptr);
  const auto* ch = std::get_if<ClickHouseSinkOptions>(&c.FindSink("ch")->options);
  ASSERT_NE(ch, nullptr);
  EXPECT_EQ(ch->url, "http://ch:8123");
  EXPECT_EQ(ch->database, "default");
  EXPECT_TRUE(ch->create_tables) << "a ClickHouse sink creates its tables unless told not to";
  EXPECT_TRUE(c.FindSink("ch")->backfill);
  ASSERT_NE(c.FindSink("hook"), nullptr);
  const auto* hook = std::get_if<WebhookSinkOptions>(&c.FindSink("hook")->options);
  ASSERT_NE(hook, nullptr);
  EXPECT_EQ(hook->secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  EXPECT_EQ(hook->envelope, "debezium");
  EXPECT_EQ(hook->timeout, milliseconds(3000));
  EXPECT_FALSE(hook->allow_private);
  ASSERT_NE(c.FindSink("bus"), nullptr);
  const auto* bus = std::get_if<NatsSinkOptions>(&c.FindSink("bus")->options);
  ASSERT_NE(bus, nullptr);
  EXPECT_EQ(bus->servers, (std::vector<std::string>{"nats://n2:4222", "nats://n3:4222"}));
  EXPECT_EQ(bus->stream, "PGFANOUT");
  EXPECT_EQ(bus->subject_prefix, "pgfanout");
  EXPECT_EQ(bus->replicas, 3u);
  std::filesystem::remove_all(dir);
}

// A password a sink sends where anyone on the way can read it is allowed (a private
// network may be fine) but said at start.
TEST(ConfigTest, PasswordsSentWithoutTlsAreNamedInWarnings) {
  char dir[] = "/tmp/pgfanout-config-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string pw = std::string(dir) + "/pw";
  std::ofstream(pw) << "s3cret\n";
  ::chmod(pw.c_str(), 0600);
  auto sinks = [&](const std::string& ch_url) {
    return Cat({"sinks:\n  - id: ch\n    type: clickhouse\n    tenants: [\"*\"]\n    url: ",
                ch_url.c_str(), "\n    user: w\n    password_file: ", pw.c_str(),
                "\n  - id: bus\n    type: nats\n    tenants: [\"*\"]\n    url: nats://n1:4222\n"
                "    user: w\n    password_file: ",
                pw.c_str(), "\n"});
  };
  auto plain = ParseConfig(Cat({kSource, kTables, sinks("http://ch:8123").c_str()}), "cfg.yaml");
  ASSERT_TRUE(plain.has_value()) << plain.error().message;
  ASSERT_EQ(plain.value().warnings.size(), 2u);
  EXPECT_NE(plain.value().warnings[0].find("sink ch): the ClickHouse password"), std::string::npos)
      << plain.value().warnings[0];
  EXPECT_NE(plain.value().warnings[1].find("sink bus): the NATS password"), std::string::npos)
      << plain.value().warnings[1];
  auto tls = ParseConfig(Cat({kSource, kTables, sinks("https://ch:8443").c_str()}), "cfg.yaml");
  ASSERT_TRUE(tls.has_value()) << tls.error().message;
  EXPECT_EQ(tls.value().warnings.size(), 1u) << "https: only the NATS one";
  std::filesystem::remove_all(dir);
}

// A reload names every setting it cannot apply, and only those: sinks are applied.
TEST(ConfigTest, AReloadNamesEachSettingThatNeedsARestart) {
  const Config running = MustParse(Cat({kSource, kTables, kSinks}));
  EXPECT_TRUE(RestartOnlyChanges(running, running).empty());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"source", Cat({"source:\n  dsn: \"host=other\"\n", kTables, kSinks})},
      {"tables", Cat({kSource, "tables:\n  - name: users\n    tenant_column: tenant_id\n",
                      "sinks:\n  - id: out\n    type: jsonl\n    tenants: [\"7\"]\n"
                      "    path: out/7.jsonl\n"})},
      {"state_dir", Cat({kSource, "state_dir: /elsewhere\n", kTables, kSinks})},
      {"http", Cat({kSource, "http:\n  sample_interval: 1s\n", kTables, kSinks})},
      {"http", Cat({kSource, "http:\n  allowed_hosts: [cdc.internal]\n", kTables, kSinks})},
      {"log", Cat({kSource, "log:\n  retain: 10m\n", kTables, kSinks})},
      {"delivery", Cat({kSource, "delivery:\n  max_connections: 10\n", kTables, kSinks})},
      {"backfill_concurrency", Cat({kSource, "backfill_concurrency: 5\n", kTables, kSinks})},
      {"shutdown_timeout", Cat({kSource, "shutdown_timeout: 5s\n", kTables, kSinks})},
      {"metrics", Cat({kSource, "metrics:\n  per_sink: off\n", kTables, kSinks})},
  };
  for (const auto& [name, yaml] : cases) {
    const Config next = MustParse(yaml);
    EXPECT_EQ(RestartOnlyChanges(running, next), std::vector<std::string>{name}) << yaml;
  }
  Config other_sinks = MustParse(
      Cat({kSource, kTables,
           SinkWith("  - id: more\n    type: jsonl\n    tenants: [\"*\"]\n    path: m.jsonl\n")}));
  other_sinks.path = "elsewhere.yaml";
  EXPECT_TRUE(RestartOnlyChanges(running, other_sinks).empty()) << "sinks are applied";
  Config proxied = running;  // allow_unauthenticated needs a listen address beyond loopback
  proxied.http_allow_unauthenticated = !proxied.http_allow_unauthenticated;
  EXPECT_EQ(RestartOnlyChanges(running, proxied), std::vector<std::string>{"http"});
}

}  // namespace
}  // namespace pgfanout::config_test
