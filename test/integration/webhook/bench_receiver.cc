// The receiver end of bench/webhook_1m.sh: an HTTP server on 127.0.0.1 (HttpReceiver)
// that verifies each delivery's signature and parses its body as a consumer would, and
// keeps the number of events received in a file the script polls.
//   bench_receiver SECRET_FILE PORT_FILE COUNT_FILE
// Runs until killed.

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "test/integration/webhook/webhook_consumer.h"
#include "test/support/http_receiver.h"

int main(int argc, char** argv) {
  using pgfanout::testing::HttpReceiver;
  using pgfanout::testing::ReceivedRequest;
  using pgfanout::testing::WebhookConsumer;
  if (argc != 4) {
    std::cerr << "usage: bench_receiver SECRET_FILE PORT_FILE COUNT_FILE\n";
    return 2;
  }
  std::string secret;
  std::getline(std::ifstream(argv[1]), secret);
  const std::string count_file = argv[3];
  uint64_t events = 0, bad = 0;
  auto receiver =
      HttpReceiver::Start({.keep_bodies = false, .on_request = [&](const ReceivedRequest& r) {
                             if (!WebhookConsumer::Verify(secret, r).empty()) ++bad;
                             auto body = nlohmann::json::parse(r.body, nullptr, false);
                             if (body.is_discarded())
                               ++bad;
                             else
                               events += body["data"]["events"].size();
                             std::ofstream(count_file + ".tmp") << events << " " << bad << "\n";
                             std::rename((count_file + ".tmp").c_str(), count_file.c_str());
                           }});
  if (!receiver) return 1;
  std::ofstream(argv[2]) << receiver->port() << "\n";
  for (;;) ::pause();
}
