#pragma once

#include <optional>
#include <string>

#include "checkpoints/event_log.h"
#include "src/core/error.h"
#include "src/core/lineage.h"

namespace pgfanout {

// Metadata records that say where a log's events come from (KEYS.md): the log's own id,
// made when the log is created, and the source it was identified with on first connect.
namespace meta_keys {
inline constexpr char kLogId[] = "log.id";                     // 32 hex digits, random
inline constexpr char kSourceSystemId[] = "source.system_id";  // IDENTIFY_SYSTEM's systemid
inline constexpr char kSourceSlot[] = "source.slot";
inline constexpr char kSourceTimeline[] = "source.timeline";  // decimal; see source_setup.h
}  // namespace meta_keys

// A new log id: 128 random bits as 32 hex digits.
std::string NewLogId();

// The lineage of positions written from `log` (src/core/lineage.h), or nullopt until the
// source has been identified (its system id and slot recorded). The timeline is the one
// last recorded (0 when none is).
Result<std::optional<Lineage>> LoadLineage(const EventLog& log);

}  // namespace pgfanout
