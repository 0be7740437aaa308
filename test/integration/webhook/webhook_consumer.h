#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "test/integration/sink_e2e_fixture.h"
#include "test/support/http_receiver.h"

namespace pgfanout::testing {

// What a careful webhook consumer does with pgfanout's deliveries, one state per
// receiving path (one sink): verifies the Standard Webhooks signature with its own HMAC
// (OpenSSL's one-shot HMAC(), not the sink's code), skips an event whose id it has
// applied before (the idempotency key), applies the rest to an in-memory table per
// source table, each row versioned by the commit LSN of its last change, and keeps
// unchanged TOAST values from the row it holds. Reads both envelopes (pgfanout, and
// Debezium: an array or one bare event).
//
// Thread-safe: the receiver calls Receive() from its connection threads.
class WebhookConsumer {
 public:
  struct Stats {
    size_t requests = 0;
    size_t bad_signatures = 0;          // missing, wrong, or a timestamp off by more than 5 minutes
    size_t malformed = 0;               // a body or event it could not read
    size_t events = 0;                  // applied
    size_t duplicates = 0;              // raw re-deliveries of an id already applied
    size_t conflicting_duplicates = 0;  // a re-delivered id whose event differs
    size_t out_of_order = 0;            // a new id below the highest applied one
    std::vector<std::string> problems;  // the first few, for failure messages
  };

  explicit WebhookConsumer(std::string secret) : secret_(std::move(secret)) {}

  void Receive(const ReceivedRequest& request);

  Stats stats(const std::string& path) const;
  // The rows applied at `path` for `table`, keyed and valued as SinkE2ETest compares them
  // (`columns` in order); only tenants in `tenants` (every tenant when empty).
  SinkE2ETest::Rows Rows(const std::string& path, const std::string& table,
                         const std::vector<std::string>& columns,
                         const std::set<std::string>& tenants) const;

  // Standard Webhooks verification of one request; "" when it verifies, else why not.
  static std::string Verify(const std::string& secret, const ReceivedRequest& request);

 private:
  struct Row {
    std::map<std::string, nlohmann::json> values;  // column -> value
    uint64_t version = 0;
  };
  struct State {
    Stats stats;
    std::map<std::string, std::string> applied;                // event id -> its JSON text
    std::pair<uint64_t, uint32_t> highest{0, 0};               // highest applied id (LSN, ordinal)
    std::map<std::string, std::map<std::string, Row>> tables;  // table -> key -> row
  };

  void Apply(State& s, const nlohmann::json& event, bool debezium);
  void Problem(State& s, std::string what);

  std::string secret_;
  mutable std::mutex mu_;
  std::map<std::string, State> states_;
};

}  // namespace pgfanout::testing
