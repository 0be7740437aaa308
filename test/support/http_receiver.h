#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace pgfanout::testing {

// One request as the receiver got it.
struct ReceivedRequest {
  std::string method;
  std::string path;                            // the target without its query
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;                            // empty when bodies are not kept
  unsigned answered = 0;                       // the status it was given
  std::chrono::steady_clock::time_point at;

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

// A real HTTP/1.1 server on a loopback port for the webhook sink's tests (Boost.Beast,
// one thread per connection, keep-alive). It records every request and answers 200,
// unless told to answer the next requests otherwise (a status, a delay longer than the
// sender's timeout, headers such as Retry-After). With `tls` it serves HTTPS with a
// certificate for "localhost" (no IP in it) signed by a CA made with the openssl command
// in a temp dir: a client trusting ca_file() verifies https://localhost:<port>, and
// https://127.0.0.1:<port> fails host name verification.
//
// Threads: the methods may be called from any thread; `on_request` runs on a connection's
// thread, one request at a time (serialised), before the answer is written.
class HttpReceiver {
 public:
  struct Options {
    bool tls = false;
    bool keep_bodies = true;  // false: bodies go to on_request only (a benchmark)
    // Called with each request that is answered 2xx, before the answer: what a consumer
    // does with a delivery it acknowledges.
    std::function<void(const ReceivedRequest&)> on_request;
  };
  struct Answer {
    unsigned status = 200;
    std::chrono::milliseconds delay{0};  // before answering
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
  };

  // Starts listening on 127.0.0.1 (a free port), or fails the calling test and returns
  // nullptr.
  static std::unique_ptr<HttpReceiver> Start(Options options);
  static std::unique_ptr<HttpReceiver> Start() { return Start(Options{}); }
  ~HttpReceiver();  // closes every connection and joins the threads
  HttpReceiver(const HttpReceiver&) = delete;
  HttpReceiver& operator=(const HttpReceiver&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:<port><path>", or with tls "https://localhost:<port><path>".
  std::string Url(const std::string& path) const;
  // PEM of the CA that signed the TLS certificate ("" without tls).
  const std::string& ca_file() const { return ca_file_; }

  // The next `n` requests to `path` ("" for any path) get `answer`; after them, 200.
  void AnswerNext(int n, Answer answer, const std::string& path = "");
  // Requests received so far to `path` ("" for all), in arrival order.
  std::vector<ReceivedRequest> Requests(const std::string& path = "") const;
  size_t Count(const std::string& path = "") const;
  // Waits until Count(path) >= n; false after `timeout`.
  bool WaitFor(size_t n, std::chrono::milliseconds timeout, const std::string& path = "") const;

 private:
  HttpReceiver() = default;
  struct Impl;
  void AcceptLoop();
  Answer Next(const std::string& path);

  Options options_;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::string dir_;
  std::string ca_file_;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_thread_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::mutex apply_mu_;  // serialises on_request
  std::vector<ReceivedRequest> requests_;
  struct Scripted {
    std::string path;
    int left = 0;
    Answer answer;
  };
  std::deque<Scripted> script_;
  std::vector<std::thread> connections_;
  std::vector<int> open_fds_;
};

}  // namespace pgfanout::testing
