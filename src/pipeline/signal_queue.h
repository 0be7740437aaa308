#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "checkpoints/meta_records.h"
#include "src/core/error.h"
#include "src/pipeline/own_table_events.h"

namespace pgfanout {

// The signal table (`source.signal_table`): an INSERT asks for a copy of a sink's rows,
// as `pgfanout resnapshot` does, for operators who can only reach the database. Its rows
// come through the slot with the data: BeforeAppend() takes them out of each group commit
// (no sink receives them) and queues the INSERTs' requests in commit order in the log's
// metadata (meta::Signals), before the append, with the id of the last row taken. After a
// crash the queue is what it was at the log's position, and a row the server sends again
// is skipped. UPDATE, DELETE and TRUNCATE of the table are ignored.
//
// Pump() hands the requests to their sinks in queue order: one whose sink is busy (a copy
// runs) waits, and so do the later ones for that sink; one that cannot be done (no such
// sink, a table it does not receive) is dropped with one log line. A request is only
// removed from the stored queue once its sink took it (the sink stores it in turn).
//
// Threads: the daemon's loop only.
class SignalQueue {
 public:
  using Request = meta::Signals::Request;
  SignalQueue(std::string schema, std::string table)
      : schema_(std::move(schema)), table_(std::move(table)), own_(schema_, table_) {}

  bool enabled() const { return !table_.empty(); }
  Result<void> Load(const EventLog& log);
  // Takes the signal table's events out of `transactions` (their other events keep their
  // ids) and queues the new INSERTs; stores the queue when it changed.
  Result<void> BeforeAppend(std::vector<TransactionRecord>& transactions, EventLog& log);

  // What a sink answered to a request: taken; refused for good (the reason is logged);
  // busy (asked again at the next Pump()).
  enum class Answer { kTaken, kRefused, kBusy };
  Result<void> Pump(EventLog& log, const std::function<Answer(const Request&)>& ask);

  size_t pending() const { return state_.pending.size(); }

 private:
  std::string schema_, table_;
  meta::Signals state_;
  OwnTableEvents own_;
};

}  // namespace pgfanout
