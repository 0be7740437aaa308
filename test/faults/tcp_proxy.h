#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace pgfanout::faults {

// A TCP proxy on 127.0.0.1 for network faults between the daemon and the source: it listens
// on a free loopback port and forwards every connection it accepts to 127.0.0.1:<target>.
// Byte streams pass through unchanged; a close on one side (FIN) is passed on as a close, a
// reset as a reset. One thread of its own runs the forwarding; the methods below may be
// called from any thread and return once the proxy has done what they ask.
class TcpProxy {
 public:
  // Starts the proxy, or returns nullptr when it cannot listen.
  static std::unique_ptr<TcpProxy> Start(int target_port);
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;
  // Closes the listener and every connection, and joins the thread.
  ~TcpProxy();

  int port() const { return port_; }

  // Closes every live connection abruptly on both sides (SO_LINGER 0, so each peer gets a
  // RST and whatever was in flight is gone), as a middlebox dropping its state would.
  // Returns how many connections it cut; new connections are accepted as before.
  int ResetAll();

  // On: the connections live now go silent, as when a middlebox loses their state or the
  // path breaks, and neither end is told. They stay open but no byte, close or reset passes
  // in either direction; the kernel holds what was sent, and TCP flow control stalls the
  // senders. Connections made afterwards pass as usual. Off: what was held flows on, in
  // order, as TCP retransmission would deliver it once the path heals.
  void SetBlackhole(bool on);

  // Live proxied connections.
  int connections();

 private:
  struct Pipe;
  explicit TcpProxy(int target_port);

  void Accept();
  // Forwards one direction of `pipe` (upstream: client to server) until it closes.
  void Pump(const std::shared_ptr<Pipe>& pipe, bool upstream);
  void Close(const std::shared_ptr<Pipe>& pipe, bool reset);
  // Runs `f` on the proxy's thread and waits for its result.
  int OnThread(std::function<int()> f);

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::ip::tcp::endpoint target_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  int port_ = 0;
  // Only touched on the proxy's thread.
  std::set<std::shared_ptr<Pipe>> pipes_;
  std::vector<std::function<void()>> held_;  // work held back by the blackhole
  std::thread thread_;
};

}  // namespace pgfanout::faults
