// pgfanout: tails a Postgres logical replication slot into a durable event log and fans
// it out to per-tenant sinks. main only parses the command line and wires components.

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "src/config/config.h"
#include "src/daemon/commands.h"
#include "src/daemon/daemon.h"

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
  auto from = pgfanout::Lsn::Parse(from_lsn);
  if (!from) {
    spdlog::error("--from-lsn: '{}' is not an LSN (expected X/X, e.g. 0/16B3748)", from_lsn);
    return 2;
  }
  return pgfanout::ReplaySink(config.value(), sink_id, *from);
}
