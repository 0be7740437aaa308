#include "test/support/patroni_cluster.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "test/support/http_client.h"
#include "test/support/pg_server.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";

// Starts `binary args…` as the postgres OS user when running as root. setpriv changes the
// ids and execs (no child of its own), so the DaemonProcess's pid is the program's.
bool StartAsPostgres(DaemonProcess& process, const std::string& binary,
                     std::vector<std::string> args, const std::string& log_path) {
  if (geteuid() != 0) return process.Start(args, log_path, {}, binary);
  args.insert(args.begin(), {"--reuid=postgres", "--regid=postgres", "--init-groups", binary});
  return process.Start(args, log_path, {}, "/usr/bin/setpriv");
}

template <class Pred>
bool Eventually(Pred done, std::chrono::milliseconds budget) {
  const auto deadline = Clock::now() + budget;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(200ms);
  }
  return true;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::unique_ptr<PatroniCluster> PatroniCluster::Start(const Options& options) {
  std::unique_ptr<PatroniCluster> c(new PatroniCluster());
  c->dir_ = MakePostgresDir("pgfanout-test-patroni");
  if (c->dir_.empty()) return nullptr;
  c->slot_ = options.slot;
  c->synchronous_ = options.synchronous_mode;
  if (!c->StartEtcd()) return nullptr;
  for (int i = 0; i < options.nodes; ++i) {
    Node n;
    n.name = fmt::format("n{}", i + 1);
    n.pg_port = FreePort();
    n.rest_port = FreePort();
    n.config_path = fmt::format("{}/{}.yml", c->dir_, n.name);
    n.log_path = fmt::format("{}/{}.log", c->dir_, n.name);
    n.data_dir = fmt::format("{}/{}", c->dir_, n.name);
    n.patroni = std::make_unique<DaemonProcess>();
    c->WriteNodeConfig(n, options);
    c->nodes_.push_back(std::move(n));
  }
  // The first node bootstraps the cluster; the others clone it once it leads.
  if (!c->StartNode(0)) return nullptr;
  if (!c->WaitWritableLeader(60s)) {
    ADD_FAILURE() << "Patroni node n1 did not bootstrap a writable primary in 60 s:\n"
                  << c->NodeLog(0);
    return nullptr;
  }
  // Move the slot on the leader once, before the replicas copy it: a replica's first copy
  // of a slot can point at WAL its base backup lacks, and Patroni copies it again only
  // after an advance there fails (seen with Patroni 3.0.2). Patroni makes the slot a loop
  // after it leads. Nothing reads the slot before pgfanout adopts it.
  auto primary = PgServer::Attach(c->NodeDsn(0));
  if (!Eventually(
          [&] {
            return primary
                ->TryQuery(fmt::format("SELECT pg_replication_slot_advance('{}', "
                                       "pg_current_wal_lsn())",
                                       c->slot_),
                           "postgres")
                .has_value();
          },
          30s)) {
    ADD_FAILURE() << "Patroni did not make slot " << c->slot_ << " on n1 in 30 s:\n"
                  << c->NodeLog(0);
    return nullptr;
  }
  for (int i = 1; i < options.nodes; ++i) {
    if (!c->StartNode(i)) return nullptr;
  }
  // Nothing decodes the slot yet, so no copy can settle.
  if (!c->WaitReplicasFollow(90s, /*settled=*/false)) {
    std::string logs;
    for (int i = 0; i < c->size(); ++i) logs += c->NodeLog(i);
    ADD_FAILURE() << "Patroni replicas did not follow with the slot in 90 s:\n" << logs;
    return nullptr;
  }
  return c;
}

bool PatroniCluster::StartEtcd() {
  etcd_client_port_ = FreePort();
  etcd_peer_port_ = FreePort();
  const std::string client = fmt::format("http://127.0.0.1:{}", etcd_client_port_);
  const std::string peer = fmt::format("http://127.0.0.1:{}", etcd_peer_port_);
  if (!StartAsPostgres(
          etcd_, "/usr/bin/etcd",
          {"--name", "e1", "--data-dir", dir_ + "/etcd", "--listen-client-urls", client,
           "--advertise-client-urls", client, "--listen-peer-urls", peer,
           "--initial-advertise-peer-urls", peer, "--initial-cluster", "e1=" + peer,
           "--initial-cluster-state", "new", "--initial-cluster-token", "pgfanout-test"},
          dir_ + "/etcd.log")) {
    ADD_FAILURE() << "cannot start etcd";
    return false;
  }
  const std::string address = fmt::format("127.0.0.1:{}", etcd_client_port_);
  if (!Eventually([&] { return HttpGet(address, "/health").status == 200; }, 30s)) {
    ADD_FAILURE() << "etcd did not become healthy in 30 s:\n" << ReadFile(dir_ + "/etcd.log");
    return false;
  }
  return true;
}

void PatroniCluster::WriteNodeConfig(const Node& n, const Options& options) const {
  // ttl 10, loop_wait 1, retry_timeout 4: a lost leader is replaced in ~10 s. Trust on
  // loopback: the tests connect as postgres without a password.
  std::ofstream(n.config_path) << fmt::format(
      R"yaml(scope: pgfanout-test
namespace: /service/
name: {name}
log:
  level: INFO
restapi:
  listen: 127.0.0.1:{rest}
  connect_address: 127.0.0.1:{rest}
etcd3:
  hosts: 127.0.0.1:{etcd}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    synchronous_mode: {sync}
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: logical
        max_replication_slots: 10
        max_wal_senders: 10
        hot_standby: "on"
        hot_standby_feedback: "on"
        wal_keep_size: 256MB
        wal_log_hints: "on"
        shared_buffers: 64MB
    slots:
      {slot}:
        type: logical
        database: postgres
        plugin: pgoutput
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
    - auth-local: trust
    - auth-host: trust
postgresql:
  listen: 127.0.0.1:{pg}
  connect_address: 127.0.0.1:{pg}
  data_dir: {data}
  bin_dir: {bin}
  pgpass: {dir}/{name}.pgpass
  authentication:
    superuser:
      username: postgres
      password: postgres
    replication:
      username: postgres
      password: postgres
    rewind:
      username: postgres
      password: postgres
  parameters:
    unix_socket_directories: {dir}
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
)yaml",
      fmt::arg("name", n.name), fmt::arg("rest", n.rest_port), fmt::arg("etcd", etcd_client_port_),
      fmt::arg("sync", options.synchronous_mode), fmt::arg("slot", options.slot),
      fmt::arg("pg", n.pg_port), fmt::arg("data", n.data_dir), fmt::arg("bin", kBinDir),
      fmt::arg("dir", dir_));
}

bool PatroniCluster::StartNode(int node) {
  Node& n = nodes_[node];
  if (n.patroni->running()) return true;
  if (!StartAsPostgres(*n.patroni, "/usr/bin/patroni", {n.config_path}, n.log_path)) {
    ADD_FAILURE() << "cannot start patroni for " << n.name;
    return false;
  }
  return true;
}

PatroniCluster::~PatroniCluster() {
  // Replicas first: a leader stopped first would hand over to them.
  const std::optional<int> leader = Leader();
  for (int i = 0; i < size(); ++i) {
    if (leader && i == *leader) continue;
    nodes_[i].patroni->Kill(SIGTERM);
  }
  for (int i = 0; i < size(); ++i) {
    if (leader && i == *leader) continue;
    if (!nodes_[i].patroni->Wait(30s)) nodes_[i].patroni->Kill(SIGKILL);
  }
  if (leader) {
    nodes_[*leader].patroni->Kill(SIGTERM);
    if (!nodes_[*leader].patroni->Wait(30s)) nodes_[*leader].patroni->Kill(SIGKILL);
  }
  // A postmaster whose Patroni was killed runs on by itself.
  for (const auto& n : nodes_) {
    RunCommand(AsPostgres(
        fmt::format("{}/pg_ctl -D {} -m immediate stop >/dev/null 2>&1", kBinDir, n.data_dir)));
  }
  etcd_.Kill(SIGTERM);
  if (!etcd_.Wait(10s)) etcd_.Kill(SIGKILL);
  if (!dir_.empty() && std::getenv("PGFANOUT_KEEP_TEST_DIRS") == nullptr &&
      !::testing::Test::HasFailure()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PatroniCluster::Dsn() const {
  std::string hosts, ports;
  for (const auto& n : nodes_) {
    hosts += (hosts.empty() ? "" : ",") + std::string("127.0.0.1");
    ports += (ports.empty() ? "" : ",") + std::to_string(n.pg_port);
  }
  return fmt::format(
      "host={} port={} user=postgres target_session_attrs=read-write connect_timeout=2", hosts,
      ports);
}

std::string PatroniCluster::NodeDsn(int node) const {
  return fmt::format("host=127.0.0.1 port={} user=postgres connect_timeout=2",
                     nodes_[node].pg_port);
}

int PatroniCluster::RestStatus(int node, const std::string& path) const {
  return HttpGet(fmt::format("127.0.0.1:{}", nodes_[node].rest_port), path).status;
}

std::optional<int> PatroniCluster::Leader() const {
  for (int i = 0; i < size(); ++i) {
    if (RestStatus(i, "/primary") == 200) return i;
  }
  return std::nullopt;
}

std::optional<int> PatroniCluster::WaitWritableLeader(std::chrono::milliseconds budget) {
  std::optional<int> leader;
  Eventually(
      [&] {
        leader = Leader();
        if (!leader) return false;
        // A write on the leader itself (a synchronous standby in flux can hold commits).
        auto node = PgServer::Attach(NodeDsn(*leader) + " options='-c statement_timeout=2000'");
        return node->TryQuery("CREATE TEMP TABLE probe (x int)", "postgres").has_value();
      },
      budget);
  return leader;
}

bool PatroniCluster::WaitReplicasFollow(std::chrono::milliseconds budget, bool settled) {
  const auto deadline = Clock::now() + budget;
  auto leader = WaitWritableLeader(budget);
  if (!leader) return false;
  auto primary = PgServer::Attach(NodeDsn(*leader));
  // The slot's position on the leader now; each replica's copy must reach it.
  std::string want;
  const bool read = Eventually(
      [&] {
        auto r =
            primary->TryQuery(fmt::format("SELECT confirmed_flush_lsn FROM pg_replication_slots "
                                          "WHERE slot_name = '{}'",
                                          slot_),
                              "postgres");
        if (!r || r->empty() || !(*r)[0][0]) return false;
        want = *(*r)[0][0];
        return true;
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  if (!read) return false;
  return Eventually(
      [&] {
        for (int i = 0; i < size(); ++i) {
          if (i == *leader || !nodes_[i].patroni->running()) continue;
          // In synchronous_mode a switchover may only go to the synchronous standby.
          if (RestStatus(i, synchronous_ ? "/sync" : "/replica") != 200) return false;
          auto node = PgServer::Attach(NodeDsn(i));
          auto got = node->TryQuery(
              fmt::format("SELECT confirmed_flush_lsn >= '{}' FROM pg_replication_slots "
                          "WHERE slot_name = '{}'",
                          want, slot_),
              "postgres");
          if (!got || got->empty() || (*got)[0][0] != std::optional<std::string>("t")) {
            return false;
          }
          // A copy Patroni just made (from the slot's state file) restarts without a saved
          // snapshot until the replica's own decoding has been consistent and moved it;
          // failing over before that loses transactions (pgfanout refuses such a copy). That
          // takes a few of the running-transaction records a checkpoint logs (the
          // background writer logs one every 15 s under load): one each poll.
          if (settled && !SlotRestartsFromSavedSnapshot(*node, slot_)) {
            primary->TryQuery("CHECKPOINT", "postgres");
            return false;
          }
        }
        return true;
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

bool PatroniCluster::Switchover(int candidate, std::chrono::milliseconds budget) {
  auto leader = Leader();
  if (!leader) {
    ADD_FAILURE() << "switchover: no leader";
    return false;
  }
  const int rc = RunCommand(AsPostgres(fmt::format(
      "patronictl -c {} switchover --leader {} --candidate {} --force >>{}/patronictl.log 2>&1",
      nodes_[*leader].config_path, nodes_[*leader].name, nodes_[candidate].name, dir_)));
  if (rc != 0) {
    ADD_FAILURE() << "patronictl switchover failed:\n" << ReadFile(dir_ + "/patronictl.log");
    return false;
  }
  return Eventually(
      [&] {
        auto now = WaitWritableLeader(1s);
        return now && *now == candidate;
      },
      budget);
}

void PatroniCluster::KillNode(int node) {
  Node& n = nodes_[node];
  const std::string pid_text = ReadFile(n.data_dir + "/postmaster.pid");
  n.patroni->Kill(SIGKILL);
  n.patroni->Wait(10s);
  if (!pid_text.empty()) {
    const pid_t postmaster = static_cast<pid_t>(std::atol(pid_text.c_str()));
    if (postmaster > 0) ::kill(postmaster, SIGKILL);
  }
}

std::string PatroniCluster::NodeLog(int node) const {
  const std::string log = ReadFile(nodes_[node].log_path);
  return fmt::format("---- patroni {} ({}) ----\n{}\n", nodes_[node].name, nodes_[node].log_path,
                     log.substr(log.size() > 8000 ? log.size() - 8000 : 0));
}

}  // namespace pgfanout::testing
