#include "src/pipeline/own_table_events.h"

#include <algorithm>

namespace pgfanout {

bool OwnTableEvents::Is(const ChangeEvent& event) {
  if (!event.table) return false;
  if (event.table == seen_own_) return true;
  if (event.table == seen_other_) return false;
  const bool own = event.table->table_name == table_ && event.table->schema_name == schema_;
  (own ? seen_own_ : seen_other_) = event.table;
  return own;
}

std::vector<ChangeEvent> OwnTableEvents::Take(std::vector<TransactionRecord>& transactions,
                                              const EventId& after) {
  std::vector<ChangeEvent> out;
  auto is_own = [this](const ChangeEvent& ev) { return Is(ev); };
  for (auto& tx : transactions) {
    if (std::none_of(tx.events.begin(), tx.events.end(), is_own)) continue;
    std::vector<ChangeEvent> kept;
    kept.reserve(tx.events.size());
    for (auto& ev : tx.events) {
      if (!Is(ev)) {
        kept.push_back(std::move(ev));
      } else if (after < ev.id) {
        out.push_back(std::move(ev));
      }
    }
    tx.events = std::move(kept);
  }
  return out;
}

}  // namespace pgfanout
