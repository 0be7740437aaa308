#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "checkpoints/event_log.h"
#include "src/metrics/metrics.h"
#include "src/pipeline/transaction_assembler.h"

namespace pgfanout {

// Source side of the pipeline: decodes pgoutput payloads, assembles transactions, and
// group-commits them to the event log. The replication stream calls OnData for every
// message and Flush when its socket is drained; Flush's result is the only LSN the slot
// is ever confirmed to.
//
// Threads: driven by the replication loop's thread only. `on_durable` is called on that
// thread after each group commit (the sink runners are woken from it).
class Ingest {
 public:
  Ingest(EventLog& log, const std::vector<TableConfig>& tables, std::function<void()> on_durable);

  Result<void> OnData(Lsn wal_start, std::string_view payload);
  // Group-commits the complete transactions. When nothing is in flight and
  // `keepalive_lsn` is past the log, records it as durable (no events): the server has
  // sent every transaction committed before it, so the slot may move there.
  Result<Lsn> Flush(Lsn keepalive_lsn = Lsn());
  // Forgets unfinished transactions after the connection dropped (see the assembler).
  Result<void> DiscardOpen() { return assembler_.DiscardOpen(); }
  // Counts decoded row changes and logged transactions into `metrics` from now on.
  void SetMetrics(MetricsRegistry& metrics);

 private:
  EventLog& log_;
  TransactionAssembler assembler_;
  std::function<void()> on_durable_;
  std::vector<TransactionRecord> ready_;
  size_t ready_events_ = 0;
  Counter* changes_decoded_ = nullptr;
  Counter* transactions_logged_ = nullptr;
  Counter* group_commits_ = nullptr;
  Gauge* durable_lsn_ = nullptr;
};

}  // namespace pgfanout
