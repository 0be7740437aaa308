#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pgfanout::testing {

using Row = std::vector<std::optional<std::string>>;

// A throwaway PostgreSQL 15 cluster for integration tests: initdb'd files in a temp dir, a free
// loopback port, wal_level=logical, trust auth for user postgres. Runs initdb/postgres as
// the `postgres` OS user when the tests run as root (Postgres refuses root). Stopped and
// deleted by the destructor.
class PgServer {
 public:
  struct Options {
    std::vector<std::string> settings;  // extra postgresql.conf lines
    // initdb this cluster itself. Otherwise its files are a copy of one initdb made per
    // test process (an initdb costs ~1.3 s, a copy ~0.1 s), so clusters of one process
    // share a system identifier: a test that needs "another cluster" sets this.
    bool own_identity = false;
  };

  // Starts a new cluster or fails the calling test (ADD_FAILURE) and returns nullptr.
  static std::unique_ptr<PgServer> Start(const Options& options);
  static std::unique_ptr<PgServer> Start() { return Start(Options{}); }
  // A server this object does not run (a Patroni cluster's current primary, say): queries
  // go to `dsn_without_dbname` + " dbname=<db>"; Stop/Start/Copy are not available and the
  // destructor leaves it alone.
  static std::unique_ptr<PgServer> Attach(const std::string& dsn_without_dbname);
  ~PgServer();

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  std::string Dsn(const std::string& dbname = "postgres") const;

  // Runs SQL (several statements allowed when no rows are wanted). Fails the test on error.
  void Exec(const std::string& sql, const std::string& dbname = "postgres") const;
  // Runs a query and returns its rows as text.
  std::vector<Row> Query(const std::string& sql, const std::string& dbname = "postgres") const;
  // Query() that reports an error (in `error`) instead of failing the test: for polling.
  std::optional<std::vector<Row>> TryQuery(const std::string& sql, const std::string& dbname,
                                           std::string* error = nullptr) const;
  // First column of the first row, or "" when there is none.
  std::string Scalar(const std::string& sql, const std::string& dbname = "postgres") const;

  // A copy of this cluster's files (stop it first: a cold copy, slots included) as a new
  // cluster on a port of its own, not started. Nullptr (and a test failure) on error.
  std::unique_ptr<PgServer> CopyStopped() const;
  // Starts this cluster as a standby (standby.signal; it replays the WAL it has, with no
  // primary to follow) and promotes it: it goes on as a primary on the next timeline, as a
  // standby does at a failover.
  bool StartAsStandbyAndPromote();

  bool Stop(const char* mode = "fast");
  bool Restart();
  // Starts the cluster again after Stop() (any mode: after "immediate" it recovers).
  bool StartAgain();

 private:
  PgServer() = default;
  bool RunCtl(const std::string& args) const;
  std::string dir_;
  std::string attached_dsn_;  // Attach(): the server is not ours
  int port_ = 0;
  bool running_ = false;
};

// Whether logical decoding of `slot` on `pg` would start from a snapshot the server saved
// at the slot's restart_lsn (a file in pg_logical/snapshots named after it), as after the
// server's own decoding; a slot copied from its state file alone has none. False when the
// slot is missing or the query fails.
bool SlotRestartsFromSavedSnapshot(const PgServer& pg, const std::string& slot);

// Runs a shell command, returns its exit status (as from system()).
int RunCommand(const std::string& command);

// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
int FreePort();

// A new temp dir /tmp/<prefix>-XXXXXX that the postgres OS user owns when the tests run as
// root; "" (and a test failure) on error.
std::string MakePostgresDir(const char* prefix);

// `command` as the postgres OS user when the tests run as root (a shell command line).
std::string AsPostgres(const std::string& command);

}  // namespace pgfanout::testing
