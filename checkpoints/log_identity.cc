#include "checkpoints/log_identity.h"

#include <fmt/format.h>

#include <charconv>
#include <random>

namespace pgfanout {

std::string NewLogId() {
  std::random_device rd;
  std::mt19937_64 rng((uint64_t{rd()} << 32) ^ rd());
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

Result<std::optional<Lineage>> LoadLineage(const EventLog& log) {
  PGF_TRY(auto system_id, log.GetMeta(meta_keys::kSourceSystemId));
  PGF_TRY(auto slot, log.GetMeta(meta_keys::kSourceSlot));
  if (!system_id || !slot) return std::optional<Lineage>();
  PGF_TRY(auto log_id, log.GetMeta(meta_keys::kLogId));
  PGF_TRY(auto timeline_text, log.GetMeta(meta_keys::kSourceTimeline));
  Lineage lineage{.system_id = *system_id, .slot = *slot, .log_id = log_id.value_or("")};
  if (timeline_text) {
    const std::string& t = *timeline_text;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), lineage.timeline);
    if (ec != std::errc() || end != t.data() + t.size()) {
      return MakeError(ErrorKind::kStorage,
                       fmt::format("the state dir holds an unreadable timeline '{}'", t));
    }
  }
  return std::optional<Lineage>(std::move(lineage));
}

}  // namespace pgfanout
