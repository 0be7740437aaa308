#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "checkpoints/append_rules.h"
#include "checkpoints/event_log.h"

namespace pgfanout {

// EventLog on RocksDB (see OpenRocksDbEventLog). Column families and encodings are in
// checkpoints/KEYS.md, tuning in rocksdb_tuning.cc.
//
// Threads: RocksDB is thread-safe; this class adds
// - write_mu_ serialising Append, AppendPartial and Trim (one writer, but Trim may come
//   from a retention task), which also guards the encode buffer and `partial_`;
// - position_mu_ for the durable position, read by every reader;
// - schema_mu_ for the schema cache;
// - cursor_mu_ so StoreCursor's read-compare-write is atomic.
// None is held while calling into user code or across another lock, except write_mu_,
// which is taken first.
class RocksDbEventLog final : public EventLog {
 public:
  // See OpenRocksDbEventLog and OpenRocksDbEventLogReadOnly. `env` replaces RocksDB's
  // default environment (tests: a file system that simulates a power cut); not owned, it
  // must outlive the log.
  static Result<std::unique_ptr<EventLog>> Open(const std::string& dir, bool read_only,
                                                rocksdb::Env* env = nullptr);
  ~RocksDbEventLog() override;

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
  EventId IndexedFrom() const override { return index_from_; }
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
  struct CachedSchema {
    std::shared_ptr<const TableSchema> schema;
    bool stored = false;  // in the schemas CF (or in a batch ahead of any event using it)
  };
  // Per-call memo from a schema object to its fingerprint: events of one table arrive in
  // runs, and hashing the schema for every event would cost more than encoding it.
  class FingerprintMemo;

  RocksDbEventLog(std::string dir, bool read_only, rocksdb::Env* env)
      : dir_(std::move(dir)), read_only_(read_only), env_(env) {}

  Result<void> OpenDb();
  Result<void> Recover();
  Result<void> DiscardUnfinishedWrites();
  Error StorageError(std::string_view what, const rocksdb::Status& status) const;
  Result<void> Write(std::string_view what, const rocksdb::WriteOptions& options,
                     rocksdb::WriteBatch& batch);
  // Adds the events (and the schemas not yet stored) to `batch`; `new_schemas` collects
  // what to mark stored once the batch is written.
  void AddEvents(std::span<const ChangeEvent> events, FingerprintMemo& memo,
                 rocksdb::WriteBatch& batch, std::vector<CachedSchema>& new_schemas);
  void MarkStored(const std::vector<CachedSchema>& new_schemas);
  // Calls `fn` with the prefix of each bucket of the tenant index and an iterator at its
  // first key (none without the index). `fn` may move the iterator.
  Result<void> ForEachBucket(
      const std::function<Result<void>(const std::string&, rocksdb::Iterator&)>& fn);
  // Adds the tenant index keys of event `id` (BucketsOf) to `batch`, or deletes them.
  void AddIndex(rocksdb::WriteBatch& batch, EventId id, Op op,
                std::optional<std::string_view> tenant,
                std::optional<std::string_view> old_tenant, bool remove = false);
  // Reads options for events after `after`: a reader far behind the head does not fill
  // the block cache the tailing readers share.
  rocksdb::ReadOptions ReadOptionsFor(EventId after, const EventId& last,
                                      const rocksdb::Slice* upper) const;
  // The shared step of the filtered reads: peeks at the encoded event `value` (id `id`),
  // and decodes it into `out` when `keep` takes it; adds its size to `bytes`.
  struct SchemaMemo {
    uint64_t fingerprint = 0;
    std::shared_ptr<const TableSchema> schema;
  };
  Result<void> Take(EventId id, std::string_view value, const EventFilter& keep,
                    SchemaMemo& memo, FilteredRead& out, size_t& bytes) const;
  Result<std::shared_ptr<const TableSchema>> FindSchema(uint64_t fingerprint) const;

  const std::string dir_;
  const bool read_only_;
  rocksdb::Env* const env_;  // nullptr: RocksDB's default
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // rocksdb_tuning::ColumnFamilies order
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* events_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* schemas_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* cursors_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* spill_cf_ = nullptr;
  // The tenant index; nullptr only in a read-only view of a log from before it.
  rocksdb::ColumnFamilyHandle* index_cf_ = nullptr;
  EventId index_from_;  // set on open; see IndexedFrom()
  // A read-only view of a log from before the meta codec: its meta records as they will be
  // once upgraded (meta::UpgradeLegacy), served by GetMeta.
  std::optional<std::map<std::string, std::string>> upgraded_meta_;

  std::mutex write_mu_;
  std::string encode_buf_;  // guarded by write_mu_
  PartialWrites partial_;   // guarded by write_mu_

  mutable std::mutex position_mu_;
  Lsn durable_lsn_;
  std::optional<EventId> last_event_;

  mutable std::mutex schema_mu_;
  mutable std::unordered_map<uint64_t, CachedSchema> schemas_;
  // The schema of the last SpillPut, so a run of spilled changes hashes it once.
  std::shared_ptr<const TableSchema> spill_schema_;  // guarded by schema_mu_
  uint64_t spill_fingerprint_ = 0;                   // guarded by schema_mu_

  // Spilled changes not yet written: SpillPut() collects them and writes them in one
  // batch (a spill is scratch, not synced); every spill read or drop writes them first.
  // Writing them out changes nothing a reader of the spill can tell: hence const.
  mutable std::mutex spill_mu_;
  mutable rocksdb::WriteBatch spill_batch_;  // guarded by spill_mu_
  std::string spill_value_;                 // guarded by spill_mu_
  Result<void> FlushSpill() const;          // takes spill_mu_
  Result<void> FlushSpillLocked() const;    // spill_mu_ held

  std::mutex cursor_mu_;
};

}  // namespace pgfanout
