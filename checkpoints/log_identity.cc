#include "checkpoints/log_identity.h"

#include <fmt/format.h>

#include <random>

#include "checkpoints/meta_records.h"

namespace pgfanout {

std::string NewLogId() {
  std::random_device rd;
  std::mt19937_64 rng((uint64_t{rd()} << 32) ^ rd());
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

Result<std::optional<Lineage>> LoadLineage(const EventLog& log, bool slot_vouches) {
  PGF_TRY(auto source, meta::Load(log, meta::SourceKey()));
  if (!source || source->system_id.empty() || source->slot.empty()) {
    return std::optional<Lineage>();
  }
  PGF_TRY(auto log_id, meta::Load(log, meta::LogIdKey()));
  Lineage lineage{.system_id = source->system_id,
                  .slot = source->slot,
                  .timeline = source->timeline,
                  .log_id = log_id ? log_id->id : ""};
  return std::optional<Lineage>(slot_vouches ? lineage.WithSlotVouching() : lineage);
}

}  // namespace pgfanout
