#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "test/support/pg_server.h"

namespace pgfanout::testing {

// A throwaway clickhouse-server (Debian's 18.16, /usr/sbin/clickhouse-server) for the
// ClickHouse sink's tests: a config in a temp dir (data, tmp, user files and logs there
// too), HTTP on a free loopback port, no native TCP port. It runs as the current user
// (clickhouse-server does not refuse root) and dies with the test process (PDEATHSIG), so
// a crashed test leaves no server behind. Stopped and deleted by the destructor.
class ClickHouseServer {
 public:
  struct Options {
    // Users besides `default` (which has no password and is what Post() uses by default).
    std::vector<std::pair<std::string, std::string>> users;  // name, password
    // No background merges: every row ever inserted stays in its part, so a query without
    // FINAL counts each insert (how a test sees a row version written twice).
    bool no_merges = false;
  };

  // Starts a server and waits until /ping answers, or fails the calling test (ADD_FAILURE)
  // and returns nullptr.
  static std::unique_ptr<ClickHouseServer> Start(const Options& options);
  static std::unique_ptr<ClickHouseServer> Start() { return Start(Options{}); }
  ~ClickHouseServer();
  ClickHouseServer(const ClickHouseServer&) = delete;
  ClickHouseServer& operator=(const ClickHouseServer&) = delete;

  int port() const { return port_; }
  std::string Url() const;  // http://127.0.0.1:<port>
  const std::string& dir() const { return dir_; }

  struct Reply {
    int status = 0;  // 0: no answer (body says why)
    std::string body;
  };
  // POSTs `sql` over HTTP (as `user` with `password` when given).
  Reply Post(const std::string& sql, const std::string& user = "",
             const std::string& password = "") const;
  // Post() that fails the test unless the answer is 200.
  void Exec(const std::string& sql) const;
  // The rows of a SELECT (FORMAT TabSeparated is appended), NULL as nullopt; nullopt with
  // `error` set when the server refused or did not answer: for polling.
  std::optional<std::vector<Row>> TryRows(const std::string& sql,
                                          std::string* error = nullptr) const;
  std::vector<Row> Rows(const std::string& sql) const;  // fails the test on error
  std::string Scalar(const std::string& sql) const;     // first value, "" if none

  // SIGTERM and wait; StartAgain() brings it back on the same port with its data.
  bool Stop();
  bool StartAgain();

 private:
  ClickHouseServer() = default;
  bool Launch();

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace pgfanout::testing
