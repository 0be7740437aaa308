#include "test/support/pg_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

namespace pgfanout::testing {
namespace {

constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};

// One initdb per test process, copied into each new cluster (Options::own_identity).
class InitdbTemplate {
 public:
  ~InitdbTemplate() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  // Copies a freshly initdb'd data dir to `data`; false (and a test failure) on error.
  bool CopyTo(const std::string& data) {
    std::lock_guard lock(mu_);
    if (dir_.empty() && !Make()) return false;
    // cp -a keeps owner and modes (the data dir must be 0700 and the postgres user's).
    if (RunCommand(fmt::format("cp -a {}/data {}", dir_, data)) != 0) {
      ADD_FAILURE() << "copying the initdb template " << dir_ << "/data failed";
      return false;
    }
    return true;
  }
  static InitdbTemplate& Get() {
    static InitdbTemplate t;
    return t;
  }

 private:
  bool Make();
  std::mutex mu_;
  std::string dir_;
};

}  // namespace

std::string AsPostgres(const std::string& cmd) {
  if (geteuid() != 0) return cmd;
  return "runuser -u postgres -- " + cmd;
}

bool SlotRestartsFromSavedSnapshot(const PgServer& pg, const std::string& slot) {
  auto r = pg.TryQuery(fmt::format("SELECT EXISTS (SELECT 1 FROM pg_replication_slots s, "
                                   "pg_ls_logicalsnapdir() f WHERE s.slot_name = '{}' AND "
                                   "f.name = replace(s.restart_lsn::text, '/', '-') || '.snap')",
                                   slot),
                       "postgres");
  return r && !r->empty() && (*r)[0][0] == std::optional<std::string>("t");
}

int RunCommand(const std::string& command) { return std::system(command.c_str()); }

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

std::string MakePostgresDir(const char* prefix) {
  std::string tmpl = fmt::format("/tmp/{}-XXXXXX", prefix);
  if (!::mkdtemp(tmpl.data())) {
    ADD_FAILURE() << "mkdtemp failed";
    return "";
  }
  if (geteuid() == 0) {
    passwd* pw = getpwnam("postgres");
    if (!pw || ::chown(tmpl.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      ADD_FAILURE() << "cannot hand " << tmpl << " to the postgres user";
      return "";
    }
  }
  return tmpl;
}

namespace {

bool Initdb(const std::string& dir) {
  if (RunCommand(AsPostgres(fmt::format("{}/initdb -D {}/data -U postgres --auth=trust -E UTF8 "
                                        "--locale=C.UTF-8 >{}/initdb.log 2>&1",
                                        kBinDir, dir, dir))) != 0) {
    ADD_FAILURE() << "initdb failed; see " << dir << "/initdb.log";
    return false;
  }
  return true;
}

bool InitdbTemplate::Make() {
  std::string dir = MakePostgresDir("pgfanout-test-initdb");
  if (dir.empty()) return false;
  if (!Initdb(dir)) return false;
  dir_ = dir;
  return true;
}

}  // namespace

std::unique_ptr<PgServer> PgServer::Start(const Options& options) {
  std::unique_ptr<PgServer> s(new PgServer());
  s->dir_ = MakePostgresDir("pgfanout-test-pg");
  if (s->dir_.empty()) return nullptr;
  s->port_ = FreePort();
  std::string data = s->dir_ + "/data";
  if (options.own_identity ? !Initdb(s->dir_) : !InitdbTemplate::Get().CopyTo(data)) {
    return nullptr;
  }
  {
    std::ofstream conf(data + "/postgresql.conf", std::ios::app);
    conf << "listen_addresses = '127.0.0.1'\n"
         << "port = " << s->port_ << "\n"
         << "unix_socket_directories = '" << s->dir_ << "'\n"
         << "wal_level = logical\n"
         << "max_wal_senders = 10\n"
         << "max_replication_slots = 10\n"
         << "fsync = off\n"  // the tests kill pgfanout, not the machine
         << "shared_buffers = 64MB\n";
    // Debian's hardened builds only load the output plugins this list names; where the
    // server has the setting, the tests' servers also serve wal2json.
    static const bool has_plugin_list =
        RunCommand(AsPostgres(fmt::format("{}/postgres --describe-config 2>/dev/null | "
                                          "grep -q '^output_plugin_libraries'",
                                          kBinDir))) == 0;
    if (has_plugin_list) {
      conf << "output_plugin_libraries = 'pgoutput, wal2json, test_decoding'\n";
    }
    for (const auto& line : options.settings) conf << line << "\n";
  }
  if (!s->RunCtl("-w -t 60 start")) {
    ADD_FAILURE() << "postgres did not start; see " << s->dir_ << "/postgres.log";
    return nullptr;
  }
  s->running_ = true;
  return s;
}

std::unique_ptr<PgServer> PgServer::Attach(const std::string& dsn_without_dbname) {
  std::unique_ptr<PgServer> s(new PgServer());
  s->attached_dsn_ = dsn_without_dbname;
  return s;
}

std::unique_ptr<PgServer> PgServer::CopyStopped() const {
  if (running_) {
    ADD_FAILURE() << "CopyStopped: stop the cluster first";
    return nullptr;
  }
  std::unique_ptr<PgServer> s(new PgServer());
  char tmpl[] = "/tmp/pgfanout-test-pg-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    ADD_FAILURE() << "mkdtemp failed";
    return nullptr;
  }
  s->dir_ = tmpl;
  s->port_ = FreePort();
  // cp -a keeps owner and modes (the data dir must be 0700 and the postgres user's).
  if (RunCommand(fmt::format("cp -a {}/data {}/data", dir_, s->dir_)) != 0 ||
      (geteuid() == 0 && RunCommand(fmt::format("chown postgres {}", s->dir_)) != 0)) {
    ADD_FAILURE() << "copying " << dir_ << "/data failed";
    return nullptr;
  }
  std::ofstream conf(s->dir_ + "/data/postgresql.conf", std::ios::app);
  conf << "port = " << s->port_ << "\n"
       << "unix_socket_directories = '" << s->dir_ << "'\n";
  return s;
}

bool PgServer::StartAsStandbyAndPromote() {
  { std::ofstream signal(dir_ + "/data/standby.signal"); }
  if (geteuid() == 0) {
    RunCommand(fmt::format("chown postgres {}/data/standby.signal", dir_));
  }
  if (!StartAgain()) return false;
  return RunCtl("-w -t 60 promote");
}

bool PgServer::RunCtl(const std::string& args) const {
  if (!attached_dsn_.empty()) {
    ADD_FAILURE() << "pg_ctl " << args << ": this server is attached, not run by the test";
    return false;
  }
  return RunCommand(AsPostgres(fmt::format("{}/pg_ctl -D {}/data -l {}/postgres.log {} "
                                           ">>{}/pg_ctl.log 2>&1",
                                           kBinDir, dir_, dir_, args, dir_))) == 0;
}

bool PgServer::Stop(const char* mode) {
  if (!running_) return true;
  running_ = false;
  return RunCtl(fmt::format("-w -t 60 -m {} stop", mode));
}

bool PgServer::Restart() {
  Stop("fast");
  return StartAgain();
}

bool PgServer::StartAgain() {
  running_ = RunCtl("-w -t 60 start");
  return running_;
}

PgServer::~PgServer() {
  Stop("immediate");
  if (!dir_.empty() && std::getenv("PGFANOUT_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PgServer::Dsn(const std::string& dbname) const {
  if (!attached_dsn_.empty()) return fmt::format("{} dbname={}", attached_dsn_, dbname);
  return fmt::format("host=127.0.0.1 port={} user=postgres dbname={}", port_, dbname);
}

std::vector<Row> PgServer::Query(const std::string& sql, const std::string& dbname) const {
  std::string error;
  auto rows = TryQuery(sql, dbname, &error);
  if (!rows) {
    ADD_FAILURE() << error << "\n" << sql.substr(0, 500);
    return {};
  }
  return *rows;
}

std::optional<std::vector<Row>> PgServer::TryQuery(const std::string& sql,
                                                   const std::string& dbname,
                                                   std::string* error) const {
  std::unique_ptr<PGconn, ConnDeleter> conn(PQconnectdb(Dsn(dbname).c_str()));
  std::vector<Row> rows;
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    if (error) *error = std::string("connect: ") + PQerrorMessage(conn.get());
    return std::nullopt;
  }
  PGresult* r = PQexec(conn.get(), sql.c_str());
  auto status = PQresultStatus(r);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    if (error) *error = std::string("SQL failed: ") + PQresultErrorMessage(r);
    PQclear(r);
    return std::nullopt;
  }
  for (int i = 0; i < PQntuples(r); ++i) {
    Row row;
    for (int j = 0; j < PQnfields(r); ++j) {
      if (PQgetisnull(r, i, j)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(r, i, j), PQgetlength(r, i, j)));
      }
    }
    rows.push_back(std::move(row));
  }
  PQclear(r);
  return rows;
}

void PgServer::Exec(const std::string& sql, const std::string& dbname) const { Query(sql, dbname); }

std::string PgServer::Scalar(const std::string& sql, const std::string& dbname) const {
  auto rows = Query(sql, dbname);
  if (rows.empty() || rows[0].empty() || !rows[0][0]) return "";
  return *rows[0][0];
}

}  // namespace pgfanout::testing
