#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "src/config/config.h"
#include "src/core/error.h"
#include "src/pgclient/pg_connection.h"

namespace pgfanout {

// What the stream does not carry about a partitioned table. Under
// publish_via_partition_root PostgreSQL 15 sends nothing when a partition is attached,
// detached or dropped, nor when one partition is truncated (only a TRUNCATE of the root
// is sent), so after such a change the sinks may no longer equal the root's rows: an
// attached table's rows were never sent, a detached, dropped or truncated partition's rows
// were never deleted. A partition made or attached later must also keep the root's
// replica identity, which the start-up checks cannot see.
//
// The monitor calls Check() every sample: it reads each tracked root's leaf partitions
// (oid and relfilenode, which TRUNCATE replaces) and reports what differs from the last
// call, plus every new leaf whose replica identity differs from the root's. The first
// call only records (changes made while pgfanout was stopped are not seen). A rewrite
// without TRUNCATE (VACUUM FULL, CLUSTER, a rewriting ALTER TABLE) also replaces the
// relfilenode and is reported the same way: it cannot be told apart. An added leaf is
// looked into once (`had_rows`): a leaf attached with rows needs a copy, one created empty
// does not. The monitor hands the changes that need one to the daemon, which copies the
// table again for its sinks (Monitor::SetPartitionRepair).
class PartitionWatch {
 public:
  struct Change {
    std::string table;      // the tracked root
    std::string partition;  // "schema.name"
    std::string what;       // "added", "removed", "truncated or rewritten", "identity"
    std::string detail;     // for "identity": the start-up check's message
    // For "added": the partition held rows when first seen (attached with rows; a
    // partition created empty, or filled through the root since, which the stream
    // carried, is the other case: it is told apart only by this look).
    bool had_rows = false;
    std::chrono::system_clock::time_point seen_at;
  };

  explicit PartitionWatch(const Config& config);

  // Whether any table is tracked (false: Check() does nothing).
  bool active() const { return !roots_.empty(); }
  Result<std::vector<Change>> Check(const PgConnection& sql);

 private:
  struct Leaf {
    std::string name;
    std::string filenode;
    std::string quoted;  // "schema"."name", for a query
  };
  std::vector<TableConfig> roots_;
  std::map<std::string, std::map<std::string, Leaf>> last_;  // root -> leaf oid -> leaf
};

}  // namespace pgfanout
