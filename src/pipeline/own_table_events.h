#pragma once

#include <memory>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "src/core/change_event.h"

namespace pgfanout {

// Takes one table's events out of group commits before they are appended: a table
// pgfanout keeps on the source and reads as requests, not as data (the sink registry, the
// signal table). The other events stay where they were, in order. Most group commits hold
// none of the table's events: that costs one name comparison per table shape.
class OwnTableEvents {
 public:
  OwnTableEvents(std::string schema, std::string table)
      : schema_(std::move(schema)), table_(std::move(table)) {}

  // Moves the table's events after `after` out of `transactions`, in commit order; its
  // events at or before `after` (sent again after a restart: taken before) are dropped.
  std::vector<ChangeEvent> Take(std::vector<TransactionRecord>& transactions, const EventId& after);

 private:
  bool Is(const ChangeEvent& event);

  std::string schema_, table_;
  // The last shapes seen of it and of another table, compared by address (held here, so an
  // address seen cannot be reused by another shape).
  std::shared_ptr<const TableSchema> seen_own_, seen_other_;
};

}  // namespace pgfanout
