#include "src/pipeline/refills.h"

#include <spdlog/spdlog.h>

#include "checkpoints/meta_records.h"

namespace pgfanout {
Result<void> Refills::Request(const std::string& table, Lsn batch_up_to) {
  if (auto at = copied_at_.find(table); at != copied_at_.end() && batch_up_to < at->second) {
    return boost::outcome_v2::success();
  }
  const auto key = meta::RefillKey(sink_id_);
  PGF_TRY(auto stored, meta::Load(log_, key));
  meta::Refill list = stored.value_or(meta::Refill{});
  for (const auto& t : list.tables) {
    if (t == table) return boost::outcome_v2::success();
  }
  list.tables.push_back(table);
  PGF_TRY(meta::Store(log_, key, list));
  pending_ = true;
  spdlog::info(
      "sink {}: its target gained a column of {} while holding rows; they are copied again "
      "from the source (the WAL does not carry what existing rows read for a new column)",
      sink_id_, table);
  return boost::outcome_v2::success();
}

Result<std::vector<std::string>> Refills::Waiting() {
  PGF_TRY(auto stored, meta::Load(log_, meta::RefillKey(sink_id_)));
  auto tables = stored ? std::move(stored->tables) : std::vector<std::string>{};
  if (tables.empty()) pending_ = false;
  return tables;
}

Result<void> Refills::Done(const std::vector<std::string>& tables, std::optional<Lsn> copied_at) {
  for (const auto& t : tables) {
    if (copied_at) copied_at_[t] = *copied_at;
  }
  PGF_TRY(meta::Erase(log_, meta::RefillKey(sink_id_)));
  pending_ = false;
  return boost::outcome_v2::success();
}

}  // namespace pgfanout
