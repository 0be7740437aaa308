#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/change_event.h"

namespace pgfanout::webhook {

enum class Envelope { kPgfanout, kDebezium };

// Turns events into webhook request bodies (the formats are in README.md).
//
// Events are formatted one at a time (AppendEvent), each piece ending with a ',', so that
// the sink can cut a batch into bodies of bounded size; AppendBody wraps a run of pieces.
// Output depends only on the events and the options: a retried delivery has the same
// body. Stateless after construction; any thread.
class PayloadFormatter {
 public:
  struct Options {
    Envelope envelope = Envelope::kPgfanout;
    std::string sink_id;
    // The tenants of a per-tenant sink (empty for "*"): its TRUNCATE events name them, as
    // the truncate applies to their rows only.
    std::vector<std::string> truncate_scope;
    // Debezium only: the body is the one event object itself, not an array (the sink's
    // batch_size is 1; what Debezium Server's HTTP sink sends).
    bool bare_single = false;
  };

  explicit PayloadFormatter(Options options) : options_(std::move(options)) {}

  // Appends `event`'s JSON object and a ',' to `out`. `processed_ms` is Debezium's
  // top-level ts_ms (when the batch was first formatted).
  void AppendEvent(const ChangeEvent& event, int64_t processed_ms, fmt::memory_buffer& out) const;

  // Appends the body for `events` (non-empty), whose pieces (from AppendEvent, their
  // trailing ',' included) are `pieces`. `batch_id` is the delivery's webhook-id.
  void AppendBody(std::string_view batch_id, std::span<const ChangeEvent> events,
                  std::string_view pieces, fmt::memory_buffer& out) const;

  // Debezium's placeholder for a TOASTed value the server did not send (its default
  // unavailable.value.placeholder), so consumers written for Debezium recognise it.
  static constexpr std::string_view kDebeziumUnavailable = "__debezium_unavailable_value";

 private:
  void AppendPgfanoutEvent(const ChangeEvent& event, fmt::memory_buffer& out) const;
  void AppendDebeziumEvent(const ChangeEvent& event, int64_t processed_ms,
                           fmt::memory_buffer& out) const;
  void AppendScope(fmt::memory_buffer& out) const;

  Options options_;
};

}  // namespace pgfanout::webhook
