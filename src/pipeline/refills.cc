#include "src/pipeline/refills.h"

#include <spdlog/spdlog.h>

namespace pgfanout {
namespace {

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> out;
  for (size_t at = 0; at < list.size();) {
    const size_t end = list.find('\0', at);
    out.push_back(list.substr(at, end - at));
    at = end == std::string::npos ? list.size() : end + 1;
  }
  return out;
}

}  // namespace

Result<void> Refills::Request(const std::string& table, Lsn batch_up_to) {
  if (auto at = copied_at_.find(table); at != copied_at_.end() && batch_up_to < at->second) {
    return boost::outcome_v2::success();
  }
  PGF_TRY(auto stored, log_.GetMeta(Key(sink_id_)));
  std::string list = stored.value_or("");
  for (const auto& t : Split(list)) {
    if (t == table) return boost::outcome_v2::success();
  }
  list.append(table).push_back('\0');
  PGF_TRY(log_.PutMeta(Key(sink_id_), list));
  pending_ = true;
  spdlog::info(
      "sink {}: its target gained a column of {} while holding rows; they are copied again "
      "from the source (the WAL does not carry what existing rows read for a new column)",
      sink_id_, table);
  return boost::outcome_v2::success();
}

Result<std::vector<std::string>> Refills::Waiting() {
  PGF_TRY(auto stored, log_.GetMeta(Key(sink_id_)));
  auto tables = Split(stored.value_or(""));
  if (tables.empty()) pending_ = false;
  return tables;
}

Result<void> Refills::Done(const std::vector<std::string>& tables, std::optional<Lsn> copied_at) {
  for (const auto& t : tables) {
    if (copied_at) copied_at_[t] = *copied_at;
  }
  PGF_TRY(log_.PutMeta(Key(sink_id_), ""));
  pending_ = false;
  return boost::outcome_v2::success();
}

}  // namespace pgfanout
