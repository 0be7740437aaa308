#include "test/support/http_receiver.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>

namespace pgfanout::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

struct HttpReceiver::Impl {
  boost::asio::io_context io;
  tcp::acceptor acceptor{io};
  ssl::context tls{ssl::context::tls_server};

  // One connection: read a request, record it, answer, until the peer closes.
  template <class Stream>
  static void Serve(HttpReceiver& self, Stream& stream) {
    beast::flat_buffer buffer;
    while (!self.stopping_) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(512 * 1024 * 1024);
      beast::error_code ec;
      http::read(stream, buffer, parser, ec);
      if (ec) return;
      auto req = parser.release();
      ReceivedRequest got;
      got.method = std::string(req.method_string());
      const std::string target(req.target());
      got.path = target.substr(0, target.find('?'));
      for (const auto& f : req) {
        std::string name(f.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        got.headers[name] = std::string(f.value());
      }
      got.body = std::move(req.body());
      got.at = std::chrono::steady_clock::now();
      Answer answer = self.Next(got.path);
      got.answered = answer.status;
      if (answer.status >= 200 && answer.status < 300 && self.options_.on_request) {
        std::lock_guard apply(self.apply_mu_);
        self.options_.on_request(got);
      }
      if (!self.options_.keep_bodies) got.body.clear();
      {
        std::lock_guard lock(self.mu_);
        self.requests_.push_back(std::move(got));
      }
      self.cv_.notify_all();
      if (answer.delay.count() > 0) {
        std::unique_lock lock(self.mu_);
        self.cv_.wait_for(lock, answer.delay, [&] { return self.stopping_.load(); });
        if (self.stopping_) return;
      }
      http::response<http::string_body> res{static_cast<http::status>(answer.status),
                                            req.version()};
      res.set(http::field::server, "pgfanout-test-receiver");
      res.set(http::field::content_type, "text/plain");
      for (const auto& [k, v] : answer.headers) res.set(k, v);
      res.body() = answer.body;
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      http::write(stream, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }
};

namespace {

bool MakeCertificates(const std::string& dir) {
  std::ofstream(dir + "/ext.cnf") << "subjectAltName=DNS:localhost\n"
                                     "basicConstraints=CA:FALSE\n";
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string cmd =
      "cd " + dir + " && openssl req -x509" + ec +
      " -keyout ca.key -out ca.pem -days 2 -subj '/CN=pgfanout test CA' && "
      "openssl req" +
      ec +
      " -keyout server.key -out server.csr -subj '/CN=localhost' && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "-out server.pem -days 2 -extfile ext.cnf";
  return std::system((cmd + " >openssl.log 2>&1").c_str()) == 0;
}

}  // namespace

std::unique_ptr<HttpReceiver> HttpReceiver::Start(Options options) {
  std::unique_ptr<HttpReceiver> self(new HttpReceiver());
  self->options_ = std::move(options);
  self->impl_ = std::make_unique<Impl>();
  Impl& impl = *self->impl_;
  if (self->options_.tls) {
    char tmpl[] = "/tmp/pgfanout-receiver-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
      return nullptr;
    }
    self->dir_ = tmpl;
    if (!MakeCertificates(self->dir_)) {
      ADD_FAILURE() << "openssl could not make the test certificates (is it installed?); see "
                    << self->dir_ << "/openssl.log";
      return nullptr;
    }
    self->ca_file_ = self->dir_ + "/ca.pem";
    beast::error_code ec;
    impl.tls.use_certificate_chain_file(self->dir_ + "/server.pem", ec);
    if (!ec) impl.tls.use_private_key_file(self->dir_ + "/server.key", ssl::context::pem, ec);
    if (ec) {
      ADD_FAILURE() << "loading the test certificate: " << ec.message();
      return nullptr;
    }
  }
  beast::error_code ec;
  const tcp::endpoint at(boost::asio::ip::make_address("127.0.0.1"), 0);
  impl.acceptor.open(at.protocol(), ec);
  if (!ec) impl.acceptor.bind(at, ec);
  if (!ec) impl.acceptor.listen(64, ec);
  if (ec) {
    ADD_FAILURE() << "the receiver cannot listen: " << ec.message();
    return nullptr;
  }
  self->port_ = impl.acceptor.local_endpoint().port();
  HttpReceiver* raw = self.get();
  self->acceptor_thread_ = std::thread([raw] { raw->AcceptLoop(); });
  return self;
}

HttpReceiver::~HttpReceiver() {
  stopping_ = true;
  cv_.notify_all();
  if (impl_) {
    // Wakes the blocked accept(); then every connection's blocked read.
    ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
    if (acceptor_thread_.joinable()) acceptor_thread_.join();
    {
      std::lock_guard lock(mu_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : connections_) t.join();
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void HttpReceiver::AcceptLoop() {
  while (!stopping_) {
    tcp::socket socket(impl_->io);
    beast::error_code ec;
    impl_->acceptor.accept(socket, ec);
    if (stopping_) return;
    if (ec) continue;
    std::lock_guard lock(mu_);
    open_fds_.push_back(socket.native_handle());
    connections_.emplace_back([this, s = std::move(socket)]() mutable {
      const int fd = s.native_handle();
      if (options_.tls) {
        beast::ssl_stream<tcp::socket&> stream(s, impl_->tls);
        beast::error_code hec;
        stream.handshake(ssl::stream_base::server, hec);
        if (!hec) Impl::Serve(*this, stream);
      } else {
        Impl::Serve(*this, s);
      }
      // Forget the fd before the socket closes it: the destructor must never shut down a
      // number the process has reused for something else.
      std::lock_guard forget(mu_);
      std::erase(open_fds_, fd);
    });
  }
}

HttpReceiver::Answer HttpReceiver::Next(const std::string& path) {
  std::lock_guard lock(mu_);
  for (auto it = script_.begin(); it != script_.end(); ++it) {
    if (!it->path.empty() && it->path != path) continue;
    Answer a = it->answer;
    if (--it->left <= 0) script_.erase(it);
    return a;
  }
  return Answer{};
}

std::string HttpReceiver::Url(const std::string& path) const {
  return (options_.tls ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(port_) + path;
}

void HttpReceiver::AnswerNext(int n, Answer answer, const std::string& path) {
  std::lock_guard lock(mu_);
  script_.push_back({.path = path, .left = n, .answer = std::move(answer)});
}

std::vector<ReceivedRequest> HttpReceiver::Requests(const std::string& path) const {
  std::lock_guard lock(mu_);
  std::vector<ReceivedRequest> out;
  for (const auto& r : requests_) {
    if (path.empty() || r.path == path) out.push_back(r);
  }
  return out;
}

size_t HttpReceiver::Count(const std::string& path) const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& r : requests_) n += path.empty() || r.path == path;
  return n;
}

bool HttpReceiver::WaitFor(size_t n, std::chrono::milliseconds timeout,
                           const std::string& path) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    size_t c = 0;
    for (const auto& r : requests_) c += path.empty() || r.path == path;
    return c >= n;
  });
}

}  // namespace pgfanout::testing
