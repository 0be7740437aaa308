#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "test/support/daemon_process.h"

namespace pgfanout::testing {

// A real HA source for the failover tests: one etcd member and PostgreSQL 15 nodes managed
// by Patroni (the Debian packages etcd-server and patroni), on loopback ports, in a temp
// dir. Patroni keeps `slot` as a permanent logical slot (pgoutput, database postgres) on
// every node: made when the cluster bootstraps, copied to replicas and advanced there from
// the leader's position (a replica's copy trails the leader's by up to a loop, ~1 s).
// Runs etcd and Patroni as the postgres OS user when the tests run as root (Postgres
// refuses root). Stopped (replicas first) and deleted by the destructor.
class PatroniCluster {
 public:
  struct Options {
    std::string slot;
    int nodes = 2;
    bool synchronous_mode = true;
  };
  // Starts etcd and every node, and waits until a leader accepts writes, every other node
  // is a replica, the slot exists on each, and the replicas' copies can be advanced; or
  // fails the calling test (ADD_FAILURE) and returns nullptr.
  static std::unique_ptr<PatroniCluster> Start(const Options& options);
  ~PatroniCluster();
  PatroniCluster(const PatroniCluster&) = delete;
  PatroniCluster& operator=(const PatroniCluster&) = delete;

  // Every node's address in one libpq string that finds the writable one
  // (target_session_attrs=read-write), without dbname.
  std::string Dsn() const;
  // One node's libpq string, without dbname.
  std::string NodeDsn(int node) const;
  int size() const { return static_cast<int>(nodes_.size()); }
  const std::string& name(int node) const { return nodes_[node].name; }

  // The node Patroni's REST API calls the primary (GET /primary is 200), if any.
  std::optional<int> Leader() const;
  // Waits until some node is primary and accepts a write; that node, or nullopt after
  // `budget`.
  std::optional<int> WaitWritableLeader(std::chrono::milliseconds budget);
  // Waits until every running node other than the leader is a streaming replica (in
  // synchronous_mode: the synchronous standby) with the slot, its copy confirmed at least
  // to the leader's position when this was called, and with `settled` restarting from a
  // snapshot the replica saved (safe to fail over to; needs the slot decoded on the
  // leader, and checkpoints there hasten it).
  bool WaitReplicasFollow(std::chrono::milliseconds budget, bool settled = true);
  // patronictl switchover to `candidate`; true once it is the writable leader.
  bool Switchover(int candidate, std::chrono::milliseconds budget);
  // The machine is lost: kill -9 of the node's Patroni and its postmaster together.
  void KillNode(int node);
  // Starts a stopped or killed node's Patroni again (it rejoins, with pg_rewind if needed).
  bool StartNode(int node);
  // The node's PostgreSQL data directory.
  const std::string& DataDir(int node) const { return nodes_[node].data_dir; }
  // The node's Patroni log, for a failing test.
  std::string NodeLog(int node) const;

 private:
  struct Node {
    std::string name;
    int pg_port = 0;
    int rest_port = 0;
    std::string config_path;
    std::string log_path;
    std::string data_dir;
    std::unique_ptr<DaemonProcess> patroni;
  };
  PatroniCluster() = default;
  bool StartEtcd();
  void WriteNodeConfig(const Node& node, const Options& options) const;
  int RestStatus(int node, const std::string& path) const;

  std::string dir_;
  std::string slot_;
  bool synchronous_ = true;
  int etcd_client_port_ = 0;
  int etcd_peer_port_ = 0;
  DaemonProcess etcd_;
  std::vector<Node> nodes_;
};

}  // namespace pgfanout::testing
