#include "src/core/lineage.h"

#include <fmt/format.h>

namespace pgfanout {

std::string Lineage::Describe() const {
  return fmt::format("cluster {}, slot {}, timeline {}, event log {}",
                     system_id.empty() ? "?" : system_id, slot.empty() ? "?" : slot, timeline,
                     log_id.empty() ? "?" : log_id);
}

}  // namespace pgfanout
