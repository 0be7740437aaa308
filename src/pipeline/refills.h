#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "src/core/error.h"
#include "src/core/lsn.h"

namespace pgfanout {

// The tables a sink asked to have copied again (Sink::SetBackfillRequest: its target
// gained a column the source added, and the WAL carries nothing of what the old rows read
// for it). The list is kept in the log's metadata (meta::RefillKey) from before the
// sink commits the batch that asked until the copy is done, so a crash in between repeats
// the copy, never skips it. Only the sink's runner uses it (one thread).
class Refills {
 public:
  Refills(std::string sink_id, EventLog& log) : sink_id_(std::move(sink_id)), log_(log) {}

  // Records `table`, asked by a batch whose events commit up to `batch_up_to`. A batch
  // older than the table's last copy asks nothing: the copy is newer than it (an event of
  // the table's shape before a DROP COLUMN the copy already saw).
  Result<void> Request(const std::string& table, Lsn batch_up_to);
  // Whether tables may be waiting (always at first: the list may be from before a restart).
  bool pending() const { return pending_; }
  // The tables waiting, in the order asked; empty when none (then pending() turns false).
  Result<std::vector<std::string>> Waiting();
  // `tables` were copied, with rows at least as new as `copied_at` (nullopt: nothing to
  // copy was found).
  Result<void> Done(const std::vector<std::string>& tables, std::optional<Lsn> copied_at);

 private:
  const std::string sink_id_;
  EventLog& log_;
  bool pending_ = true;
  std::map<std::string, Lsn> copied_at_;  // per table copied again: its snapshot point
};

}  // namespace pgfanout
