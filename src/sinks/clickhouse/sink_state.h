#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "src/core/error.h"
#include "src/core/event_id.h"
#include "src/core/lineage.h"
#include "src/sinks/clickhouse/clickhouse_http.h"

namespace pgfanout::clickhouse {

// The sink's own position, kept in ClickHouse beside its rows:
//
//   CREATE TABLE <database>.pgfanout_sink_state (sink_id String, commit_lsn UInt64,
//     ordinal UInt32, event_id String, generation UInt32, seq UInt64, updated_at DateTime,
//     source_system_id String, slot_name String, timeline UInt32, log_id String)
//   ENGINE = ReplacingMergeTree(seq) ORDER BY sink_id
//
// The last four columns are the position's lineage (src/core/lineage.h); a table made
// before them gets them added (ALTER TABLE … ADD COLUMN), and its old rows read
// log_id '' (no lineage).
//
// One row per sink survives FINAL: the one with the highest `seq` (a write counter, so a
// rewind can move the position back). `generation` counts rewinds; it is part of the
// insert dedup tokens, so blocks re-sent after `pgfanout replay` are not taken for retries
// of the ones sent before it.
//
// ClickHouse has no transactions: the position is written after every row of its batch is
// in, so it never passes rows the server does not hold, and a crash in between replays
// the batch (harmless: versions collapse it). Threads: one owner.
class SinkStateStore {
 public:
  struct Position {
    EventId applied;
    uint32_t generation = 0;
    std::optional<Lineage> lineage;  // nullopt: written before positions named their log
  };

  // Positions are written with `lineage`.
  SinkStateStore(ClickHouseHttp& ch, std::string database, std::string sink_id, Lineage lineage);

  // Creates the table, or adds the lineage columns, when missing; sinks that start together
  // may race to it, and one that finds the work done by another takes it as done. Errors
  // say what to run if the server refuses.
  Result<void> Ensure();
  // The stored position; nullopt when this sink has none yet. Remembers its seq and
  // generation for the next Save().
  Result<std::optional<Position>> Load();
  // Stores `applied` (generation unchanged).
  Result<void> Save(EventId applied);
  // Stores `to` with the next generation.
  Result<void> Rewind(EventId to);

  uint32_t generation() const { return generation_; }
  std::string Table() const;

 private:
  Result<void> Write(EventId applied, uint32_t generation);
  // 0: no table; 1: a table without the lineage columns; 2: the whole table.
  Result<int> Shape() const;

  ClickHouseHttp& ch_;
  std::string database_;
  std::string sink_id_;
  Lineage lineage_;
  uint64_t seq_ = 0;
  uint32_t generation_ = 0;
};

}  // namespace pgfanout::clickhouse
