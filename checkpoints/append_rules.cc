#include "checkpoints/append_rules.h"

#include <fmt/format.h>

namespace pgfanout {
namespace {

Error Invalid(std::string message) {
  return Error{ErrorKind::kInvalidArgument, std::move(message)};
}

}  // namespace

Result<std::optional<EventId>> CheckAppend(std::span<const TransactionRecord> transactions,
                                           Lsn durable_lsn, std::optional<EventId> last_event) {
  std::optional<EventId> highest;
  Lsn prev_commit = last_event ? last_event->commit_lsn : Lsn();
  Lsn prev_end = durable_lsn;
  for (const TransactionRecord& tx : transactions) {
    if (tx.commit_lsn.IsZero()) return Invalid("append: commit LSN 0/0 is not a transaction");
    if (tx.commit_lsn <= prev_commit) {
      return Invalid(fmt::format("append: commit LSN {} is not above {} (already logged?)",
                                 tx.commit_lsn.ToString(), prev_commit.ToString()));
    }
    if (tx.end_lsn < prev_end) {
      return Invalid(fmt::format("append: end LSN {} of transaction {} is behind {}",
                                 tx.end_lsn.ToString(), tx.commit_lsn.ToString(),
                                 prev_end.ToString()));
    }
    std::optional<EventId> prev_id;
    for (const ChangeEvent& e : tx.events) {
      if (e.id.commit_lsn != tx.commit_lsn || (prev_id && e.id <= *prev_id)) {
        return Invalid(fmt::format("append: event {} out of order in transaction {}",
                                   e.id.ToString(), tx.commit_lsn.ToString()));
      }
      if (!e.table) return Invalid(fmt::format("append: event {} has no schema", e.id.ToString()));
      prev_id = e.id;
    }
    if (prev_id) highest = prev_id;
    prev_commit = tx.commit_lsn;
    prev_end = tx.end_lsn;
  }
  return highest;
}

Result<void> CheckPartial(std::span<const ChangeEvent> events, std::optional<EventId> last_event) {
  std::optional<EventId> prev = last_event;
  for (const ChangeEvent& e : events) {
    if (prev && e.id <= *prev) {
      return Invalid(fmt::format("append partial: event {} is not above {}", e.id.ToString(),
                                 prev->ToString()));
    }
    if (e.id.commit_lsn.IsZero()) return Invalid("append partial: commit LSN 0/0 in event id");
    if (!e.table)
      return Invalid(fmt::format("append partial: event {} has no schema", e.id.ToString()));
    prev = e.id;
  }
  return boost::outcome_v2::success();
}

void PartialWrites::Add(EventId id) {
  auto [it, inserted] = max_ordinal_.emplace(id.commit_lsn, id.ordinal);
  if (!inserted && it->second < id.ordinal) it->second = id.ordinal;
}

std::optional<EventId> PartialWrites::HighestThrough(Lsn through) const {
  auto it = max_ordinal_.upper_bound(through);
  if (it == max_ordinal_.begin()) return std::nullopt;
  --it;
  return EventId{it->first, it->second};
}

void PartialWrites::ForgetThrough(Lsn through) {
  max_ordinal_.erase(max_ordinal_.begin(), max_ordinal_.upper_bound(through));
}

}  // namespace pgfanout
