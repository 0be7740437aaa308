// RocksDbEventLog, continued: sink cursors, metadata and the spill (the column families
// beside the event log itself), kept apart so each file stays readable.
#include <fmt/format.h>
#include <rocksdb/write_batch.h>

#include "checkpoints/event_codec.h"
#include "checkpoints/rocksdb_event_log.h"
#include "checkpoints/rocksdb_keys.h"

namespace pgfanout {
namespace {

namespace keys = rocksdb_keys;

constexpr size_t kSubxidSize = 4;  // spill value: subxid u32 BE, then the encoded event

using keys::ToView;

rocksdb::WriteOptions Synced() {
  rocksdb::WriteOptions options;
  options.sync = true;
  return options;
}

// The spill needs no WAL: after a crash the server re-sends the transaction and Open()
// clears the spill, so logging these writes would only double their I/O.
rocksdb::WriteOptions Unlogged() {
  rocksdb::WriteOptions options;
  options.disableWAL = true;
  return options;
}

}  // namespace

Result<std::optional<SinkCursor>> RocksDbEventLog::LoadCursor(const std::string& sink_id) const {
  std::string value;
  rocksdb::Status s = db_->Get({}, cursors_cf_, sink_id, &value);
  if (s.IsNotFound()) return std::optional<SinkCursor>();
  if (!s.ok()) return StorageError(fmt::format("reading the cursor of sink {}", sink_id), s);
  std::optional<SinkCursor> cursor = keys::DecodeCursor(value);
  if (!cursor) {
    return Error{ErrorKind::kStorage,
                 fmt::format("corrupt cursor of sink {} in {}", sink_id, dir_)};
  }
  return cursor;
}

Result<void> RocksDbEventLog::StoreCursor(const std::string& sink_id, const SinkCursor& cursor) {
  std::lock_guard lock(cursor_mu_);
  PGF_TRY(std::optional<SinkCursor> stored, LoadCursor(sink_id));
  if (stored && cursor.applied < stored->applied) {
    return Error{ErrorKind::kInvalidArgument,
                 fmt::format("cursor of sink {} would move backward from {} to {}", sink_id,
                             stored->applied.ToString(), cursor.applied.ToString())};
  }
  rocksdb::Status s = db_->Put(Synced(), cursors_cf_, sink_id, keys::EncodeCursor(cursor));
  if (!s.ok()) return StorageError(fmt::format("storing the cursor of sink {}", sink_id), s);
  return boost::outcome_v2::success();
}

Result<void> RocksDbEventLog::RewindCursor(const std::string& sink_id, const SinkCursor& cursor) {
  std::lock_guard lock(cursor_mu_);
  rocksdb::Status s = db_->Put(Synced(), cursors_cf_, sink_id, keys::EncodeCursor(cursor));
  if (!s.ok()) return StorageError(fmt::format("rewinding the cursor of sink {}", sink_id), s);
  return boost::outcome_v2::success();
}

Result<std::vector<std::pair<std::string, SinkCursor>>> RocksDbEventLog::ListCursors() const {
  std::vector<std::pair<std::string, SinkCursor>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, cursors_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::optional<SinkCursor> cursor = keys::DecodeCursor(ToView(it->value()));
    if (!cursor) {
      return Error{ErrorKind::kStorage,
                   fmt::format("corrupt cursor of sink {} in {}", it->key().ToString(), dir_)};
    }
    out.emplace_back(it->key().ToString(), std::move(*cursor));
  }
  if (!it->status().ok()) return StorageError("listing cursors", it->status());
  return out;
}

Result<void> RocksDbEventLog::DropCursor(const std::string& sink_id) {
  std::lock_guard lock(cursor_mu_);
  rocksdb::Status s = db_->Delete(Synced(), cursors_cf_, sink_id);
  if (!s.ok()) return StorageError(fmt::format("dropping the cursor of sink {}", sink_id), s);
  return boost::outcome_v2::success();
}

Result<std::optional<std::string>> RocksDbEventLog::GetMeta(const std::string& key) const {
  if (upgraded_meta_) {
    auto it = upgraded_meta_->find(key);
    if (it == upgraded_meta_->end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  std::string value;
  rocksdb::Status s = db_->Get({}, meta_cf_, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return StorageError(fmt::format("reading meta {}", key), s);
  return std::optional<std::string>(std::move(value));
}

Result<void> RocksDbEventLog::PutMeta(const std::string& key, const std::string& value) {
  rocksdb::Status s = db_->Put(Synced(), meta_cf_, key, value);
  if (!s.ok()) return StorageError(fmt::format("writing meta {}", key), s);
  return boost::outcome_v2::success();
}

Result<void> RocksDbEventLog::SpillPut(Xid xid, uint64_t seq, Xid subxid,
                                       const ChangeEvent& event) {
  if (!event.table) {
    return Error{ErrorKind::kInvalidArgument,
                 fmt::format("spill: change {} of xid {} has no schema", seq, xid.value)};
  }
  uint64_t fp;
  {
    // The spill keeps its schemas in the cache only (not stored: the spill does not
    // outlive the process); Append() stores them with the first event that uses them.
    std::lock_guard lock(schema_mu_);
    if (event.table != spill_schema_) {
      spill_schema_ = event.table;
      spill_fingerprint_ = event.table->Fingerprint();
      schemas_.try_emplace(spill_fingerprint_, CachedSchema{event.table, false});
    }
    fp = spill_fingerprint_;
  }
  std::lock_guard lock(spill_mu_);
  spill_value_.clear();
  keys::PutBe(spill_value_, subxid.value, kSubxidSize);
  EncodeEvent(event, fp, spill_value_);
  spill_batch_.Put(spill_cf_, keys::SpillKey(xid, seq), spill_value_);
  // A few MiB per write: few calls into RocksDB, and bounded memory.
  constexpr size_t kSpillBatchBytes = 4 << 20;
  if (spill_batch_.GetDataSize() >= kSpillBatchBytes) return FlushSpillLocked();
  return boost::outcome_v2::success();
}

Result<void> RocksDbEventLog::FlushSpill() const {
  std::lock_guard lock(spill_mu_);
  return FlushSpillLocked();
}

Result<void> RocksDbEventLog::FlushSpillLocked() const {
  if (spill_batch_.Count() == 0) return boost::outcome_v2::success();
  rocksdb::Status s = db_->Write(Unlogged(), &spill_batch_);
  spill_batch_.Clear();
  if (!s.ok()) return StorageError("spilling changes", s);
  return boost::outcome_v2::success();
}

Result<void> RocksDbEventLog::SpillScan(
    Xid xid, const std::function<Result<void>(const ChangeEvent&)>& fn) const {
  PGF_TRY(FlushSpill());
  std::string lower = keys::SpillPrefix(xid);
  std::string upper = keys::SpillPrefixEnd(xid);
  rocksdb::Slice lower_slice(lower);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  options.iterate_lower_bound = &lower_slice;
  options.iterate_upper_bound = &upper_slice;
  options.fill_cache = false;  // read once, then dropped
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, spill_cf_));
  for (it->Seek(lower_slice); it->Valid(); it->Next()) {
    std::string_view value = ToView(it->value());
    ChangeEvent event;
    if (value.size() < kSubxidSize) {
      return Error{ErrorKind::kStorage,
                   fmt::format("corrupt spilled change of xid {} in {}", xid.value, dir_)};
    }
    Result<uint64_t> fp = DecodeEvent(value.substr(kSubxidSize), event);
    if (!fp) return fp.error().Wrap(fmt::format("spilled change of xid {} in {}", xid.value, dir_));
    PGF_TRY(event.table, FindSchema(fp.value()));
    PGF_TRY(fn(event));
  }
  if (!it->status().ok()) return StorageError("scanning the spill", it->status());
  return boost::outcome_v2::success();
}

Result<uint32_t> RocksDbEventLog::SpillCommit(Xid xid, Lsn commit_lsn, int64_t commit_time_us) {
  PGF_TRY(FlushSpill());
  std::lock_guard write_lock(write_mu_);
  if (auto last = LastDurableEvent(); last && commit_lsn <= last->commit_lsn) {
    return Error{ErrorKind::kInvalidArgument,
                 fmt::format("spill commit of xid {} at {}: not above the durable event {}",
                             xid.value, commit_lsn.ToString(), last->ToString())};
  }
  // Values move as they are, only their xid and commit time rewritten: no row is decoded
  // or encoded again (this is the cost of committing a streamed transaction).
  constexpr size_t kBatchEvents = 8192;
  std::string lower = keys::SpillPrefix(xid);
  std::string upper = keys::SpillPrefixEnd(xid);
  rocksdb::Slice lower_slice(lower);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  options.iterate_lower_bound = &lower_slice;
  options.iterate_upper_bound = &upper_slice;
  options.fill_cache = false;
  options.readahead_size = size_t{2} << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, spill_cf_));
  rocksdb::WriteBatch batch;
  std::string value;
  std::vector<CachedSchema> new_schemas;
  uint64_t last_fp = 0;
  bool any = false;
  uint32_t ordinal = 0;
  auto flush = [&]() -> Result<void> {
    if (batch.Count() == 0) return boost::outcome_v2::success();
    PGF_TRY(Write(fmt::format("moving streamed xid {} into the log", xid.value),
                  rocksdb::WriteOptions(), batch));
    MarkStored(new_schemas);
    new_schemas.clear();
    batch.Clear();
    return boost::outcome_v2::success();
  };
  for (it->Seek(lower_slice); it->Valid(); it->Next()) {
    std::string_view spilled = ToView(it->value());
    if (spilled.size() < kSubxidSize) {
      return Error{ErrorKind::kStorage,
                   fmt::format("corrupt spilled change of xid {} in {}", xid.value, dir_)};
    }
    value.clear();
    auto fp = RestampEvent(spilled.substr(kSubxidSize), xid, commit_time_us, value);
    if (!fp) return fp.error().Wrap(fmt::format("spilled change of xid {} in {}", xid.value, dir_));
    if (!any || fp.value() != last_fp) {
      // The spill keeps its schemas in memory only: store one the log has not seen.
      PGF_TRY(auto schema, FindSchema(fp.value()));
      bool stored;
      {
        std::lock_guard lock(schema_mu_);
        auto s = schemas_.find(fp.value());
        stored = s != schemas_.end() && s->second.stored;
      }
      if (!stored) {
        encode_buf_.clear();
        EncodeSchema(*schema, encode_buf_);
        batch.Put(schemas_cf_, keys::SchemaKey(fp.value()), encode_buf_);
        new_schemas.push_back(CachedSchema{schema, true});
      }
      last_fp = fp.value();
      any = true;
    }
    batch.Put(events_cf_, keys::EventKey(EventId{commit_lsn, ordinal}), value);
    if (index_cf_ != nullptr) {
      PGF_TRY(auto header, PeekEvent(value));
      AddIndex(batch, EventId{commit_lsn, ordinal}, header.op, header.tenant, header.old_tenant);
    }
    if (++ordinal % kBatchEvents == 0) PGF_TRY(flush());
  }
  if (!it->status().ok()) return StorageError("scanning the spill", it->status());
  batch.DeleteRange(spill_cf_, lower, upper);
  PGF_TRY(flush());
  if (ordinal > 0) partial_.Add(EventId{commit_lsn, ordinal - 1});
  return ordinal;
}

Result<void> RocksDbEventLog::SpillDrop(Xid xid, Xid subxid) {
  PGF_TRY(FlushSpill());
  rocksdb::WriteBatch batch;
  std::string lower = keys::SpillPrefix(xid);
  std::string upper = keys::SpillPrefixEnd(xid);
  if (subxid == xid) {
    batch.DeleteRange(spill_cf_, lower, upper);
  } else {
    rocksdb::Slice lower_slice(lower);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions options;
    options.iterate_lower_bound = &lower_slice;
    options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, spill_cf_));
    for (it->Seek(lower_slice); it->Valid(); it->Next()) {
      std::string_view value = ToView(it->value());
      if (value.size() >= kSubxidSize && keys::GetBe(value, 0, kSubxidSize) == subxid.value) {
        batch.Delete(spill_cf_, it->key());
      }
    }
    if (!it->status().ok()) return StorageError("scanning the spill", it->status());
  }
  rocksdb::Status s = db_->Write(Unlogged(), &batch);
  if (!s.ok()) {
    return StorageError(
        fmt::format("dropping spilled changes of xid {}/{}", xid.value, subxid.value), s);
  }
  return boost::outcome_v2::success();
}

}  // namespace pgfanout
