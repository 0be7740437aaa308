// Secrets and TLS: the minimal source role from migrations/ with its password in a file
// (never in any output), a password in the config refused, and libpq's verify-full
// refusing a certificate made for another host name, for the source and for a sink.

#include <fmt/format.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "test/integration/tailer_fixture.h"
#include "test/support/http_client.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

template <class Pred>
bool Eventually(Pred done, std::chrono::milliseconds budget = 30s) {
  auto deadline = std::chrono::steady_clock::now() + budget;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

class SecurityTest : public TailerTest {
 protected:
  void Replace(const std::string& pattern, const std::string& with) {
    const std::string text = std::regex_replace(ReadFile(config_path_), std::regex(pattern), with);
    std::ofstream(config_path_) << text;  // opened (emptied) only after the read
  }
};

// The role migrations/source/001_replication_role.sql makes (LOGIN, REPLICATION, SELECT) is
// all pgfanout needs once the publication exists; it logs in with SCRAM, its password read
// from password_file. The password shows up nowhere: not in the log, `status`, /status or
// /metrics, not even when it is wrong and the server says so.
TEST_F(SecurityTest, MinimalRoleWithAPasswordFileWorksAndThePasswordIsNeverShown) {
  const std::string secret = fmt::format("Pw-{}-never-printed", ::getpid());
  const std::string src = std::string(PGFANOUT_SOURCE_ROOT) + "/migrations/source/";
  auto psql = [&](const std::string& vars, const std::string& file) {
    return RunCommand(fmt::format("psql -X -q -v ON_ERROR_STOP=1 {} '{}' -f {}{} >>{}/psql.log 2>&1",
                                  vars, pg_->Dsn(), src, file, work_dir_));
  };
  ASSERT_EQ(psql(fmt::format("-v password=\"'{}'\" -v tables='public.users, public.teams'", secret),
                 "001_replication_role.sql"),
            0)
      << ReadFile(work_dir_ + "/psql.log");
  ASSERT_EQ(psql("-v publication=pgfanout_test -v tables='public.users, public.teams'",
                 "002_create_publication.sql"),
            0)
      << ReadFile(work_dir_ + "/psql.log");
  // Password authentication for every role but the harness's own postgres.
  std::ofstream(pg_->dir() + "/data/pg_hba.conf")
      << "local all postgres trust\nhost all postgres 127.0.0.1/32 trust\n"
         "host all all 127.0.0.1/32 scram-sha-256\n"
         "host replication all 127.0.0.1/32 scram-sha-256\n";
  pg_->Exec("SELECT pg_reload_conf()");

  const std::string pw_file = work_dir_ + "/source-password";
  std::ofstream(pw_file) << "wrong-" << secret << "\n";
  ::chmod(pw_file.c_str(), 0600);
  Replace("user=postgres", "user=pgfanout");
  Replace("  slot: pgfanout_test", "  password_file: " + pw_file + "\n  slot: pgfanout_test");
  StartDaemon({}, /*wait=*/false);
  ASSERT_TRUE(Eventually([&] {
    return DaemonLog().find("password authentication failed") != std::string::npos;
  })) << DaemonLog();
  daemon_.Kill(SIGKILL);
  daemon_.Wait(10s);

  std::ofstream(pw_file) << secret << "\n";
  StartDaemon();
  pg_->Exec("INSERT INTO teams SELECT i, '7', 'x' FROM generate_series(1, 50) i");
  ExpectSinkEqualsSource();
  EXPECT_EQ(pg_->Scalar("SELECT usename FROM pg_stat_replication"), "pgfanout");
  const std::string address = HttpAddress();
  ASSERT_FALSE(address.empty());
  std::string outputs = HttpGet(address, "/status").body + HttpGet(address, "/metrics").body;
  std::string status;
  EXPECT_EQ(RunPgfanout({"status", "--config", config_path_}, &status), 0) << status;
  EXPECT_NE(status.find("confirmed"), std::string::npos) << "status read the slot: " << status;
  StopDaemon();
  outputs += status + DaemonLog();
  EXPECT_EQ(outputs.find(secret), std::string::npos) << "the password was shown";
  EXPECT_EQ(ReadFile(config_path_).find(secret), std::string::npos);
}

// A target refuses a row (a CHECK constraint). The server's DETAIL ("Failing row contains
// (…)") holds the row's values; the sink's error, which reaches the log, `status`, /status,
// /metrics and the state dir's record of it, names the table and constraint only.
TEST_F(SecurityTest, ARowATargetRefusesIsNotShownInAnyErrorOutput) {
  pg_->Exec("CREATE DATABASE tenant7");
  pg_->Exec("CREATE DATABASE tenant8");
  pg_->Exec(R"sql(
    CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, name text,
      score numeric, active boolean, bio text, pgfanout_version bigint NOT NULL,
      CONSTRAINT no_ssn CHECK (bio NOT LIKE '%SSN%'));
  )sql",
            "tenant7");
  // A data exception quotes the value it could not take: tenant 8's name column is int.
  pg_->Exec(R"sql(
    CREATE TABLE users (id int PRIMARY KEY, tenant_id text NOT NULL, name int,
      score numeric, active boolean, bio text, pgfanout_version bigint NOT NULL);
  )sql",
            "tenant8");
  config_path_ = WriteConfig(fmt::format(R"yaml(
  - id: tenant-7
    type: postgres
    tenants: ["7"]
    dsn: "{}"
    backfill: false
  - id: tenant-8
    type: postgres
    tenants: ["8"]
    dsn: "{}"
    backfill: false
)yaml",
                                         pg_->Dsn("tenant7"), pg_->Dsn("tenant8")));
  pg_->Exec("ALTER TABLE users REPLICA IDENTITY FULL; ALTER TABLE teams REPLICA IDENTITY FULL");
  StartDaemon();
  const std::string email = "alice.private@example.com";
  const std::string ssn = "SSN 078-05-1120";
  pg_->Exec(fmt::format("INSERT INTO users (id, tenant_id, name, bio) VALUES (1, '7', '{0}', "
                        "'{1}'), (2, '8', '{0}', 'bio')",
                        email, ssn));
  std::string status;
  ASSERT_TRUE(Eventually([&] {
    RunPgfanout({"status", "--config", config_path_}, &status);
    return status.find("no_ssn") != std::string::npos &&
           status.find("22P02") != std::string::npos;
  })) << status << DaemonLog();
  const std::string address = HttpAddress();
  ASSERT_FALSE(address.empty());
  const std::string json = HttpGet(address, "/status").body;
  EXPECT_NE(json.find("constraint no_ssn"), std::string::npos) << json;
  std::string outputs = json + HttpGet(address, "/metrics").body + status;
  StopDaemon();
  outputs += DaemonLog();
  EXPECT_NE(outputs.find("23514"), std::string::npos) << "the SQLSTATE stays";
  EXPECT_EQ(outputs.find("alice.private"), std::string::npos) << outputs;
  EXPECT_EQ(outputs.find("078-05-1120"), std::string::npos) << outputs;
  EXPECT_EQ(outputs.find("Failing row"), std::string::npos) << outputs;
}

// The state dir and what pgfanout writes hold tenants' rows: the daemon's user's only. A
// state dir made beforehand with the usual 0755 is narrowed to 0700 (and said so); the
// event log's files and the JSONL file are 0600.
TEST_F(SecurityTest, TheStateDirAndTheFilesItWritesAreTheDaemonsUsersOnly) {
  std::filesystem::create_directories(work_dir_ + "/state");
  ::chmod((work_dir_ + "/state").c_str(), 0755);
  StartDaemon();
  pg_->Exec("INSERT INTO teams SELECT i, '7', 'x' FROM generate_series(1, 10) i");
  ExpectSinkEqualsSource();
  StopDaemon();
  auto mode = [](const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 0777;
  };
  EXPECT_EQ(mode(work_dir_ + "/state"), 0700u);
  EXPECT_NE(DaemonLog().find("was readable by other users (mode 755); made it 0700"),
            std::string::npos)
      << DaemonLog();
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(work_dir_ + "/state")) {
    const auto want = e.is_directory() ? 0700u : 0600u;
    EXPECT_EQ(mode(e.path()), want) << e.path();
    files += e.is_regular_file();
  }
  EXPECT_GT(files, 3u) << "the event log's files were looked at";
  EXPECT_EQ(mode(jsonl_path_), 0600u);
  EXPECT_EQ(mode(std::filesystem::path(jsonl_path_).parent_path()), 0700u);
}

TEST_F(SecurityTest, APasswordInTheConfigIsRefusedWithWhereItBelongs) {
  Replace("user=postgres", "user=postgres password=hunter2");
  std::string out;
  EXPECT_EQ(RunPgfanout({"run", "--config", config_path_}, &out), 2) << out;
  EXPECT_NE(out.find("source.dsn: holds a password"), std::string::npos) << out;
  EXPECT_NE(out.find("password_file"), std::string::npos) << out;
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
}

// A CA and a server certificate for "localhost" (openssl, in the test's directory); the
// source serves TLS with it. verify-full to 127.0.0.1 must be refused, for the source and
// for a sink; to localhost it works.
TEST_F(SecurityTest, VerifyFullRefusesACertificateForAnotherHostName) {
  const std::string d = work_dir_ + "/tls";
  std::filesystem::create_directories(d);
  const std::string script = fmt::format(
      "cd {0} && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca "
      "-keyout ca.key -out ca.crt && "
      "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key "
      "-out server.csr && printf 'subjectAltName=DNS:localhost\\n' > ext && "
      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile ext -out server.crt && cp server.crt server.key {1}/data/ && "
      "chown postgres {1}/data/server.crt {1}/data/server.key 2>/dev/null; "
      "chmod 600 {1}/data/server.key",
      d, pg_->dir());
  ASSERT_EQ(RunCommand("(" + script + ") >" + d + "/openssl.log 2>&1"), 0)
      << ReadFile(d + "/openssl.log");
  pg_->Exec("ALTER SYSTEM SET ssl = on");
  pg_->Exec("SELECT pg_reload_conf()");
  ASSERT_TRUE(Eventually([&] { return pg_->Scalar("SHOW ssl") == "on"; }));

  const std::string tls = fmt::format(" sslmode=verify-full sslrootcert={}/ca.crt", d);
  // Wrong host name for the source: refused, no slot made.
  Replace("dsn: \"([^\"]*)\"", "dsn: \"$1" + tls + "\"");
  StartDaemon({}, /*wait=*/false);
  EXPECT_TRUE(Eventually([&] {
    return DaemonLog().find("does not match host name \"127.0.0.1\"") != std::string::npos;
  })) << DaemonLog();
  EXPECT_EQ(pg_->Scalar("SELECT count(*) FROM pg_replication_slots"), "0");
  daemon_.Kill(SIGKILL);
  daemon_.Wait(10s);

  // localhost for the source; a Postgres sink still aimed at 127.0.0.1 is refused alone.
  Replace("host=127.0.0.1", "host=localhost");
  pg_->Exec("CREATE DATABASE tls_target");
  std::ofstream(config_path_, std::ios::app)
      << fmt::format("  - id: tls-sink\n    type: postgres\n    tenants: [\"*\"]\n"
                     "    dsn: \"host=127.0.0.1 port={} dbname=tls_target user=postgres{}\"\n"
                     "    create_tables: true\n",
                     pg_->port(), tls);
  StartDaemon();
  pg_->Exec("INSERT INTO teams VALUES (1, '7', 'over tls')");
  ExpectSinkEqualsSource();
  EXPECT_EQ(pg_->Scalar("SELECT bool_and(ssl)::text FROM pg_stat_ssl s JOIN pg_stat_replication r "
                        "USING (pid)"),
            "true")
      << "the replication connection is not TLS";
  const std::string address = HttpAddress();
  nlohmann::json sink;
  EXPECT_TRUE(Eventually([&] {
    auto s = nlohmann::json::parse(HttpGet(address, "/status").body, nullptr, false);
    if (s.is_discarded()) return false;
    for (const auto& k : s["sinks"]) {
      if (k["id"] == "tls-sink") sink = k;
    }
    return sink.is_object() && sink["last_error"].is_string();
  })) << sink.dump(2);
  EXPECT_NE(sink.value("last_error", "").find("does not match host name"), std::string::npos)
      << sink.dump(2);
  EXPECT_EQ(sink["state"], "retrying");
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing
