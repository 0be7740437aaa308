#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "checkpoints/append_rules.h"
#include "checkpoints/event_log.h"

namespace pgfanout {

// The in-memory twin of the RocksDB log (see NewMemoryEventLog): the same contract,
// checks and visibility rules, minus durability. One mutex guards everything; callbacks
// (SpillScan's `fn`) run without it held, so they may call back into the log.
class MemoryEventLog final : public EventLog {
 public:
  // Made with a new log id (log_identity.h), as a new RocksDB log is.
  MemoryEventLog();

  Result<void> Append(std::span<const TransactionRecord> transactions) override;
  Result<void> AppendPartial(std::span<const ChangeEvent> events) override;
  Lsn DurableLsn() const override;
  std::optional<EventId> LastDurableEvent() const override;
  Result<std::optional<EventId>> FirstRetainedEvent() const override;
  Result<std::vector<ChangeEvent>> Read(EventId after, size_t max_events) const override;
  Result<uint64_t> CountAfter(EventId after, uint64_t limit) const override;
  Result<FilteredRead> ReadFiltered(EventId after, const ReadLimits& limits,
                                    const EventFilter& keep) const override;
  Result<FilteredRead> ReadTenants(EventId after, std::span<const std::string> tenants,
                                   const ReadLimits& limits,
                                   const EventFilter& keep) const override;
  EventId IndexedFrom() const override { return EventId{}; }
  Result<void> Trim(EventId through) override;
  uint64_t ApproximateSize() const override;

  Result<std::optional<SinkCursor>> LoadCursor(const std::string& sink_id) const override;
  Result<void> StoreCursor(const std::string& sink_id, const SinkCursor& cursor) override;
  Result<void> RewindCursor(const std::string& sink_id, const SinkCursor& cursor) override;
  Result<std::vector<std::pair<std::string, SinkCursor>>> ListCursors() const override;
  Result<void> DropCursor(const std::string& sink_id) override;

  Result<std::optional<std::string>> GetMeta(const std::string& key) const override;
  Result<void> PutMeta(const std::string& key, const std::string& value) override;

  Result<void> SpillPut(Xid xid, uint64_t seq, Xid subxid, const ChangeEvent& event) override;
  Result<void> SpillScan(Xid xid,
                         const std::function<Result<void>(const ChangeEvent&)>& fn) const override;
  Result<void> SpillDrop(Xid xid, Xid subxid) override;
  Result<uint32_t> SpillCommit(Xid xid, Lsn commit_lsn, int64_t commit_time_us) override;

 private:
  struct Spilled {
    Xid subxid;
    ChangeEvent event;
  };
  using SpillKey = std::pair<uint32_t, uint64_t>;  // (xid, seq)

  mutable std::mutex mu_;
  std::map<EventId, ChangeEvent> events_;  // durable and written-ahead (invisible) events
  Lsn durable_lsn_;
  std::optional<EventId> last_event_;
  PartialWrites partial_;
  std::map<std::string, SinkCursor> cursors_;
  std::map<std::string, std::string> meta_;
  std::map<SpillKey, Spilled> spill_;
};

}  // namespace pgfanout
