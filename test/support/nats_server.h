#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pgfanout::testing {

// A message as a JetStream stream stores it ($JS.API.STREAM.MSG.GET).
struct StoredMessage {
  uint64_t seq = 0;
  std::string subject;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string msg_id;  // the Nats-Msg-Id header, "" when absent
  std::string data;
};

// A real `nats-server -js` (/usr/sbin/nats-server, Debian's 2.9) for the NATS sink's tests:
// a free loopback port, its store in a temp dir, its log beside it. Stop() and StartAgain()
// keep the port and the store (a restart under load). StartCluster() makes a JetStream
// cluster of N nodes on loopback (server names n1…nN, one cluster, full routes, a store each)
// and waits for its meta leader. Talks to the server with pgfanout's own client
// (src/sinks/nats/nats_client.h). Killed and deleted by the destructor.
class NatsServer {
 public:
  struct Options {
    std::string server_name = "n1";
    std::string user;  // with password: clients must authenticate
    std::string password;
    std::vector<std::string> config_lines;  // extra nats-server.conf lines
    // Cluster membership (StartCluster fills these).
    std::string cluster_name;
    int cluster_port = 0;
    std::vector<int> route_ports;
  };

  // Starts a server and waits until JetStream answers; or fails the calling test
  // (ADD_FAILURE) and returns nullptr.
  static std::unique_ptr<NatsServer> Start(const Options& options);
  static std::unique_ptr<NatsServer> Start() { return Start(Options{}); }
  // `nodes` servers in one JetStream cluster, started together; returns when every node's
  // JetStream answers (a meta leader was elected). Empty (and ADD_FAILURE) on failure.
  static std::vector<std::unique_ptr<NatsServer>> StartCluster(int nodes);
  ~NatsServer();
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  int port() const { return port_; }
  std::string Url() const;
  const std::string& log_path() const { return log_path_; }
  std::string LogTail(size_t bytes = 4000) const;
  bool running() const { return pid_ > 0; }

  // Sends `signal` (SIGTERM: a clean shutdown; SIGKILL: a crash) and waits for the exit.
  bool Stop(int signal = 15);
  // Starts again on the same port and store; waits until it accepts connections (and, with
  // `wait_jetstream`, until JetStream answers).
  bool StartAgain(bool wait_jetstream = true);

  // A JetStream API request ($JS.API.…) through this server; the response's JSON, or
  // nullopt with `error` set (no connection, no reply, not JSON).
  std::optional<nlohmann::json> Api(const std::string& subject, const std::string& payload = "",
                                    std::string* error = nullptr) const;
  // Publishes one message with headers and returns the reply (a JetStream ack or error).
  std::optional<nlohmann::json> Publish(
      const std::string& subject, const std::vector<std::pair<std::string, std::string>>& headers,
      const std::string& data, std::string* error = nullptr) const;
  // The messages of `stream` with sequence > `after_seq`, in sequence order (pipelined
  // MSG.GET requests); nullopt with `error` when the stream cannot be read.
  std::optional<std::vector<StoredMessage>> ReadStream(const std::string& stream,
                                                       uint64_t after_seq = 0,
                                                       std::string* error = nullptr) const;

 private:
  NatsServer() = default;
  bool Spawn();
  bool WaitReady(bool wait_jetstream, std::chrono::seconds timeout);

  Options options_;
  std::string dir_;
  std::string log_path_;
  std::string config_path_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace pgfanout::testing
