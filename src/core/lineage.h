#pragma once

#include <cstdint>
#include <string>

namespace pgfanout {

// Which event log a sink's position belongs to. Positions are comparable only within one
// log: another state dir, slot or source cluster numbers the same changes differently (or
// not at all). A sink that keeps its position in its destination (Postgres, ClickHouse)
// stores its lineage beside it, and the runner trusts such a position only when the log
// it runs from wrote it (src/pipeline/target_position.h).
struct Lineage {
  std::string system_id;  // the source cluster's system identifier (IDENTIFY_SYSTEM)
  std::string slot;       // the replication slot the log reads
  uint32_t timeline = 0;  // the source's timeline when the position was written
  std::string log_id;     // the event log's id (checkpoints/log_identity.h), one per state dir

  friend bool operator==(const Lineage&, const Lineage&) = default;
  // "cluster 7312…, slot pgfanout, timeline 1, event log 3f2a…", for messages.
  std::string Describe() const;
};

}  // namespace pgfanout
