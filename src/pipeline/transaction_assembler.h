#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "checkpoints/event_log.h"
#include "decoders/pgoutput/messages.h"
#include "src/config/config.h"
#include "src/core/error.h"

namespace pgfanout {

// Turns decoded pgoutput messages into committed transactions of ChangeEvents.
//
// Events exist only at commit: a change gets its EventId (commit_lsn, ordinal) when its
// transaction's Commit or Stream Commit arrives. Plain transactions are buffered in memory
// (the server streams any transaction larger than logical_decoding_work_mem, so they stay
// small); streamed ones are spilled to the event log's scratch area as they arrive and
// written to the log in slices at Stream Commit, never held whole in RAM.
//
// Threads: not thread-safe; one instance is driven by the replication loop.
class TransactionAssembler {
 public:
  // `log` must outlive the assembler. Transactions that end at or before
  // log.DurableLsn() are already in the log and are skipped if the server re-sends them.
  TransactionAssembler(EventLog& log, const std::vector<TableConfig>& tables);

  // Feeds one message. A transaction that completes is appended to `ready` (the caller
  // makes `ready` durable with EventLog::Append, in order, as one group). Errors: kProtocol
  // when the message breaks the protocol's sequencing (a change outside a transaction, an
  // unknown relation id, a commit that does not match its begin), kStorage from the log.
  Result<void> Apply(pgoutput::Message&& message, std::vector<TransactionRecord>& ready);

  // True between Stream Start and Stream Stop: the decoder needs to know (see reader.h).
  bool in_stream() const { return stream_xid_.has_value(); }

  // True while a plain transaction is open or a streamed one has not ended: the slot may
  // then not be confirmed past what the log holds (it never is; this is for heartbeats).
  bool idle() const { return !open_ && streams_.empty(); }

  // Drops what is open (a plain transaction, streamed ones' spill): called when the
  // connection is lost, since the server re-sends every unfinished transaction whole.
  Result<void> DiscardOpen();

 private:
  struct RelationInfo {
    std::shared_ptr<const TableSchema> schema;
    int tenant_index = -1;  // column holding the tenant, or -1
    bool tracked = false;   // in the config's table list
  };

  // A streamed (in-progress) top-level transaction.
  struct Stream {
    uint64_t next_seq = 0;
  };

  Result<void> OnRelation(pgoutput::Relation&& rel);
  Result<const RelationInfo*> Lookup(RelationId id, char msg_type) const;
  // Builds the event for a change; nullopt when its table is not tracked.
  Result<std::optional<ChangeEvent>> MakeChange(pgoutput::Message&& message);
  Result<void> AddChange(Xid subxid, ChangeEvent&& event);
  Result<void> FinishStream(const pgoutput::StreamCommit& commit,
                            std::vector<TransactionRecord>& ready);
  bool AlreadyDurable(Lsn commit_lsn) const { return commit_lsn < last_end_lsn_; }

  EventLog& log_;
  std::map<std::string, const TableConfig*> tables_by_name_;
  std::unordered_map<uint32_t, RelationInfo> relations_;
  std::optional<TransactionRecord> open_;  // plain transaction between Begin and Commit
  Xid open_xid_;
  int64_t open_commit_time_ = 0;
  std::optional<Xid> stream_xid_;       // between Stream Start and Stream Stop
  std::map<uint32_t, Stream> streams_;  // streamed transactions not yet committed or aborted
  Lsn last_end_lsn_;                    // end of the last transaction handed out or durable
};

// Postgres timestamps count microseconds from 2000-01-01; ours from 1970-01-01.
inline constexpr int64_t kPostgresEpochOffsetUs = 946'684'800'000'000;

}  // namespace pgfanout
