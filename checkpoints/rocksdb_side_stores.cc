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

std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

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

Result<std::optional<std::string>> RocksDbEventLog::GetMeta(const std::string& key) const {
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
  std::string value;
  keys::PutBe(value, subxid.value, kSubxidSize);
  EncodeEvent(event, fp, value);
  rocksdb::Status s = db_->Put(Unlogged(), spill_cf_, keys::SpillKey(xid, seq), value);
  if (!s.ok()) return StorageError(fmt::format("spilling change {} of xid {}", seq, xid.value), s);
  return boost::outcome_v2::success();
}

Result<void> RocksDbEventLog::SpillScan(
    Xid xid, const std::function<Result<void>(const ChangeEvent&)>& fn) const {
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

Result<void> RocksDbEventLog::SpillDrop(Xid xid, Xid subxid) {
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
