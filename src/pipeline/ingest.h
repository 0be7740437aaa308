#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "checkpoints/event_log.h"
#include "decoders/wal2json/options.h"
#include "src/metrics/metrics.h"
#include "src/pipeline/transaction_assembler.h"

namespace pgfanout::wal2json {
class Reader;
}

namespace pgfanout {

// Source side of the pipeline: decodes the payloads, assembles transactions, and
// group-commits them to the event log. The replication stream calls OnData for every
// message and Flush when its socket is drained; Flush's result is the only LSN the slot
// is ever confirmed to.
//
// Decoders: pgoutput (default), or wal2json when `wal2json` is given (its reader turns each
// format-version 2 document into the pgoutput messages of the same change, so the
// assembler and everything after it see the same messages either way).
//
// Threads: driven by the replication loop's thread only. `on_durable` is called on that
// thread after each group commit (the sink runners are woken from it).
class Ingest {
 public:
  // What a group commit appended, for waking the sinks that may take it: the tenant index
  // buckets it wrote to (BucketsOf), and whether any event at all.
  struct Appended {
    bool any = false;     // at least one event: sinks of every tenant read it
    bool shared = false;  // the shared bucket (a TRUNCATE): every sink with a tenant list
    bool every = false;   // events of unknown tenants (a streamed transaction): every sink
    std::vector<std::string> tenants;  // sorted, each once
  };
  Ingest(EventLog& log, const std::vector<TableConfig>& tables,
         std::function<void(const Appended&)> on_durable,
         const std::optional<wal2json::ReaderOptions>& wal2json = std::nullopt);
  ~Ingest();

  Result<void> OnData(Lsn wal_start, std::string_view payload);
  // Group-commits the complete transactions. When nothing is in flight and
  // `keepalive_lsn` is past the log, records it as durable (no events): the server has
  // sent every transaction committed before it, so the slot may move there.
  Result<Lsn> Flush(Lsn keepalive_lsn = Lsn());
  // Forgets unfinished transactions after the connection dropped (see the assembler).
  Result<void> DiscardOpen();
  // Called with each group commit's transactions before they are appended (on this
  // thread): it may take events out of them (the sink registry's, which are not data) and
  // act before any of them is readable. An error fails the Flush and nothing is appended
  // (the stream reconnects and the server sends them again).
  using BeforeAppend = std::function<Result<void>(std::vector<TransactionRecord>&)>;
  void SetBeforeAppend(BeforeAppend hook) { before_append_ = std::move(hook); }
  // Counts decoded row changes and logged transactions into `metrics` from now on.
  void SetMetrics(MetricsRegistry& metrics);
  // Source transactions made durable by this Ingest (keepalive positions not counted): a
  // stream that logged one made progress, whatever ended it.
  uint64_t transactions_logged() const { return transactions_logged_count_; }

 private:
  // Hands one decoded message to the assembler.
  Result<void> Apply(pgoutput::Message&& message);
  // Nothing is held between a Begin and its Commit, by the assembler or the wal2json reader.
  bool Idle() const;

  EventLog& log_;
  TransactionAssembler assembler_;
  std::unique_ptr<wal2json::Reader> wal2json_;  // null: pgoutput
  std::vector<pgoutput::Message> decoded_;      // scratch for the wal2json reader's output
  std::function<void(const Appended&)> on_durable_;
  BeforeAppend before_append_;
  Appended appended_;  // scratch, reused
  std::vector<TransactionRecord> ready_;
  size_t ready_events_ = 0;
  uint64_t transactions_logged_count_ = 0;
  Counter* changes_decoded_ = nullptr;
  Counter* transactions_logged_ = nullptr;
  Counter* group_commits_ = nullptr;
  Gauge* durable_lsn_ = nullptr;
};

}  // namespace pgfanout
