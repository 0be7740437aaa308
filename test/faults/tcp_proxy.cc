#include "test/faults/tcp_proxy.h"

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <future>

namespace pgfanout::faults {

using boost::asio::ip::tcp;

// One proxied connection: the client's socket, the socket to the target, and a buffer per
// direction.
struct TcpProxy::Pipe {
  explicit Pipe(boost::asio::io_context& io) : client(io), server(io) {}
  tcp::socket client;
  tcp::socket server;
  std::array<char, 64 * 1024> up{};    // client -> server
  std::array<char, 64 * 1024> down{};  // server -> client
  int open_directions = 2;             // each ends with an EOF passed on
  bool closed = false;
  bool silent = false;  // blackholed: what is read is held, not passed on
};

TcpProxy::TcpProxy(int target_port)
    : acceptor_(io_),
      target_(boost::asio::ip::address_v4::loopback(), static_cast<uint16_t>(target_port)),
      work_(io_.get_executor()) {}

std::unique_ptr<TcpProxy> TcpProxy::Start(int target_port) {
  std::unique_ptr<TcpProxy> proxy(new TcpProxy(target_port));
  const tcp::endpoint listen(boost::asio::ip::address_v4::loopback(), 0);
  boost::system::error_code ec;
  proxy->acceptor_.open(listen.protocol(), ec);
  if (!ec) proxy->acceptor_.bind(listen, ec);
  if (!ec) proxy->acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) return nullptr;
  proxy->port_ = proxy->acceptor_.local_endpoint().port();
  proxy->Accept();
  proxy->thread_ = std::thread([p = proxy.get()] { p->io_.run(); });
  return proxy;
}

TcpProxy::~TcpProxy() {
  if (!thread_.joinable()) return;
  OnThread([this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    auto pipes = pipes_;
    for (const auto& p : pipes) Close(p, /*reset=*/false);
    held_.clear();
    work_.reset();  // run() returns once the aborted operations have completed
    return 0;
  });
  thread_.join();
}

int TcpProxy::OnThread(std::function<int()> f) {
  std::promise<int> done;
  auto result = done.get_future();
  boost::asio::post(io_, [&] { done.set_value(f()); });
  return result.get();
}

void TcpProxy::Accept() {
  auto pipe = std::make_shared<Pipe>(io_);
  acceptor_.async_accept(pipe->client, [this, pipe](boost::system::error_code ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    if (!ec) {
      pipes_.insert(pipe);
      pipe->server.async_connect(target_, [this, pipe](boost::system::error_code ec) {
        if (pipe->closed) return;
        // A refused connection reaches the client as a reset, much as it would directly.
        if (ec) return Close(pipe, /*reset=*/true);
        boost::system::error_code ignored;
        pipe->client.set_option(tcp::no_delay(true), ignored);
        pipe->server.set_option(tcp::no_delay(true), ignored);
        Pump(pipe, /*upstream=*/true);
        Pump(pipe, /*upstream=*/false);
      });
    }
    Accept();
  });
}

void TcpProxy::Pump(const std::shared_ptr<Pipe>& pipe, bool upstream) {
  auto& from = upstream ? pipe->client : pipe->server;
  auto& buf = upstream ? pipe->up : pipe->down;
  from.async_read_some(
      boost::asio::buffer(buf), [this, pipe, upstream](boost::system::error_code ec, size_t n) {
        // What was read (data, an EOF or an error) is passed on now, or once the blackhole
        // lifts: while it lasts nothing crosses, not even a close.
        auto forward = [this, pipe, upstream, ec, n] {
          if (pipe->closed) return;
          auto& to = upstream ? pipe->server : pipe->client;
          if (ec == boost::asio::error::eof) {
            boost::system::error_code ignored;
            to.shutdown(tcp::socket::shutdown_send, ignored);
            if (--pipe->open_directions == 0) Close(pipe, /*reset=*/false);
            return;
          }
          if (ec) return Close(pipe, /*reset=*/true);
          auto& buf = upstream ? pipe->up : pipe->down;
          boost::asio::async_write(to, boost::asio::buffer(buf.data(), n),
                                   [this, pipe, upstream](boost::system::error_code ec, size_t) {
                                     if (pipe->closed) return;
                                     if (ec) return Close(pipe, /*reset=*/true);
                                     Pump(pipe, upstream);
                                   });
        };
        if (pipe->silent) {
          held_.push_back(std::move(forward));
        } else {
          forward();
        }
      });
}

void TcpProxy::Close(const std::shared_ptr<Pipe>& pipe, bool reset) {
  if (pipe->closed) return;
  pipe->closed = true;
  for (tcp::socket* s : {&pipe->client, &pipe->server}) {
    boost::system::error_code ignored;
    // SO_LINGER with a zero timeout: close() sends a RST and drops unsent data.
    if (reset && s->is_open()) s->set_option(boost::asio::socket_base::linger(true, 0), ignored);
    s->close(ignored);
  }
  pipes_.erase(pipe);
}

int TcpProxy::ResetAll() {
  return OnThread([this] {
    auto pipes = pipes_;
    for (const auto& p : pipes) Close(p, /*reset=*/true);
    return static_cast<int>(pipes.size());
  });
}

void TcpProxy::SetBlackhole(bool on) {
  OnThread([this, on] {
    for (const auto& p : pipes_) p->silent = on;
    if (!on) {
      auto held = std::move(held_);
      held_.clear();
      for (auto& f : held) f();
    }
    return 0;
  });
}

int TcpProxy::connections() {
  return OnThread([this] { return static_cast<int>(pipes_.size()); });
}

}  // namespace pgfanout::faults
