// pgfanout: tails a Postgres logical replication slot into a durable event log and fans
// it out to per-tenant sinks. main only parses the command line and wires components.

#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "src/config/config.h"
#include "src/core/failpoint.h"
#include "src/daemon/commands.h"
#include "src/daemon/daemon.h"
#include "src/daemon/hardening.h"
#include "src/daemon/resnapshot.h"
#include "src/daemon/verify.h"

namespace {

// %* in a pattern: the message as the inside of a JSON string (quotes, backslashes and
// control characters escaped), so every --log-format json line parses.
class JsonMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      switch (c) {
        case '"': dest.append(std::string_view("\\\"")); break;
        case '\\': dest.append(std::string_view("\\\\")); break;
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\r': dest.append(std::string_view("\\r")); break;
        case '\t': dest.append(std::string_view("\\t")); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            fmt::format_to(std::back_inserter(dest), "\\u{:04x}", static_cast<int>(c));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessage>();
  }
};

void SetUpLogging(const std::string& level, const std::string& format) {
  auto logger = spdlog::stderr_color_mt("pgfanout");
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessage>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","pid":%P,"msg":"%*"})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

constexpr const char* kConfigHelp =
    "\nFILES\n"
    "  The config is YAML: pgfanout.example.yaml shows every key with its default.\n"
    "  Passwords never go in it: password_file, PGPASSWORD or a passfile.\n";
constexpr const char* kExitHelp =
    "\nEXIT STATUS\n"
    "  0 done (run: stopped by SIGTERM/SIGINT, what was complete is durable and confirmed)\n"
    "  1 an error that needs a person, logged once with its context\n"
    "  2 a bad command line or config (the message names file, line and key)\n";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pgfanout: Postgres change data capture. Tails a logical replication slot (pgoutput),\n"
      "keeps every committed change of the tracked tables in a durable local event log, and\n"
      "delivers it in commit order to each tenant's sinks. See README.md."};
  app.require_subcommand(1);
  app.footer(std::string(
                 "\nEXAMPLES\n"
                 "  pgfanout run --config /etc/pgfanout/pgfanout.yaml\n"
                 "  pgfanout status --config pgfanout.yaml\n"
                 "  pgfanout replay --config pgfanout.yaml --sink tenant-7 --from-lsn 0/16B3748\n"
                 "  pgfanout <command> --help   for what each command does\n") +
             kConfigHelp + kExitHelp);
  std::string config_path;
  std::string log_level = "info";
  std::string log_format = "text";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--log-format", log_format, "text or json (one JSON object per line)")
      ->check(CLI::IsMember({"text", "json"}));
  bool allow_core_dumps = false;
  app.add_flag("--allow-core-dumps", allow_core_dumps,
               "let a crash leave a core dump (off by default: it would hold tenants' rows and "
               "passwords)");

  auto add_config = [&](CLI::App* cmd) {
    cmd->add_option("-c,--config", config_path, "YAML config file (see pgfanout.example.yaml)")
        ->required()
        ->check(CLI::ExistingFile);
  };
  auto* run = app.add_subcommand(
      "run", "Tail the slot, log durably, deliver to every sink; resumes where it stopped");
  add_config(run);
  run->footer(std::string(
                  "\nTails the slot into the event log in the state dir (RocksDB, fsynced) and\n"
                  "confirms the slot only up to what that log holds; each sink reads the log at\n"
                  "its own pace from its own cursor. On start it checks the server is the cluster\n"
                  "the state dir was made for, that the slot exists and was not moved past the\n"
                  "log; a mismatch stops it (exit 1) with what to do. A new sink first copies its\n"
                  "tenants' existing rows (backfill). Source and sink connection losses are\n"
                  "retried with backoff.\n"
                  "\nSIGNALS\n"
                  "  SIGTERM, SIGINT  stop reading, finish the batches in flight (at most\n"
                  "                   shutdown_timeout), send the last feedback, exit 0\n"
                  "  SIGHUP           reload the sink list (added, changed, removed sinks);\n"
                  "                   other changes are logged and need a restart\n"
                  "\nHTTP (http.listen, default 127.0.0.1:8686)\n"
                  "  /healthz  /readyz  /status (JSON)  /metrics (Prometheus)  / (lag page)\n") +
              kConfigHelp + kExitHelp);
  auto* status = app.add_subcommand(
      "status", "Slot, event log and per-sink positions and lag (safe while running)");
  add_config(status);
  std::string status_sink;
  status->add_option("--sink", status_sink, "show this sink only (with thousands of sinks)");
  status->footer(
      std::string("\nReads the state dir read-only and the slot on the source. For a running\n"
                  "daemon, GET /status on its HTTP endpoint gives the same and more as JSON.\n") +
      kExitHelp);
  auto* checkpoint = app.add_subcommand("checkpoint", "Show the positions stored in the state dir");
  add_config(checkpoint);
  checkpoint->footer(std::string("\nThe event log's durable LSN, its first and last event, and "
                                 "each sink's cursor;\nit does not connect to the source.\n") +
                     kExitHelp);
  auto* check = app.add_subcommand("check", "Validate a config file and exit (connects nowhere)");
  add_config(check);
  check->footer(std::string("\nLoads the config as `run` would and prints what it would run. Use "
                            "it before\n`systemctl reload pgfanout`.\n") +
                kExitHelp);
  auto* replay =
      app.add_subcommand("replay", "Re-deliver one sink from a stored LSN (stop the daemon first)");
  add_config(replay);
  std::string sink_id;
  std::string from_lsn;
  replay->add_option("--sink", sink_id, "sink id from the config")->required();
  replay->add_option("--from-lsn", from_lsn, "commit LSN to replay from, as X/X (see status)")
      ->required();
  replay->footer(
      std::string("\nRewinds the sink's cursor to just before the first event committed at\n"
                  "--from-lsn and delivers the log from there to its end. The LSN must still be\n"
                  "in the log (log.retain). Postgres sinks apply versioned upserts, so rows end\n"
                  "as the source has them; a JSONL sink appends the events again.\n") +
      kExitHelp);

  auto* verify = app.add_subcommand(
      "verify",
      "Compare a postgres sink's target tables with its tenants' source rows (read-only, safe "
      "while running)");
  add_config(verify);
  std::string verify_sink_id;
  std::string verify_table;
  verify->add_option("--sink", verify_sink_id, "id of a postgres sink from the config")->required();
  verify->add_option("--table", verify_table,
                     "only this source table, named as in the config (public.users, users, "
                     "'public.\"Team Rooms\"'); default: every table the sink receives");
  verify->footer(
      "For each table, compares the source rows of the sink's tenants (all rows for a \"*\"\n"
      "sink) with the target table: on the key and every copied column, as text (source\n"
      "\"col\"::text against the target column after rename). Computed columns are not\n"
      "compared; rows soft-deleted in the target count as absent. Prints per table the row\n"
      "counts and the first 100 differences: missing in target, unexpected in target (a row\n"
      "the source does not hold for these tenants), differs (with the columns). Each side is\n"
      "read in one REPEATABLE READ snapshot, so rows that change meanwhile may show as\n"
      "differences: run it again, or when the sink has caught up (pgfanout status).\n"
      "Exit status: 0 in sync, 1 differences found, 2 bad arguments (unknown sink or table,\n"
      "not a postgres sink) or the comparison could not run (connection or query error).");

  auto* backfill = app.add_subcommand(
      "backfill", "Copy the rows that exist on the source into a sink (stop the daemon first)");
  add_config(backfill);
  std::string backfill_sink_id;
  std::string backfill_table;
  size_t backfill_connections = 4;
  backfill->add_option("--sink", backfill_sink_id, "sink id from the config")->required();
  backfill->add_option("--table", backfill_table,
                       "only this source table, named as in the config; default: every table "
                       "the sink receives");
  backfill
      ->add_option("--connections", backfill_connections,
                   "source connections copying in parallel (key ranges)")
      ->check(CLI::Range(1, 32))
      ->capture_default_str();
  backfill->footer(
      std::string(
          "\nCopies the sink's tenants' rows as of one exported snapshot (a temporary\n"
          "replication slot, dropped when done; nothing is written to the source's tables),\n"
          "with COPY in key order, and leaves the sink's cursor so the stream continues\n"
          "exactly after the copy. Progress: a line on a terminal, log lines otherwise, and\n"
          "`pgfanout status`. Interrupted (Ctrl-C, kill -9), it resumes from the last copied\n"
          "chunk when run again. A running daemon does this by itself for a new sink, or a\n"
          "table added to a sink.\n") +
      kExitHelp);

  auto* resnapshot = app.add_subcommand(
      "resnapshot",
      "Ask the running daemon to copy a sink's rows again while every sink keeps streaming");
  add_config(resnapshot);
  pgfanout::ResnapshotQuery resnapshot_ask;
  std::string resnapshot_table;
  std::string resnapshot_address;
  bool resnapshot_keep = false;
  bool resnapshot_wait = false;
  resnapshot->add_option("--sink", resnapshot_ask.sink, "sink id")->required();
  resnapshot->add_option("--table", resnapshot_table,
                         "only this source table (schema.name); default: every table the sink "
                         "receives");
  resnapshot->add_flag("--keep", resnapshot_keep,
                       "only bring rows up to the source: keep the destination's rows the copy "
                       "does not find (default: they are removed, as by backfill)");
  std::string resnapshot_where;
  resnapshot->add_option(
      "--where", resnapshot_where,
      "only rows this condition holds for, in the language of sinks[].tables[].where (not "
      "SQL), e.g. \"plan IN ('pro', 'team')\"; implies --keep");
  resnapshot->add_flag("--wait", resnapshot_wait, "print the copy's progress until it is done");
  resnapshot->add_option("--address", resnapshot_address,
                         "host:port of the daemon's HTTP endpoint; default: http.listen");
  resnapshot->footer(
      std::string(
          "\nThe daemon (POST /resnapshot, which needs http.token_file; this command sends\n"
          "its token) copies the sink's tenants' rows of the tables again, a round of\n"
          "delivery.copy_round at a time between the sink's batches, each from a snapshot of\n"
          "its own: the sink keeps streaming, no change is lost or applied out of order.\n"
          "Postgres and ClickHouse sinks end up equal to the source (rows the copy does not\n"
          "find are removed unless --keep); change logs (JSONL, webhook, NATS) get the rows\n"
          "as inserts. One at a time per sink (exit 3 when one runs); progress in\n"
          "`pgfanout status` and /status; a kill -9 resumes it at the next start. With the\n"
          "daemon stopped, use pgfanout backfill.\n") +
      kExitHelp);

  CLI11_PARSE(app, argc, argv);
  pgfanout::HardenProcess(allow_core_dumps);
  SetUpLogging(log_level, log_format);
  if (auto failpoints = pgfanout::CheckFailpoints(); !failpoints) {
    spdlog::error("{}", failpoints.error().message);
    return 2;
  } else if (!failpoints.value().empty()) {
    spdlog::warn("{}", failpoints.value());
  }

  auto config = pgfanout::LoadConfig(config_path);
  if (!config) {
    spdlog::error("{}", config.error().message);
    return 2;
  }
  if (*run) return pgfanout::RunDaemon(config.value());
  if (*check) {
    const auto& c = config.value();
    fmt::print("{}: OK: slot {} on publication {}, {} table(s), {} sink(s): ", c.path,
               c.source.slot, c.source.publication, c.tables.size(), c.sinks.size());
    for (size_t i = 0; i < c.sinks.size(); ++i) {
      fmt::print("{}{} ({})", i ? ", " : "", c.sinks[i].id, c.sinks[i].type());
    }
    if (c.sink_registry.enabled()) {
      fmt::print("; sink registry {} with {} template(s): ", c.sink_registry.QualifiedName(),
                 c.sink_templates.size());
      for (size_t i = 0; i < c.sink_templates.size(); ++i) {
        fmt::print("{}{}", i ? ", " : "", c.sink_templates[i].name);
      }
    }
    fmt::print("; http {}\n", c.http_listen.empty() ? "off" : c.http_listen);
    return 0;
  }
  if (*status) return pgfanout::ShowStatus(config.value(), status_sink);
  if (*checkpoint) return pgfanout::ShowCheckpoints(config.value());
  if (*verify) return pgfanout::VerifySink(config.value(), verify_sink_id, verify_table);
  if (*backfill) {
    return pgfanout::BackfillCommand(config.value(), backfill_sink_id, backfill_table,
                                     backfill_connections);
  }
  if (*resnapshot) {
    if (!resnapshot_table.empty()) resnapshot_ask.table = resnapshot_table;
    resnapshot_ask.replace = !resnapshot_keep && resnapshot_where.empty();
    if (!resnapshot_where.empty()) resnapshot_ask.where = resnapshot_where;
    return pgfanout::ResnapshotCommand(config.value(), resnapshot_ask, resnapshot_address,
                                       resnapshot_wait);
  }
  auto from = pgfanout::Lsn::Parse(from_lsn);
  if (!from) {
    spdlog::error("--from-lsn: '{}' is not an LSN (expected X/X, e.g. 0/16B3748)", from_lsn);
    return 2;
  }
  return pgfanout::ReplaySink(config.value(), sink_id, *from);
}
