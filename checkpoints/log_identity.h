#pragma once

#include <optional>
#include <string>

#include "checkpoints/event_log.h"
#include "src/core/error.h"
#include "src/core/lineage.h"

namespace pgfanout {

// A new log id: 128 random bits as 32 hex digits.
std::string NewLogId();

// The lineage of positions written from `log` (src/core/lineage.h), from its meta records
// meta::LogIdKey() and meta::SourceKey(); nullopt until the source has been identified
// (its system id and slot recorded). The timeline is the one last recorded (0 when none is).
// `slot_vouches` (source.confirm: sinks): the lineage is Lineage::WithSlotVouching().
Result<std::optional<Lineage>> LoadLineage(const EventLog& log, bool slot_vouches = false);

}  // namespace pgfanout
