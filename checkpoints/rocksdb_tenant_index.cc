// RocksDbEventLog, continued: the tenant index (the `tenants` column family, KEYS.md):
// its keys for each event, a sink's read through its tenants' buckets, and the walk over
// every bucket that trims and discards use. Kept apart so each file stays readable.
#include <fmt/format.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "checkpoints/append_rules.h"
#include "checkpoints/rocksdb_event_log.h"
#include "checkpoints/rocksdb_keys.h"

namespace pgfanout {
namespace {

namespace keys = rocksdb_keys;
using keys::ToView;

}  // namespace

void RocksDbEventLog::AddIndex(rocksdb::WriteBatch& batch, EventId id, Op op,
                               std::optional<std::string_view> tenant,
                               std::optional<std::string_view> old_tenant, bool remove) {
  if (index_cf_ == nullptr) return;
  const IndexBuckets buckets = BucketsOf(op, tenant, old_tenant);
  auto put = [&](const std::string& bucket) {
    if (remove) {
      batch.Delete(index_cf_, keys::IndexKey(bucket, id));
    } else {
      batch.Put(index_cf_, keys::IndexKey(bucket, id), rocksdb::Slice());
    }
  };
  if (buckets.shared) put(keys::SharedBucket());
  if (buckets.tenant) put(keys::TenantBucket(*buckets.tenant));
  if (buckets.old_tenant) put(keys::TenantBucket(*buckets.old_tenant));
}

Result<EventLog::FilteredRead> RocksDbEventLog::ReadTenants(EventId after,
                                                            std::span<const std::string> tenants,
                                                            const ReadLimits& limits,
                                                            const EventFilter& keep) const {
  FilteredRead out;
  std::optional<EventId> last = LastDurableEvent();
  if (!last || after >= *last || limits.max_events == 0) return out;
  // Before the index begins (a log upgraded from format 1), or for a sink of very many
  // tenants: the whole log is looked at.
  if (index_cf_ == nullptr || after < index_from_ || tenants.size() > kMaxIndexedTenants) {
    return ReadFiltered(after, limits, keep);
  }

  // One iterator per bucket (each tenant's and the shared one), merged by event id.
  struct Bucket {
    std::string prefix;
    std::string upper;
    rocksdb::Slice upper_slice;
    std::unique_ptr<rocksdb::Iterator> it;
    EventId id;  // of the key `it` is at
  };
  std::vector<std::string> prefixes = {keys::SharedBucket()};
  for (const std::string& t : tenants) prefixes.push_back(keys::TenantBucket(t));
  std::sort(prefixes.begin(), prefixes.end());
  prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
  std::vector<std::unique_ptr<Bucket>> buckets;
  auto settle = [&](Bucket& b) -> Result<bool> {
    if (!b.it->Valid()) {
      if (!b.it->status().ok()) return StorageError("reading the tenant index", b.it->status());
      return false;
    }
    auto id = keys::DecodeEventKey(ToView(b.it->key()).substr(b.prefix.size()));
    if (!id) return Error{ErrorKind::kStorage, fmt::format("corrupt tenant index key in {}", dir_)};
    b.id = *id;
    return true;
  };
  auto later = [](const Bucket* a, const Bucket* b) { return b->id < a->id; };
  std::vector<Bucket*> heap;  // a min-heap on id of the buckets with keys left
  for (std::string& prefix : prefixes) {
    auto b = std::make_unique<Bucket>();
    b->prefix = std::move(prefix);
    b->upper = keys::IndexKey(b->prefix, *last).append(1, '\0');
    b->upper_slice = rocksdb::Slice(b->upper);
    rocksdb::ReadOptions options;
    options.iterate_upper_bound = &b->upper_slice;
    b->it.reset(db_->NewIterator(options, index_cf_));
    b->it->Seek(keys::IndexKey(b->prefix, after).append(1, '\0'));
    PGF_TRY(bool any, settle(*b));
    if (any) heap.push_back(b.get());
    buckets.push_back(std::move(b));
  }
  std::make_heap(heap.begin(), heap.end(), later);

  std::string upper = keys::KeyAfter(*last);
  rocksdb::Slice upper_slice(upper);
  // Point lookups, scattered when the sink's tenants are a small share of the log: no
  // readahead (ReadOptionsFor's catch-up readahead would read 2 MiB per lookup).
  rocksdb::ReadOptions lookup = ReadOptionsFor(after, *last, &upper_slice);
  lookup.readahead_size = 0;
  std::unique_ptr<rocksdb::Iterator> events;
  SchemaMemo memo;
  size_t scanned = 0, bytes = 0;
  bool limited = false;
  while (!heap.empty()) {
    if (out.events.size() >= limits.max_events || bytes >= limits.max_bytes ||
        scanned >= limits.max_scanned) {
      limited = true;
      break;
    }
    const EventId id = heap.front()->id;
    // Every bucket at this id moves on: an event in two of them is looked at once.
    while (!heap.empty() && heap.front()->id == id) {
      std::pop_heap(heap.begin(), heap.end(), later);
      Bucket* b = heap.back();
      heap.pop_back();
      b->it->Next();
      PGF_TRY(bool any, settle(*b));
      if (any) {
        heap.push_back(b);
        std::push_heap(heap.begin(), heap.end(), later);
      }
    }
    ++scanned;
    out.scanned_through = id;
    const std::string key = keys::EventKey(id);
    if (!events) events.reset(db_->NewIterator(lookup, events_cf_));
    // A sink whose tenants are most of the log reads events that follow each other: a few
    // steps of the iterator cost less than a Seek (a search of every level) per event.
    bool found = false;
    for (int step = 0; step < 4 && events->Valid(); ++step) {
      events->Next();
      if (!events->Valid() || ToView(events->key()) >= std::string_view(key)) {
        found = events->Valid() && ToView(events->key()) == key;
        break;
      }
    }
    if (!found) events->Seek(key);
    if (!events->Valid()) {
      if (!events->status().ok()) return StorageError("reading events", events->status());
      continue;  // trimmed since its index key was read
    }
    if (ToView(events->key()) != key) continue;
    PGF_TRY(Take(id, ToView(events->value()), keep, memo, out, bytes));
  }
  if (!limited) out.scanned_through = *last;
  return out;
}

Result<void> RocksDbEventLog::ForEachBucket(
    const std::function<Result<void>(const std::string&, rocksdb::Iterator&)>& fn) {
  if (index_cf_ == nullptr) return boost::outcome_v2::success();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, index_cf_));
  for (it->SeekToFirst(); it->Valid();) {
    auto bucket = keys::BucketOf(ToView(it->key()));
    if (!bucket) {
      return Error{ErrorKind::kStorage, fmt::format("corrupt tenant index key in {}", dir_)};
    }
    const std::string prefix(*bucket);
    PGF_TRY(fn(prefix, *it));
    it->Seek(prefix + keys::KeyAfterAll());  // the next bucket
  }
  if (!it->status().ok()) return StorageError("reading the tenant index", it->status());
  return boost::outcome_v2::success();
}

}  // namespace pgfanout
