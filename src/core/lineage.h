#pragma once

#include <cstdint>
#include <string>
#include <string_view>

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
  // The event log's id (checkpoints/log_identity.h), one per state dir. Under
  // source.confirm: sinks the slot, not one event log, vouches for the position (the slot
  // is never confirmed past what the sink's destination holds): the id is then
  // "slot/<log id>" (WithSlotVouching), and such a position passes between state dirs
  // that read the same slot of the same cluster and both run so (src/pipeline/
  // target_position.h). Stored as is: no destination schema changes.
  std::string log_id;

  static constexpr std::string_view kSlotVouches = "slot/";
  bool SlotVouches() const { return log_id.starts_with(kSlotVouches); }
  // The event log's id without the prefix.
  std::string_view LogId() const {
    return SlotVouches() ? std::string_view(log_id).substr(kSlotVouches.size())
                         : std::string_view(log_id);
  }
  // This lineage as a pgfanout under source.confirm: sinks writes it.
  Lineage WithSlotVouching() const {
    Lineage out = *this;
    if (!out.SlotVouches()) out.log_id = std::string(kSlotVouches) + out.log_id;
    return out;
  }

  friend bool operator==(const Lineage&, const Lineage&) = default;
  // "cluster 7312…, slot pgfanout, timeline 1, event log 3f2a…", for messages.
  std::string Describe() const;
};

}  // namespace pgfanout
