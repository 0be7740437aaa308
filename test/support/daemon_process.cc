#include "test/support/daemon_process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "test/support/pg_server.h"

namespace pgfanout::testing {

std::string PgfanoutBinary() {
  const char* bin = std::getenv("PGFANOUT_BIN");
  return bin ? bin : "pgfanout";
}

DaemonProcess::~DaemonProcess() {
  if (running()) {
    Kill(SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

bool DaemonProcess::Start(const std::vector<std::string>& args, const std::string& log_path,
                          const std::map<std::string, std::string>& env,
                         const std::string& binary) {
  status_.reset();
  std::string bin = binary.empty() ? PgfanoutBinary() : binary;
  pid_ = ::fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    argv.push_back(bin.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  return true;
}

bool DaemonProcess::running() {
  if (pid_ <= 0 || status_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == 0) return true;
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
  return false;
}

void DaemonProcess::Kill(int signal) {
  if (pid_ > 0 && !status_) ::kill(pid_, signal);
}

std::optional<int> DaemonProcess::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

int RunPgfanout(const std::vector<std::string>& args, std::string* output) {
  std::string cmd = PgfanoutBinary();
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
    if (output) output->append(buf, n);
  }
  int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void WaitSlotActive(const PgServer& pg, DaemonProcess& daemon, const std::string& slot) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (pg.Scalar("SELECT active FROM pg_replication_slots WHERE slot_name = '" + slot + "'") !=
         "t") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "pgfanout never started streaming";
    ASSERT_TRUE(daemon.running()) << "pgfanout exited";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void StopCleanly(DaemonProcess& daemon) {
  daemon.Kill(SIGTERM);
  auto code = daemon.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "pgfanout did not stop within 30 s of SIGTERM";
  EXPECT_EQ(*code, 0) << "pgfanout exited with " << *code << " after SIGTERM";
}

}  // namespace pgfanout::testing
