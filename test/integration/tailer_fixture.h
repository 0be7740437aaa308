#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "test/support/daemon_process.h"
#include "test/support/jsonl_checker.h"
#include "test/support/pg_server.h"

namespace pgfanout::testing {

// A real Postgres with two tracked tables (users, teams; tenant column tenant_id) and an
// untracked one, a pgfanout config streaming both tracked tables into one JSONL file, and
// helpers to run the daemon and compare the file with the source.
class TailerTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Extra postgresql.conf lines; override per suite.
  virtual std::vector<std::string> ServerSettings() const { return {}; }
  // The config's source.decoder ("pgoutput" or "wal2json"); override per suite (the
  // end-to-end scenarios in tailer_test.cc run once with each).
  virtual std::string Decoder() const { return "pgoutput"; }

  std::string WriteConfig(const std::string& extra_sink_yaml = "");
  // Replaces every match of the regular expression `from` in the config file with `to`.
  void EditConfig(const std::string& from, const std::string& to);
  // Starts `pgfanout run`; with `wait`, returns once it streams from the slot (changes
  // committed before the slot exists are not part of the stream).
  void StartDaemon(const std::map<std::string, std::string>& env = {}, bool wait = true);
  // Waits until the daemon's replication connection is active on the slot.
  void WaitStreaming();
  // SIGTERM and expect a clean exit 0.
  void StopDaemon();
  // Waits for the daemon to exit by itself (a failpoint killed it) and returns its status.
  std::optional<int> WaitDaemonExit(std::chrono::seconds timeout);
  // Starts the daemon, expects it to refuse (exit 1 by itself within 30 s) and returns its
  // log.
  std::string RunExpectingRefusal();

  // Polls until the JSONL file rebuilt by JsonlChecker equals the source tables, or the
  // timeout passes; then asserts equality, strict id order and a clean parse.
  void ExpectSinkEqualsSource(std::chrono::seconds timeout = std::chrono::seconds(60));
  // The source rows of `table` keyed like the checker keys them.
  std::map<std::string, nlohmann::json> SourceRows(const std::string& table);

  std::string DaemonLog() const;
  // The address the daemon's log says it listens on (its last start), waiting up to 30 s
  // for the line; "" (and a test failure) without one.
  std::string HttpAddress();
  std::string Durable();  // `pgfanout checkpoint` output

  std::unique_ptr<PgServer> pg_;
  std::string work_dir_;
  std::string config_path_;
  std::string jsonl_path_;
  std::string log_path_;
  DaemonProcess daemon_;
  JsonlChecker checker_{std::map<std::string, std::vector<std::string>>{
      {"public.users", std::vector<std::string>{"id"}},
      {"public.teams", std::vector<std::string>{"id"}}}};
};

// Value of the series `line_start` ("pgfanout_x{sink=\"a\"}") in a /metrics body, or -1.
double MetricValue(const std::string& body, const std::string& line_start);

}  // namespace pgfanout::testing
