// pgfanout: tails a Postgres logical replication slot into a durable event log and fans
// it out to per-tenant sinks. main only parses the command line and wires components.

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "src/config/config.h"
#include "src/daemon/commands.h"
#include "src/daemon/daemon.h"
#include "src/daemon/verify.h"

namespace {

void SetUpLogging(const std::string& level, const std::string& format) {
  auto logger = spdlog::stderr_color_mt("pgfanout");
  if (format == "json") {
    logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","pid":%P,"msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pgfanout: Postgres change data capture. Tails a logical replication slot (pgoutput),\n"
      "keeps every committed change of the tracked tables in a durable local event log, and\n"
      "delivers it in commit order to each tenant's sinks. See README.md."};
  app.require_subcommand(1);
  std::string config_path;
  std::string log_level = "info";
  std::string log_format = "text";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--log-format", log_format, "text or json (one JSON object per line)")
      ->check(CLI::IsMember({"text", "json"}));

  auto add_config = [&](CLI::App* cmd) {
    cmd->add_option("-c,--config", config_path, "YAML config file (see pgfanout.example.yaml)")
        ->required()
        ->check(CLI::ExistingFile);
  };
  auto* run = app.add_subcommand(
      "run", "Tail the slot, log durably, deliver to every sink; resumes where it stopped");
  add_config(run);
  auto* status = app.add_subcommand(
      "status", "Slot, event log and per-sink positions and lag (safe while running)");
  add_config(status);
  auto* checkpoint = app.add_subcommand("checkpoint", "Show the positions stored in the state dir");
  add_config(checkpoint);
  auto* replay =
      app.add_subcommand("replay", "Re-deliver one sink from a stored LSN (stop the daemon first)");
  add_config(replay);
  std::string sink_id;
  std::string from_lsn;
  replay->add_option("--sink", sink_id, "sink id from the config")->required();
  replay->add_option("--from-lsn", from_lsn, "commit LSN to replay from, as X/X (see status)")
      ->required();

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
      "Copies the sink's tenants' rows as of one exported snapshot (a temporary replication\n"
      "slot, dropped when done; nothing is written to the source's tables), with COPY in key\n"
      "order, and leaves the sink's cursor so the stream continues exactly after the copy.\n"
      "Progress: a line on a terminal, log lines otherwise, and `pgfanout status`. Interrupted\n"
      "(Ctrl-C, kill -9), it resumes from the last copied chunk when run again. A running\n"
      "daemon does this by itself for a new sink, or a table added to a sink.");

  CLI11_PARSE(app, argc, argv);
  SetUpLogging(log_level, log_format);

  auto config = pgfanout::LoadConfig(config_path);
  if (!config) {
    spdlog::error("{}", config.error().message);
    return 2;
  }
  if (*run) return pgfanout::RunDaemon(config.value());
  if (*status) return pgfanout::ShowStatus(config.value());
  if (*checkpoint) return pgfanout::ShowCheckpoints(config.value());
  if (*verify) return pgfanout::VerifySink(config.value(), verify_sink_id, verify_table);
  if (*backfill) {
    return pgfanout::BackfillCommand(config.value(), backfill_sink_id, backfill_table,
                                     backfill_connections);
  }
  auto from = pgfanout::Lsn::Parse(from_lsn);
  if (!from) {
    spdlog::error("--from-lsn: '{}' is not an LSN (expected X/X, e.g. 0/16B3748)", from_lsn);
    return 2;
  }
  return pgfanout::ReplaySink(config.value(), sink_id, *from);
}
