// 1,000 tenant sinks into Postgres: ten target databases on two clusters, a schema per
// tenant through the mapping, under a mixed workload from four clients (rows moving
// between tenants), with two kill -9s and one target cluster stopped for 30 s. Every
// tenant's schema must end equal to its source rows, no tenant's row may be anywhere else,
// the slot must keep moving while a target is down, and the daemon must never hold more
// target connections than delivery.max_connections.

#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "test/integration/tailer_fixture.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kTenants = 1000;
constexpr int kDatabases = 10;  // db0 … db9: db0–db4 on cluster A, db5–db9 on cluster B
constexpr int kClients = 4;
constexpr int kMaxConnections = 60;  // under each target cluster's max_connections (100)

std::string Tenant(int i) { return fmt::format("t{}", i); }
int DatabaseOf(int tenant) { return tenant % kDatabases; }

// TCP connections process `pid` holds, established, to 127.0.0.1 at one of `ports`: its
// socket inodes (/proc/<pid>/fd) matched against /proc/net/tcp.
int EstablishedSockets(pid_t pid, const std::set<int>& ports) {
  std::set<std::string> inodes;
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", pid), ec)) {
    const std::string link = std::filesystem::read_symlink(fd.path(), ec).string();
    if (!ec && link.rfind("socket:[", 0) == 0) inodes.insert(link.substr(8, link.size() - 9));
  }
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  // Each socket once: /proc/net/tcp is read in pages, and a socket closed meanwhile can
  // shift the next page so that some lines come twice.
  std::set<std::string> counted;
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
        timeout >> inode;
    const int port = std::stoi(remote.substr(remote.find(':') + 1), nullptr, 16);
    if (state == "01" && ports.count(port) && inodes.count(inode)) counted.insert(inode);
  }
  return static_cast<int>(counted.size());
}

// One workload client: its own connection to the source, transactions of inserts,
// updates, deletes and moves (UPDATE … SET tenant_id) on rows of its own id range, until
// told to stop.
class Client {
 public:
  Client(std::string dsn, int index) : dsn_(std::move(dsn)), index_(index), rng_(index + 1) {}

  void Run(const std::atomic<bool>& stop) {
    PGconn* conn = PQconnectdb(dsn_.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
      error_ = PQerrorMessage(conn);
      PQfinish(conn);
      return;
    }
    while (!stop && error_.empty()) {
      Exec(conn, Transaction());
      ++transactions_;
      std::this_thread::sleep_for(40ms);
    }
    PQfinish(conn);
  }
  const std::string& error() const { return error_; }
  int transactions() const { return transactions_; }
  int moves() const { return moves_; }

 private:
  std::string Transaction() {
    std::string sql = "BEGIN;";
    auto tenant = [&] { return Tenant(static_cast<int>(rng_() % kTenants)); };
    auto own = [&] { return ids_[rng_() % ids_.size()]; };
    for (int n = 1 + static_cast<int>(rng_() % 3); n > 0; --n) {
      const int id = index_ * 1'000'000 + next_++;
      ids_.push_back(id);
      sql += fmt::format(
          "INSERT INTO users (id, tenant_id, name, score) VALUES ({}, '{}', 'n{}', {});", id,
          tenant(), rng_() % 1000, rng_() % 100);
      if (rng_() % 3 == 0) {
        sql += fmt::format("INSERT INTO teams (id, tenant_id, title) VALUES ({}, '{}', 'x{}');", id,
                           tenant(), rng_() % 1000);
      }
    }
    const int kind = static_cast<int>(rng_() % 10);
    if (kind < 4) {
      sql += fmt::format("UPDATE users SET name = 'u{}', score = score + 1 WHERE id = {};",
                         rng_() % 1000, own());
    } else if (kind < 7) {
      ++moves_;
      sql += fmt::format("UPDATE users SET tenant_id = '{}' WHERE id = {};", tenant(), own());
    } else if (kind < 9) {
      const int id = own();
      sql +=
          fmt::format("DELETE FROM users WHERE id = {}; DELETE FROM teams WHERE id = {};", id, id);
    } else {
      sql += fmt::format("UPDATE teams SET title = 'm{}' WHERE id = {};", rng_() % 1000, own());
    }
    return sql + "COMMIT;";
  }

  void Exec(PGconn* conn, const std::string& sql) {
    PGresult* r = PQexec(conn, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) error_ = PQresultErrorMessage(r);
    PQclear(r);
  }

  std::string dsn_;
  int index_;
  std::mt19937 rng_;
  std::vector<int> ids_;
  int next_ = 0;
  int transactions_ = 0;
  int moves_ = 0;
  std::string error_;
};

class TenantsTest : public TailerTest {
 protected:
  void SetUp() override {
    TailerTest::SetUp();
    if (HasFatalFailure()) return;
    // Rows move between tenants: the tenant column must be in the replica identity.
    pg_->Exec("ALTER TABLE users REPLICA IDENTITY FULL; ALTER TABLE teams REPLICA IDENTITY FULL");
    for (auto* target : {&a_, &b_}) {
      *target = PgServer::Start();
      ASSERT_NE(*target, nullptr);
    }
    for (int d = 0; d < kDatabases; ++d) Cluster(d).Exec(fmt::format("CREATE DATABASE db{}", d));
    std::string sinks;
    for (int i = 0; i < kTenants; ++i) {
      // backfill: false: the tables are empty when the sinks start, and 1,000 snapshots of
      // nothing would only slow the test.
      sinks += fmt::format(
          "  - id: s{0}\n    type: postgres\n    tenants: [\"{1}\"]\n    dsn: \"{2}\"\n"
          "    create_tables: true\n    backfill: false\n    tables:\n"
          "      - source: public.users\n        target: {1}.users\n"
          "      - source: public.teams\n        target: {1}.teams\n",
          i, Tenant(i), Cluster(DatabaseOf(i)).Dsn(fmt::format("db{}", DatabaseOf(i))));
    }
    config_path_ =
        WriteConfig(sinks + fmt::format("delivery:\n  max_connections: {}\n", kMaxConnections));
  }

  void TearDown() override {
    StopSampling();
    TailerTest::TearDown();
  }

  PgServer& Cluster(int database) const { return database < kDatabases / 2 ? *a_ : *b_; }

  // Samples the connections the daemon holds to both target clusters until
  // StopSampling(): its TCP sockets to their ports, established (a closed connection's
  // backend may linger a moment in the server's pg_stat_activity; the daemon's socket is
  // gone when it closes), and, for the report, the servers' count of them.
  void StartSampling() {
    sampler_ = std::thread([this] {
      while (!stop_sampling_) {
        const int sockets = EstablishedSockets(daemon_pid_, {a_->port(), b_->port()});
        most_connections_ = std::max(most_connections_.load(), sockets);
        if (++samples_ % 10 == 0) {
          int backends = 0;
          for (auto* cluster : {a_.get(), b_.get()}) {
            auto rows = cluster->TryQuery(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgfanout'",
                "postgres");
            if (rows && !rows->empty() && (*rows)[0][0]) backends += std::stoi(*(*rows)[0][0]);
          }
          most_backends_ = std::max(most_backends_.load(), backends);
        }
        std::this_thread::sleep_for(20ms);
      }
    });
  }
  void StopSampling() {
    stop_sampling_ = true;
    if (sampler_.joinable()) sampler_.join();
  }

  void KillNine() {
    daemon_.Kill(SIGKILL);
    ASSERT_TRUE(daemon_.Wait(30s).has_value());
    StartDaemon();
    daemon_pid_ = daemon_.pid();
  }

  std::string ConfirmedFlush() {
    return pg_->Scalar(
        "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'pgfanout_test'");
  }

  // Rows ("table|id|tenant|values") per tenant: of the source, by its tenant column; of the
  // targets, by the schema they are in (schema "t7" of the database tenant t7 maps to).
  // Rows in a schema of a database its tenant does not map to are listed under "misplaced".
  using RowsByTenant = std::map<std::string, std::multiset<std::string>>;
  RowsByTenant SourceRows() const {
    RowsByTenant out;
    for (const auto& r :
         pg_->Query("SELECT tenant_id, 'users|' || id || '|' || tenant_id || '|' || "
                    "coalesce(name, '-') || '|' || coalesce(score::text, '-') FROM users UNION ALL "
                    "SELECT tenant_id, 'teams|' || id || '|' || tenant_id || '|' || "
                    "coalesce(title, '-') FROM teams")) {
      out[*r[0]].insert(*r[1]);
    }
    return out;
  }
  std::optional<RowsByTenant> TargetRows() const {
    RowsByTenant out;
    for (int d = 0; d < kDatabases; ++d) {
      const std::string db = fmt::format("db{}", d);
      auto tables = Cluster(d).TryQuery(
          "SELECT table_schema, table_name FROM information_schema.tables "
          "WHERE table_schema ~ '^t[0-9]+$' AND table_name IN ('users', 'teams')",
          db);
      if (!tables) return std::nullopt;
      std::string sql;
      for (const auto& t : *tables) {
        const std::string& schema = *t[0];
        const bool users = *t[1] == "users";
        sql += fmt::format("{}SELECT '{}', '{}|' || id || '|' || tenant_id || '|' || {} FROM {}.{}",
                           sql.empty() ? "" : " UNION ALL ", schema, *t[1],
                           users ? "coalesce(name, '-') || '|' || coalesce(score::text, '-')"
                                 : "coalesce(title, '-')",
                           schema, *t[1]);
      }
      if (sql.empty()) continue;
      auto rows = Cluster(d).TryQuery(sql, db);
      if (!rows) return std::nullopt;
      for (const auto& r : *rows) {
        const int tenant = std::stoi(r[0]->substr(1));
        out[DatabaseOf(tenant) == d ? *r[0] : "misplaced"].insert(*r[1]);
      }
    }
    return out;
  }
  // "" when every tenant's schema equals its source rows and nothing is misplaced, else
  // the first differences.
  std::string Diff() const {
    auto target = TargetRows();
    if (!target) return "a target database could not be read";
    const RowsByTenant source = SourceRows();
    std::string diff;
    int shown = 0;
    for (int i = 0; i < kTenants && shown < 5; ++i) {
      const auto s = source.find(Tenant(i));
      const auto t = target->find(Tenant(i));
      const std::multiset<std::string> none;
      const auto& want = s == source.end() ? none : s->second;
      const auto& got = t == target->end() ? none : t->second;
      if (want != got) {
        diff += fmt::format("{}: source has {} rows, its schema {}; ", Tenant(i), want.size(),
                            got.size());
        ++shown;
      }
    }
    if (auto m = target->find("misplaced"); m != target->end()) {
      diff += fmt::format("{} rows in schemas of another database's tenant; ", m->second.size());
    }
    return diff;
  }

  std::unique_ptr<PgServer> a_, b_;
  std::thread sampler_;
  std::atomic<bool> stop_sampling_ = false;
  std::atomic<int> most_connections_ = 0;
  std::atomic<int> samples_ = 0;
  std::atomic<int> most_backends_ = 0;
  std::atomic<pid_t> daemon_pid_ = -1;  // the daemon the sampler looks at
};

TEST_F(TenantsTest, AThousandTenantSinksSurviveKillsAndATargetOutageAndNeverMixTenants) {
  const auto started = Clock::now();
  StartDaemon();
  daemon_pid_ = daemon_.pid();
  StartSampling();
  std::atomic<bool> stop = false;
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::make_unique<Client>(pg_->Dsn(), c));
    threads.emplace_back([&, c] { clients[c]->Run(stop); });
  }
  std::this_thread::sleep_for(5s);
  KillNine();
  std::this_thread::sleep_for(3s);

  // Cluster B (db5 … db9, 500 tenants) goes away for 30 s; the others and the slot go on.
  ASSERT_TRUE(b_->Stop("immediate"));
  const std::string slot_before = ConfirmedFlush();
  std::this_thread::sleep_for(30s);
  const std::string slot_after = ConfirmedFlush();
  EXPECT_EQ(pg_->Scalar(fmt::format("SELECT '{}'::pg_lsn < '{}'::pg_lsn", slot_before, slot_after)),
            "t")
      << "the slot stood still (" << slot_before << ") while a target cluster was down";
  ASSERT_TRUE(b_->StartAgain());
  std::this_thread::sleep_for(3s);
  KillNine();
  std::this_thread::sleep_for(3s);
  stop = true;
  for (auto& t : threads) t.join();
  int transactions = 0, moves = 0;
  for (const auto& c : clients) {
    EXPECT_EQ(c->error(), "");
    transactions += c->transactions();
    moves += c->moves();
  }

  std::string diff;
  const auto deadline = Clock::now() + 180s;
  do {
    diff = Diff();
    if (diff.empty()) break;
    std::this_thread::sleep_for(1s);
  } while (Clock::now() < deadline && daemon_.running());
  const auto settled = Clock::now();
  StopSampling();
  const RowsByTenant source = SourceRows();
  size_t rows = 0;
  for (const auto& [tenant, set] : source) rows += set.size();
  std::cout << fmt::format(
      "[ tenants  ] {} transactions ({} moves) from {} clients over {} tenants, {} rows now; "
      "{} {:.0f} s after start; at most {} target connections open ({} samples; the "
      "servers counted at most {} backends)\n",
      transactions, moves, kClients, source.size(), rows, diff.empty() ? "equal" : "NOT equal",
      std::chrono::duration<double>(settled - started).count(), most_connections_.load(),
      samples_.load(), most_backends_.load());
  EXPECT_EQ(diff, "") << "a tenant's schema differs from its source rows";
  EXPECT_GT(moves, 50) << "too few moves between tenants to prove anything";
  EXPECT_GT(source.size(), kTenants * 9 / 10u) << "the workload reached too few tenants";
  EXPECT_LE(most_connections_.load(), kMaxConnections)
      << "more target connections than delivery.max_connections";
  EXPECT_GT(most_connections_.load(), 0) << "the sampler never saw a connection";
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing
