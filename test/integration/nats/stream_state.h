#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "src/core/event_id.h"
#include "test/integration/sink_e2e_fixture.h"
#include "test/support/nats_server.h"

namespace pgfanout::testing {

// What a consumer of a NATS sink's stream rebuilds from it: every message, read back in
// stream order, applied per table to an in-memory table keyed like SinkE2ETest's rows and
// versioned by event id (an event older than what a key holds, or its tombstone, changes
// nothing). Values keep their text as the body carries it (a numeric "2.50" stays 2.50,
// jsonb keeps Postgres's text), so rows compare with SinkE2ETest::SourceRows as they are.
//
// It also checks what the stream promises, into problems(): each message's Nats-Msg-Id is
// its body's id, no event id is stored twice, the subject is
// <prefix>.<tenant>.<schema>.<table>, and the tenant is one the sink serves.
class StreamState {
 public:
  // Key columns per table name ("accounts" -> {"tenant_id", "id"}): a row's key text is
  // their values joined by '/', as SinkE2ETest keys rows.
  using Keys = std::map<std::string, std::vector<std::string>>;

  // `tenants`: the sink's tenants (empty: every tenant).
  StreamState(std::string stream, std::string subject_prefix, std::set<std::string> tenants,
              Keys keys)
      : stream_(std::move(stream)),
        prefix_(std::move(subject_prefix)),
        tenants_(std::move(tenants)),
        keys_(std::move(keys)) {}

  // Reads the messages after the last one applied; false (and `error`) when the stream
  // cannot be read (not created yet, server down).
  bool Refresh(const NatsServer& server, std::string* error = nullptr);

  // Rows of `table` for `tenants` (every tenant when empty), values of `columns` in order.
  SinkE2ETest::Rows Rows(const std::string& table, const std::set<std::string>& tenants,
                         const std::vector<std::string>& columns) const;

  size_t messages() const { return messages_; }
  uint64_t last_seq() const { return last_seq_; }
  // Everything the stream broke its promises with; empty when it kept them all.
  const std::string& problems() const { return problems_; }
  // The stored messages, for a test that publishes some again.
  const std::vector<StoredMessage>& sample() const { return sample_; }

 private:
  void Apply(const StoredMessage& m);
  void Problem(const std::string& text);

  std::string stream_;
  std::string prefix_;
  std::set<std::string> tenants_;
  uint64_t last_seq_ = 0;
  size_t messages_ = 0;
  Keys keys_;
  std::map<std::string, uint64_t> seq_of_id_;  // event id -> sequence that stored it
  using Values = std::map<std::string, std::optional<std::string>>;  // column -> text
  std::string KeyOf(const std::string& table, const Values& row) const;
  struct Versioned {
    EventId version;
    std::optional<Values> row;  // nullopt: deleted (a tombstone)
    std::optional<std::string> tenant;
  };
  std::map<std::string, std::map<std::string, Versioned>> tables_;  // table -> key -> row
  std::string problems_;
  size_t problem_count_ = 0;
  std::vector<StoredMessage> sample_;  // the first few messages
};

// The members of a JSON object with each value's text exactly as written ("2.50", a nested
// object's own spacing); nullopt when `object` is not one JSON object.
std::optional<std::map<std::string, std::string>> RawMembers(std::string_view object);

}  // namespace pgfanout::testing
