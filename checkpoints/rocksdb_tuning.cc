#include "checkpoints/rocksdb_tuning.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <memory>
#include <string>

namespace pgfanout::rocksdb_tuning {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

bool Supported(rocksdb::CompressionType type) {
  static const std::vector<rocksdb::CompressionType> supported =
      rocksdb::GetSupportedCompressions();
  return std::find(supported.begin(), supported.end(), type) != supported.end();
}

const std::shared_ptr<rocksdb::Cache>& SharedBlockCache() {
  // Readers mostly tail the newest events, served from memtables; the cache mainly helps
  // sinks a little behind share blocks. Small, because the OS page cache is behind it.
  static const std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(32 * kMiB);
  return cache;
}

void SetTable(rocksdb::ColumnFamilyOptions& cf, size_t block_size) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = SharedBlockCache();
  table.block_size = block_size;
  // No bloom filter: the events and spill CFs are only range-scanned, and the small CFs
  // fit in a few blocks. A filter would cost space and CPU for no saved read.
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
}

}  // namespace

rocksdb::DBOptions DbOptions() {
  rocksdb::DBOptions db;
  db.create_if_missing = true;
  db.create_missing_column_families = true;
  // Two cores on the target box, shared with the decoder and sinks: one flush and one
  // compaction at a time is enough for an append-only log (see kEvents below).
  db.max_background_jobs = 2;
  // Write SST files back to disk in 1 MiB steps instead of one big fsync at the end of
  // a flush, so a flush does not stall the WAL fsync every Append() waits on.
  db.bytes_per_sync = 1 * kMiB;
  // A WAL file is kept until every CF with data in it has flushed; the small cursor and
  // meta CFs fill slowly and would pin old WALs forever. This forces their flush.
  db.max_total_wal_size = 256 * kMiB;
  db.keep_log_file_num = 4;
  db.max_log_file_size = 16 * kMiB;
  // One writer (the pipeline) appends: concurrent memtable writes buy nothing, and turning
  // them off lets ascending inserts use the memtable hint below.
  db.allow_concurrent_memtable_write = false;
  // All memtables together: past this the largest is flushed, so a 10M-row transaction
  // moving from the spill into the events CF does not hold both CFs' write buffers
  // (32 MiB x 4 + 32 MiB x 3) at once. Memtables being flushed still count until their
  // flush ends, so the peak is above this (heaptrack, 1M-row transaction: 120 MiB of
  // memtable arenas with 64 MiB buffers); small buffers keep that overshoot small.
  // Measured (bench/memory_restart.sh's 10M-row transaction): 96 MiB cap and 64 MiB
  // buffers peaked at 198-223 MiB RSS; this, at 127-136 MiB.
  db.db_write_buffer_size = 64 * kMiB;
  return db;
}

rocksdb::ColumnFamilyOptions CfOptions(const std::string& name) {
  rocksdb::ColumnFamilyOptions cf;
  cf.level_compaction_dynamic_level_bytes = true;
  cf.compression = rocksdb::kNoCompression;
  if (name == kEvents) {
    // The hot CF: write-heavy, keys strictly ascending. Ascending keys make the flushed
    // files non-overlapping, so compaction is mostly trivial moves (little write
    // amplification) even with the many smaller L0 files of 32 MiB memtables. LZ4 (linked
    // into Debian's librocksdb 7.8) roughly halves text rows at a CPU cost far below the
    // encoding's; where it is missing, fall back to Snappy, then to none.
    cf.write_buffer_size = 32 * kMiB;
    cf.max_write_buffer_number = 4;
    cf.target_file_size_base = 64 * kMiB;  // compaction output
    // Keys of one transaction share their first 8 bytes (the commit LSN) and arrive in
    // order: the skip list resumes from the last insert instead of searching from the top.
    cf.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(8));
    if (Supported(rocksdb::kLZ4Compression)) {
      cf.compression = rocksdb::kLZ4Compression;
    } else if (Supported(rocksdb::kSnappyCompression)) {
      cf.compression = rocksdb::kSnappyCompression;
    }
    SetTable(cf, 32 * 1024);  // larger blocks: sequential scans, fewer index entries
  } else if (name == kSpill) {
    // Scratch for one big transaction, written once, scanned once, dropped: not worth
    // compressing. A spill under 32 MiB never reaches disk.
    cf.write_buffer_size = 32 * kMiB;
    cf.max_write_buffer_number = 3;
    SetTable(cf, 32 * 1024);
  } else if (name == kTenants) {
    // The tenant index: an empty value per event and bucket, written with the events,
    // read by per-tenant sinks in short runs of one bucket. Keys within a bucket ascend,
    // but buckets interleave, so this CF's files overlap more than the events CF's; its
    // keys are small (~30 bytes), so it stays a fraction of the events' size.
    cf.write_buffer_size = 16 * kMiB;
    cf.max_write_buffer_number = 3;
    if (Supported(rocksdb::kLZ4Compression)) cf.compression = rocksdb::kLZ4Compression;
    SetTable(cf, 16 * 1024);
  } else {
    // schemas, cursors, meta, default: a few KiB, rarely written.
    cf.write_buffer_size = 4 * kMiB;
    cf.max_write_buffer_number = 2;
    SetTable(cf, 4 * 1024);
  }
  return cf;
}

std::vector<rocksdb::ColumnFamilyDescriptor> ColumnFamilies() {
  std::vector<rocksdb::ColumnFamilyDescriptor> out;
  for (const char* name : {kDefault, kEvents, kSchemas, kCursors, kMeta, kSpill, kTenants}) {
    out.emplace_back(name, CfOptions(name));
  }
  return out;
}

}  // namespace pgfanout::rocksdb_tuning
