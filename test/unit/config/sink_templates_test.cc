// Sink templates: what a registry row may fill in, and how errors name the template and
// key (config) or the sink_id and column (a row).
#include "src/config/sink_templates.h"

#include <gtest/gtest.h>

#include "test/unit/config/config_pieces.h"

namespace pgfanout::config_test {
namespace {

constexpr const char* kTemplates =
    "sink_templates:\n"
    "  tenant-db:\n"
    "    type: postgres\n"
    "    dsn: \"host={host} port={port} dbname={database} user=sync\"\n"
    "    create_tables: true\n"
    "    tables:\n"
    "      - source: public.users\n"
    "        target: \"t_{tenant}.users\"\n"
    "  tenant-ch:\n"
    "    type: clickhouse\n"
    "    url: \"http://{host}:{port}\"\n"
    "    database: \"{database}\"\n"
    "  tenant-nats:\n"
    "    type: nats\n"
    "    url: \"nats://{host}:4222\"\n"
    "    subject_prefix: \"{prefix}\"\n"
    "sink_registry:\n"
    "  table: public.pgfanout_sinks\n";

Config Registry(const std::string& templates = kTemplates) {
  return MustParse(Cat({kSource, kTables, templates}));
}

std::string ParseError(const std::string& yaml) {
  auto config = ParseConfig(yaml, "cfg.yaml");
  EXPECT_FALSE(config) << "parsed: " << yaml;
  return config ? "" : config.error().message;
}

RegistryRow Row(std::string id = "p1", std::string tmpl = "tenant-db",
                std::vector<std::string> tenants = {"acme"},
                std::map<std::string, std::string> params = {
                    {"host", "db1.internal"}, {"port", "5432"}, {"database", "acme_db"}}) {
  return RegistryRow{.sink_id = std::move(id),
                     .template_name = std::move(tmpl),
                     .tenants = std::move(tenants),
                     .params = std::move(params)};
}

std::string RowError(const Config& config, const RegistryRow& row) {
  auto sink = InstantiateTemplate(config, row);
  EXPECT_FALSE(sink) << "made a sink of row " << row.sink_id;
  return sink ? "" : sink.error().message;
}

TEST(SinkTemplates, ARowFillsTheTemplateAndIsParsedAsASink) {
  const Config config = Registry();
  ASSERT_EQ(config.sink_templates.size(), 3u);
  EXPECT_TRUE(config.sinks.empty()) << "sinks: may be absent with a registry";
  EXPECT_EQ(config.sink_registry.QualifiedName(), "public.pgfanout_sinks");

  auto sink = InstantiateTemplate(config, Row());
  ASSERT_TRUE(sink) << sink.error().message;
  EXPECT_EQ(sink.value().id, "p1");
  EXPECT_EQ(sink.value().tenants, std::vector<std::string>{"acme"});
  const auto& pg = std::get<PostgresSinkOptions>(sink.value().options);
  EXPECT_EQ(pg.dsn, "host=db1.internal port=5432 dbname=acme_db user=sync");
  EXPECT_TRUE(pg.create_tables);
  ASSERT_EQ(sink.value().tables.size(), 1u);
  EXPECT_EQ(sink.value().tables[0].target_schema, "t_acme");
  EXPECT_EQ(sink.value().tables[0].target, "users");
  EXPECT_TRUE(sink.value().enabled);

  RegistryRow paused = Row("c1", "tenant-ch");
  paused.enabled = false;
  auto ch = InstantiateTemplate(config, paused);
  ASSERT_TRUE(ch) << ch.error().message;
  EXPECT_EQ(std::get<ClickHouseSinkOptions>(ch.value().options).url, "http://db1.internal:5432");
  EXPECT_EQ(std::get<ClickHouseSinkOptions>(ch.value().options).database, "acme_db");
  EXPECT_FALSE(ch.value().enabled);
}

TEST(SinkTemplates, ConfigErrorsNameTheTemplateAndTheKey) {
  const std::string base = Cat({kSource, kTables});
  EXPECT_NE(ParseError(base + "sink_templates:\n"
                              "  ch:\n"
                              "    type: clickhouse\n"
                              "    url: \"http://h:8123\"\n"
                              "    user: \"{who}\"\n"
                              "sink_registry:\n"
                              "  table: pgfanout_sinks\n")
                .find("sink_templates.ch.user: placeholders ({name}) may appear only in"),
            std::string::npos);
  EXPECT_NE(ParseError(base + "sink_templates:\n"
                              "  db:\n"
                              "    type: postgres\n"
                              "    dsn: \"host={host}\"\n"
                              "    colour: blue\n"
                              "sink_registry:\n"
                              "  table: pgfanout_sinks\n")
                .find("sink_templates.db.colour: unknown key"),
            std::string::npos);
  EXPECT_NE(ParseError(base + "sink_templates:\n"
                              "  db:\n"
                              "    type: postgres\n"
                              "    id: fixed\n"
                              "    dsn: \"host={host}\"\n"
                              "sink_registry:\n"
                              "  table: pgfanout_sinks\n")
                .find("sink_templates.db.id: each registry row gives it"),
            std::string::npos);
  EXPECT_NE(ParseError(base + "sink_templates:\n"
                              "  db:\n"
                              "    type: postgres\n"
                              "    dsn: \"host={host} password=x\"\n"
                              "sink_registry:\n"
                              "  table: pgfanout_sinks\n")
                .find("sink_templates.db.dsn: holds a password"),
            std::string::npos);
  EXPECT_NE(ParseError(base + "sink_registry:\n  table: pgfanout_sinks\n")
                .find("sink_registry: needs sink_templates"),
            std::string::npos);
  EXPECT_NE(ParseError(base).find("sinks: expected a non-empty list of sinks (or a sink_registry)"),
            std::string::npos);
}

TEST(SinkTemplates, RowErrorsNameTheSinkAndTheColumnAndNeverAParamValue) {
  const Config config = Registry();
  EXPECT_EQ(RowError(config, Row("p1", "nope")),
            "sink p1: template: no template 'nope' in sink_templates (known: tenant-db, "
            "tenant-ch, tenant-nats)");
  EXPECT_EQ(RowError(config, Row("p1", "tenant-db", {"acme"}, {{"host", "h"}, {"port", "1"}})),
            "sink p1: params.database: missing (template tenant-db uses {database})");
  // A value that would add a key to the connection string.
  const std::string injected =
      RowError(config, Row("p1", "tenant-db", {"acme"},
                           {{"host", "h sslmode=disable"}, {"port", "1"}, {"database", "d"}}));
  EXPECT_EQ(injected, "sink p1: params.host: letters, digits, '.', '_', '-' (at most 128)");
  EXPECT_EQ(injected.find("sslmode"), std::string::npos);
  EXPECT_EQ(
      RowError(config,
               Row("p1", "tenant-db", {"acme"},
                   {{"host", "h"}, {"port", "1"}, {"database", "d"}, {"db_password", "hunter2"}})),
      "sink p1: params.db_password: passwords never live in the registry: the "
      "template's password_file, a passfile (~/.pgpass, PGPASSFILE) or PGPASSWORD gives "
      "them");
  EXPECT_EQ(RowError(config, Row("p1", "tenant-db", {"a", "b"})),
            "sink p1: tenants: template tenant-db uses {tenant}, so the row names exactly one "
            "tenant");
  EXPECT_EQ(RowError(config, Row("p1", "tenant-ch", {"*"})),
            "sink p1: tenants: \"*\" (every tenant) is for static sinks only (sinks: in the "
            "config)");
  EXPECT_EQ(RowError(config, Row("p1", "tenant-db", {"a/../b"})),
            "sink p1: tenants: template tenant-db fills {tenant} in, so the tenant is letters, "
            "digits, '.', '_', '-' (at most 128)");
  // A subject prefix with an empty token: the kind's own rule, reached through the param.
  const std::string prefix =
      RowError(config, Row("n1", "tenant-nats", {"acme"}, {{"host", "h"}, {"prefix", "a..b"}}));
  EXPECT_EQ(
      prefix.rfind("sink n1: params: template tenant-nats makes no valid sink with them: ", 0), 0u)
      << prefix;
  EXPECT_NE(prefix.find("subject_prefix"), std::string::npos) << prefix;
}

TEST(SinkTemplates, ARegistrySinkMayNotTakeAStaticSinksId) {
  const Config config = MustParse(Cat({kSource, kTables, kSinks, kTemplates}));
  EXPECT_EQ(RowError(config, Row("out")),
            "sink out: sink_id: a static sink (sinks: in the config) has this id");
}

TEST(SinkTemplates, AReloadAppliesTemplatesAndNamesARegistryTableChange) {
  const Config running = Registry();
  std::string changed_text = kTemplates;
  changed_text.replace(changed_text.find("user=sync"), 9, "user=other");
  const Config changed = Registry(changed_text);
  EXPECT_TRUE(RestartOnlyChanges(running, changed).empty());
  std::string moved_text = kTemplates;
  moved_text.replace(moved_text.find("public.pgfanout_sinks"), 21, "ops.sinks");
  EXPECT_EQ(RestartOnlyChanges(running, Registry(moved_text)),
            std::vector<std::string>{"sink_registry"});
}

}  // namespace
}  // namespace pgfanout::config_test
