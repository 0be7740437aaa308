#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pgfanout::testing {

// The real pgfanout binary as a child process (so tests can kill -9 it). The binary's
// path comes from the PGFANOUT_BIN environment variable, which meson's test() sets.
class DaemonProcess {
 public:
  DaemonProcess() = default;
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;
  ~DaemonProcess();  // SIGKILL if still running

  // Starts `pgfanout <args>` with extra environment variables; output goes to `log_path`
  // (appended). `binary` replaces PgfanoutBinary() (a test build of the daemon).
  bool Start(const std::vector<std::string>& args, const std::string& log_path,
             const std::map<std::string, std::string>& env = {}, const std::string& binary = "");
  bool running();
  void Kill(int signal);
  // Waits for exit; the exit code, or -signal when killed by one, or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

class PgServer;

// Waits until replication slot `slot` is active on `pg` (the daemon streams from it).
// Fails the calling test after 30 s, or as soon as `daemon` exits.
void WaitSlotActive(const PgServer& pg, DaemonProcess& daemon, const std::string& slot);

// SIGTERM, then expects a clean exit 0 within 30 s (fails the calling test otherwise).
void StopCleanly(DaemonProcess& daemon);

// Runs `pgfanout <args>` to completion and returns its exit code, with its output.
int RunPgfanout(const std::vector<std::string>& args, std::string* output);

std::string PgfanoutBinary();

}  // namespace pgfanout::testing
