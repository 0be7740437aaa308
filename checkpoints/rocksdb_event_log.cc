#include "checkpoints/rocksdb_event_log.h"

#include <fmt/format.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>

#include "checkpoints/event_codec.h"
#include "checkpoints/log_identity.h"
#include "checkpoints/meta_records.h"
#include "checkpoints/rocksdb_keys.h"
#include "checkpoints/rocksdb_tuning.h"

namespace pgfanout {
namespace {

namespace keys = rocksdb_keys;
namespace tuning = rocksdb_tuning;

// A reader this far behind the head (in WAL bytes) is catching up: its blocks will not be
// read again soon, so it should not evict the blocks the tailing readers share.
constexpr uint64_t kCatchUpLsnDistance = uint64_t{256} << 20;


rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
using keys::ToView;

// RocksDB's wording when the LOCK file is held, by another process or by this one.
bool IsLockError(const rocksdb::Status& s) {
  std::string text = s.ToString();
  return s.IsIOError() && (text.find("While lock file") != std::string::npos ||
                           text.find("lock hold by current process") != std::string::npos);
}

}  // namespace

class RocksDbEventLog::FingerprintMemo {
 public:
  // The fingerprint of `schema`; `first` says whether this call saw it for the first time.
  uint64_t Get(const TableSchema* schema, bool& first) {
    first = false;
    if (schema == last_) return last_fp_;
    auto [it, inserted] = seen_.try_emplace(schema, 0);
    if (inserted) it->second = schema->Fingerprint();
    first = inserted;
    last_ = schema;
    last_fp_ = it->second;
    return last_fp_;
  }

 private:
  const TableSchema* last_ = nullptr;
  uint64_t last_fp_ = 0;
  std::unordered_map<const TableSchema*, uint64_t> seen_;
};

Result<std::unique_ptr<EventLog>> OpenRocksDbEventLog(const std::string& dir) {
  return RocksDbEventLog::Open(dir, /*read_only=*/false);
}

Result<std::unique_ptr<EventLog>> OpenRocksDbEventLogReadOnly(const std::string& dir) {
  return RocksDbEventLog::Open(dir, /*read_only=*/true);
}

Result<std::unique_ptr<EventLog>> RocksDbEventLog::Open(const std::string& dir, bool read_only,
                                                        rocksdb::Env* env) {
  std::error_code ec;
  if (read_only) {
    if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", ec)) {
      return Error{ErrorKind::kNotFound, fmt::format("no event log in {}", dir)};
    }
  } else if (std::filesystem::create_directories(dir, ec); ec) {
    return Error{ErrorKind::kStorage, fmt::format("creating state dir {}: {}", dir, ec.message())};
  }
  std::unique_ptr<RocksDbEventLog> log(new RocksDbEventLog(dir, read_only, env));
  PGF_TRY(log->OpenDb());
  PGF_TRY(log->Recover());
  if (!read_only) {
    PGF_TRY(log->DiscardUnfinishedWrites());
    // A new log gets its id; so does one made before logs had ids.
    PGF_TRY(auto id, meta::Load(*log, meta::LogIdKey()));
    if (!id) PGF_TRY(meta::Store(*log, meta::LogIdKey(), meta::LogId{NewLogId()}));
  }
  return std::unique_ptr<EventLog>(std::move(log));
}

RocksDbEventLog::~RocksDbEventLog() {
  if (!db_) return;
  for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
  db_->Close();  // a failure here loses nothing: every durable write was synced already
}

Error RocksDbEventLog::StorageError(std::string_view what, const rocksdb::Status& status) const {
  return Error{ErrorKind::kStorage, fmt::format("{} in {}: {}", what, dir_, status.ToString())};
}

Result<void> RocksDbEventLog::Write(std::string_view what, const rocksdb::WriteOptions& options,
                                    rocksdb::WriteBatch& batch) {
  rocksdb::Status s = db_->Write(options, &batch);
  if (!s.ok()) return StorageError(what, s);
  return boost::outcome_v2::success();
}

Result<void> RocksDbEventLog::OpenDb() {
  rocksdb::DB* raw = nullptr;
  rocksdb::DBOptions options = tuning::DbOptions();
  if (env_ != nullptr) options.env = env_;
  auto families = tuning::ColumnFamilies();
  if (read_only_) {
    // A read-only open cannot create a column family: a log from before the tenant index
    // is viewed without it (ReadTenants then reads as ReadFiltered does).
    std::vector<std::string> names;
    if (rocksdb::DB::ListColumnFamilies(options, dir_, &names).ok() &&
        std::find(names.begin(), names.end(), tuning::kTenants) == names.end()) {
      families.pop_back();
    }
  }
  rocksdb::Status s =
      read_only_ ? rocksdb::DB::OpenForReadOnly(options, dir_, families, &handles_, &raw)
                 : rocksdb::DB::Open(options, dir_, families, &handles_, &raw);
  if (!s.ok()) {
    if (IsLockError(s)) {
      return Error{ErrorKind::kStorage,
                   fmt::format("opening event log in {}: the directory is locked; another "
                               "pgfanout process is probably using the state dir ({})",
                               dir_, s.ToString())};
    }
    return StorageError("opening event log", s);
  }
  db_.reset(raw);
  default_cf_ = handles_[0];
  events_cf_ = handles_[1];
  schemas_cf_ = handles_[2];
  cursors_cf_ = handles_[3];
  meta_cf_ = handles_[4];
  spill_cf_ = handles_[5];
  index_cf_ = handles_.size() > 6 ? handles_[6] : nullptr;
  return boost::outcome_v2::success();
}

Result<void> RocksDbEventLog::Recover() {
  rocksdb::WriteOptions synced;
  synced.sync = true;
  std::string format;
  rocksdb::Status s = db_->Get({}, default_cf_, ToSlice(keys::kFormatKey), &format);
  if (!s.ok() && !s.IsNotFound()) return StorageError("reading the log format", s);
  const bool fresh = s.IsNotFound();
  if (!fresh && format != keys::kFormatVersion && format != keys::kFormatVersion2 &&
      format != keys::kFormatVersion1) {
    return Error{ErrorKind::kStorage,
                 fmt::format("event log in {} has format '{}', this build reads '{}' (and "
                             "upgrades '{}' and '{}')",
                             dir_, format, keys::kFormatVersion, keys::kFormatVersion2,
                             keys::kFormatVersion1)};
  }

  std::string value;
  s = db_->Get({}, default_cf_, ToSlice(keys::kPositionKey), &value);
  if (s.ok()) {
    if (!keys::DecodePosition(value, durable_lsn_, last_event_)) {
      return Error{ErrorKind::kStorage, fmt::format("corrupt position record in {}", dir_)};
    }
  } else if (!s.IsNotFound()) {
    return StorageError("reading the durable position", s);
  }

  if (fresh) {  // a new log: every event it will hold is indexed
    if (read_only_) return boost::outcome_v2::success();
    s = db_->Put(synced, default_cf_, ToSlice(keys::kFormatKey), ToSlice(keys::kFormatVersion));
    if (!s.ok()) return StorageError("writing the log format", s);
    return boost::outcome_v2::success();
  }
  rocksdb::WriteBatch upgrade;
  if (format == keys::kFormatVersion1) {
    // Written before the tenant index: the events it holds are not indexed, those after
    // its last one will be. A read-only view indexes nothing and reads by scanning.
    index_from_ = last_event_.value_or(EventId{});
    upgrade.Put(default_cf_, ToSlice(keys::kIndexFromKey), keys::EventKey(index_from_));
  } else {
    s = db_->Get({}, default_cf_, ToSlice(keys::kIndexFromKey), &value);
    if (s.ok()) {
      auto from = keys::DecodeEventKey(value);
      if (!from) return Error{ErrorKind::kStorage, fmt::format("corrupt index_from in {}", dir_)};
      index_from_ = *from;
    } else if (!s.IsNotFound()) {
      return StorageError("reading index_from", s);
    }
  }
  if (format == keys::kFormatVersion) return boost::outcome_v2::success();
  // Meta records in text (formats 1 and 2): converted to the codec in the same batch that
  // rewrites the format record, so a crash leaves either the old log or the new one.
  std::map<std::string, std::string> legacy;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, meta_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    legacy.emplace(it->key().ToString(), it->value().ToString());
  }
  if (!it->status().ok()) return StorageError("reading meta records to upgrade", it->status());
  PGF_TRY(auto upgraded, meta::UpgradeLegacy(legacy));
  if (read_only_) {
    upgraded_meta_ = std::move(upgraded);
    return boost::outcome_v2::success();
  }
  for (const auto& [key, ignored] : legacy) {
    if (!upgraded.contains(key)) upgrade.Delete(meta_cf_, key);
  }
  for (const auto& [key, record] : upgraded) upgrade.Put(meta_cf_, key, record);
  upgrade.Put(default_cf_, ToSlice(keys::kFormatKey), ToSlice(keys::kFormatVersion));
  return Write(
      fmt::format("upgrading the event log from '{}' to '{}'", format, keys::kFormatVersion),
      synced, upgrade);
}

Result<void> RocksDbEventLog::DiscardUnfinishedWrites() {
  rocksdb::WriteOptions synced;
  synced.sync = true;
  // Events past the durable position were written ahead by an AppendPartial whose Append
  // never came: the server re-sends that transaction whole, so drop them.
  std::string from = last_event_ ? keys::KeyAfter(*last_event_) : std::string();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, events_cf_));
  it->Seek(from);
  if (it->Valid()) {
    rocksdb::WriteBatch batch;
    batch.DeleteRange(events_cf_, from, keys::KeyAfterAll());
    // Their index keys go too: in each bucket, everything past the durable event (a range
    // delete per bucket that has such keys, whatever the events hold).
    const std::optional<EventId> last = last_event_;
    PGF_TRY(ForEachBucket([&](const std::string& prefix, rocksdb::Iterator& at) -> Result<void> {
      const std::string past =
          last ? keys::IndexKey(prefix, *last).append(1, '\0') : prefix;
      at.Seek(past);
      if (at.Valid() && ToView(at.key()).substr(0, prefix.size()) == prefix) {
        batch.DeleteRange(index_cf_, past, prefix + keys::KeyAfterAll());
      }
      return boost::outcome_v2::success();
    }));
    PGF_TRY(Write("discarding events past the durable position", synced, batch));
  } else if (!it->status().ok()) {
    return StorageError("scanning past the durable position", it->status());
  }

  // The spill only ever holds transactions the server will re-send: dropping the column
  // family frees its files at once, where a range delete would wait for compaction.
  it.reset(db_->NewIterator({}, spill_cf_));
  it->SeekToFirst();
  if (!it->status().ok()) return StorageError("scanning the spill", it->status());
  if (it->Valid()) {
    it.reset();
    rocksdb::Status s = db_->DropColumnFamily(spill_cf_);
    if (!s.ok()) return StorageError("dropping the spill", s);
    db_->DestroyColumnFamilyHandle(spill_cf_);
    handles_[5] = spill_cf_ = nullptr;
    s = db_->CreateColumnFamily(tuning::CfOptions(tuning::kSpill), tuning::kSpill, &spill_cf_);
    if (!s.ok()) return StorageError("recreating the spill", s);
    handles_[5] = spill_cf_;
  }
  return boost::outcome_v2::success();
}

void RocksDbEventLog::AddEvents(std::span<const ChangeEvent> events, FingerprintMemo& memo,
                                rocksdb::WriteBatch& batch,
                                std::vector<CachedSchema>& new_schemas) {
  for (const ChangeEvent& e : events) {
    bool first = false;
    uint64_t fp = memo.Get(e.table.get(), first);
    if (first) {
      bool stored;
      {
        std::lock_guard lock(schema_mu_);
        auto it = schemas_.find(fp);
        stored = it != schemas_.end() && it->second.stored;
      }
      if (!stored) {
        encode_buf_.clear();
        EncodeSchema(*e.table, encode_buf_);
        batch.Put(schemas_cf_, keys::SchemaKey(fp), encode_buf_);
        new_schemas.push_back(CachedSchema{e.table, true});
      }
    }
    encode_buf_.clear();
    EncodeEvent(e, fp, encode_buf_);
    batch.Put(events_cf_, keys::EventKey(e.id), encode_buf_);
    AddIndex(batch, e.id, e.op, e.tenant, e.old_tenant);
  }
}

void RocksDbEventLog::MarkStored(const std::vector<CachedSchema>& new_schemas) {
  std::lock_guard lock(schema_mu_);
  for (const CachedSchema& c : new_schemas) {
    auto [it, inserted] = schemas_.try_emplace(c.schema->Fingerprint(), c);
    if (!inserted) it->second.stored = true;  // keep the object readers already share
  }
}

Result<void> RocksDbEventLog::Append(std::span<const TransactionRecord> transactions) {
  if (transactions.empty()) return boost::outcome_v2::success();
  std::lock_guard write_lock(write_mu_);
  std::optional<EventId> last_event = LastDurableEvent();
  PGF_TRY(auto highest, CheckAppend(transactions, DurableLsn(), last_event));
  const Lsn last_commit = transactions.back().commit_lsn;
  const Lsn end_lsn = transactions.back().end_lsn;
  std::optional<EventId> ahead = partial_.HighestThrough(last_commit);
  if (ahead && (!highest || *highest < *ahead)) highest = ahead;
  if (highest) last_event = highest;

  rocksdb::WriteBatch batch;
  FingerprintMemo memo;
  std::vector<CachedSchema> new_schemas;
  for (const TransactionRecord& tx : transactions) AddEvents(tx.events, memo, batch, new_schemas);
  batch.Put(default_cf_, ToSlice(keys::kPositionKey), keys::EncodePosition(end_lsn, last_event));
  rocksdb::WriteOptions options;
  options.sync = true;
  PGF_TRY(Write(fmt::format("appending {} transaction(s) through {}", transactions.size(),
                            last_commit.ToString()),
                options, batch));
  MarkStored(new_schemas);
  partial_.ForgetThrough(last_commit);
  std::lock_guard lock(position_mu_);
  durable_lsn_ = end_lsn;
  last_event_ = last_event;
  return boost::outcome_v2::success();
}

Result<void> RocksDbEventLog::AppendPartial(std::span<const ChangeEvent> events) {
  if (events.empty()) return boost::outcome_v2::success();
  std::lock_guard write_lock(write_mu_);
  PGF_TRY(CheckPartial(events, LastDurableEvent()));
  rocksdb::WriteBatch batch;
  FingerprintMemo memo;
  std::vector<CachedSchema> new_schemas;
  AddEvents(events, memo, batch, new_schemas);
  // Not synced: the Append() that makes these visible syncs the WAL, and with it them.
  PGF_TRY(Write(
      fmt::format("writing ahead {} event(s) from {}", events.size(), events.front().id.ToString()),
      rocksdb::WriteOptions(), batch));
  MarkStored(new_schemas);
  for (size_t i = 0; i < events.size(); ++i) {
    if (i + 1 == events.size() || events[i + 1].id.commit_lsn != events[i].id.commit_lsn) {
      partial_.Add(events[i].id);  // ids ascend: the last of each commit_lsn is its highest
    }
  }
  return boost::outcome_v2::success();
}

Lsn RocksDbEventLog::DurableLsn() const {
  std::lock_guard lock(position_mu_);
  return durable_lsn_;
}

std::optional<EventId> RocksDbEventLog::LastDurableEvent() const {
  std::lock_guard lock(position_mu_);
  return last_event_;
}

Result<std::optional<EventId>> RocksDbEventLog::FirstRetainedEvent() const {
  std::optional<EventId> last = LastDurableEvent();
  if (!last) return std::optional<EventId>();
  std::string upper = keys::KeyAfter(*last);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, events_cf_));
  it->SeekToFirst();
  if (!it->status().ok()) return StorageError("finding the first event", it->status());
  if (!it->Valid()) return std::optional<EventId>();
  std::optional<EventId> id = keys::DecodeEventKey(ToView(it->key()));
  if (!id) return Error{ErrorKind::kStorage, fmt::format("corrupt event key in {}", dir_)};
  return id;
}

Result<std::shared_ptr<const TableSchema>> RocksDbEventLog::FindSchema(uint64_t fingerprint) const {
  {
    std::lock_guard lock(schema_mu_);
    auto it = schemas_.find(fingerprint);
    if (it != schemas_.end()) return it->second.schema;
  }
  std::string value;
  rocksdb::Status s = db_->Get({}, schemas_cf_, keys::SchemaKey(fingerprint), &value);
  if (!s.ok()) return StorageError(fmt::format("reading schema {:016x}", fingerprint), s);
  Result<TableSchema> schema = DecodeSchema(value);
  if (!schema) return schema.error().Wrap(fmt::format("schema {:016x} in {}", fingerprint, dir_));
  auto shared = std::make_shared<const TableSchema>(std::move(schema).value());
  std::lock_guard lock(schema_mu_);
  return schemas_.try_emplace(fingerprint, CachedSchema{shared, true}).first->second.schema;
}

Result<std::vector<ChangeEvent>> RocksDbEventLog::Read(EventId after, size_t max_events) const {
  std::vector<ChangeEvent> out;
  std::optional<EventId> last = LastDurableEvent();
  if (!last || after >= *last || max_events == 0) return out;
  std::string upper = keys::KeyAfter(*last);
  rocksdb::Slice upper_slice(upper);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(ReadOptionsFor(after, *last, &upper_slice), events_cf_));
  out.reserve(std::min<size_t>(max_events, 4096));
  uint64_t memo_fp = 0;
  std::shared_ptr<const TableSchema> memo_schema;
  for (it->Seek(keys::KeyAfter(after)); it->Valid() && out.size() < max_events; it->Next()) {
    std::optional<EventId> id = keys::DecodeEventKey(ToView(it->key()));
    if (!id) return Error{ErrorKind::kStorage, fmt::format("corrupt event key in {}", dir_)};
    ChangeEvent& e = out.emplace_back();
    e.id = *id;
    Result<uint64_t> fp = DecodeEvent(ToView(it->value()), e);
    if (!fp) return fp.error().Wrap(fmt::format("event {} in {}", id->ToString(), dir_));
    if (!memo_schema || fp.value() != memo_fp) {
      PGF_TRY(memo_schema, FindSchema(fp.value()));
      memo_fp = fp.value();
    }
    e.table = memo_schema;
  }
  if (!it->status().ok()) return StorageError("reading events", it->status());
  return out;
}

rocksdb::ReadOptions RocksDbEventLog::ReadOptionsFor(EventId after, const EventId& last,
                                                    const rocksdb::Slice* upper) const {
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = upper;  // never past the durable position
  if (last.commit_lsn.value() - after.commit_lsn.value() > kCatchUpLsnDistance) {
    options.fill_cache = false;
    options.readahead_size = size_t{2} << 20;
  }
  return options;
}

Result<void> RocksDbEventLog::Take(EventId id, std::string_view value, const EventFilter& keep,
                                   SchemaMemo& memo, FilteredRead& out, size_t& bytes) const {
  PGF_TRY(auto header, PeekEvent(value));
  if (!memo.schema || header.schema_fingerprint != memo.fingerprint) {
    PGF_TRY(memo.schema, FindSchema(header.schema_fingerprint));
    memo.fingerprint = header.schema_fingerprint;
  }
  if (!keep(EventPeek{.op = header.op,
                      .table = memo.schema.get(),
                      .tenant = header.tenant,
                      .old_tenant = header.old_tenant,
                      .has_old_row = header.has_old_row})) {
    return boost::outcome_v2::success();
  }
  ChangeEvent& e = out.events.emplace_back();
  e.id = id;
  PGF_TRY(DecodeEvent(value, e));
  e.table = memo.schema;
  bytes += value.size();
  return boost::outcome_v2::success();
}

Result<EventLog::FilteredRead> RocksDbEventLog::ReadFiltered(EventId after,
                                                             const ReadLimits& limits,
                                                             const EventFilter& keep) const {
  FilteredRead out;
  std::optional<EventId> last = LastDurableEvent();
  if (!last || after >= *last || limits.max_events == 0) return out;
  std::string upper = keys::KeyAfter(*last);
  rocksdb::Slice upper_slice(upper);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(ReadOptionsFor(after, *last, &upper_slice), events_cf_));
  SchemaMemo memo;
  size_t scanned = 0, bytes = 0;
  for (it->Seek(keys::KeyAfter(after)); it->Valid() && out.events.size() < limits.max_events &&
                                        bytes < limits.max_bytes && scanned < limits.max_scanned;
       it->Next()) {
    std::optional<EventId> id = keys::DecodeEventKey(ToView(it->key()));
    if (!id) return Error{ErrorKind::kStorage, fmt::format("corrupt event key in {}", dir_)};
    ++scanned;
    out.scanned_through = id;
    PGF_TRY(Take(*id, ToView(it->value()), keep, memo, out, bytes));
  }
  if (!it->status().ok()) return StorageError("reading events", it->status());
  return out;
}

Result<uint64_t> RocksDbEventLog::CountAfter(EventId after, uint64_t limit) const {
  std::optional<EventId> last = LastDurableEvent();
  if (!last || after >= *last || limit == 0) return uint64_t{0};
  std::string upper = keys::KeyAfter(*last);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper_slice;
  options.fill_cache = false;  // a gauge's scan must not evict what sinks read
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, events_cf_));
  uint64_t n = 0;
  for (it->Seek(keys::KeyAfter(after)); it->Valid() && n < limit; it->Next()) ++n;
  if (!it->status().ok()) return StorageError("counting events", it->status());
  return n;
}

Result<void> RocksDbEventLog::Trim(EventId through) {
  std::lock_guard write_lock(write_mu_);
  // Never past the durable position: events written ahead are not the reader's to drop.
  PGF_TRY(std::optional<EventId> first, FirstRetainedEvent());
  std::optional<EventId> last = LastDurableEvent();
  if (!first || !last || *first > through) return boost::outcome_v2::success();
  const EventId bound = std::min(through, *last);
  rocksdb::WriteBatch batch;
  batch.DeleteRange(events_cf_, rocksdb::Slice(), keys::KeyAfter(bound));
  // Each bucket whose first key is at or before the bound loses its keys up to it; a
  // bucket whose oldest event is newer (an idle tenant trimmed before) costs one seek.
  PGF_TRY(ForEachBucket([&](const std::string& prefix, rocksdb::Iterator& at) -> Result<void> {
    auto oldest = keys::DecodeEventKey(ToView(at.key()).substr(prefix.size()));
    if (oldest && !(bound < *oldest)) {
      batch.DeleteRange(index_cf_, prefix, keys::IndexKey(prefix, bound).append(1, '\0'));
    }
    return boost::outcome_v2::success();
  }));
  // Not synced: a trim lost in a crash is simply done again.
  return Write(fmt::format("trimming events through {}", through.ToString()),
               rocksdb::WriteOptions(), batch);
}

uint64_t RocksDbEventLog::ApproximateSize() const {
  uint64_t sst = 0;
  uint64_t memtables = 0;  // stands in for the WAL, which holds the same unflushed bytes
  db_->GetAggregatedIntProperty("rocksdb.total-sst-files-size", &sst);
  db_->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &memtables);
  return sst + memtables;
}

}  // namespace pgfanout
