#include "checkpoints/memory_event_log.h"

#include <fmt/format.h>

#include <algorithm>

#include "checkpoints/log_identity.h"
#include "checkpoints/meta_records.h"

namespace pgfanout {
namespace {

uint64_t RowBytes(const std::vector<Datum>& row) {
  uint64_t n = 0;
  for (const Datum& d : row) n += 1 + d.text.size();
  return n;
}

}  // namespace

MemoryEventLog::MemoryEventLog() {
  meta_.emplace(meta::LogIdKey().name, meta::Encode(meta::LogId{NewLogId()}));
}

Result<void> MemoryEventLog::Append(std::span<const TransactionRecord> transactions) {
  if (transactions.empty()) return boost::outcome_v2::success();
  std::lock_guard lock(mu_);
  PGF_TRY(auto highest, CheckAppend(transactions, durable_lsn_, last_event_));
  for (const TransactionRecord& tx : transactions) {
    for (const ChangeEvent& e : tx.events) events_.insert_or_assign(e.id, e);
  }
  Lsn last_commit = transactions.back().commit_lsn;
  std::optional<EventId> ahead = partial_.HighestThrough(last_commit);
  if (ahead && (!highest || *highest < *ahead)) highest = ahead;
  partial_.ForgetThrough(last_commit);
  if (highest) last_event_ = highest;
  durable_lsn_ = transactions.back().end_lsn;
  return boost::outcome_v2::success();
}

Result<void> MemoryEventLog::AppendPartial(std::span<const ChangeEvent> events) {
  std::lock_guard lock(mu_);
  PGF_TRY(CheckPartial(events, last_event_));
  for (const ChangeEvent& e : events) {
    events_.insert_or_assign(e.id, e);
    partial_.Add(e.id);
  }
  return boost::outcome_v2::success();
}

Lsn MemoryEventLog::DurableLsn() const {
  std::lock_guard lock(mu_);
  return durable_lsn_;
}

std::optional<EventId> MemoryEventLog::LastDurableEvent() const {
  std::lock_guard lock(mu_);
  return last_event_;
}

Result<std::optional<EventId>> MemoryEventLog::FirstRetainedEvent() const {
  std::lock_guard lock(mu_);
  if (events_.empty() || !last_event_ || events_.begin()->first > *last_event_) {
    return std::optional<EventId>();
  }
  return std::optional<EventId>(events_.begin()->first);
}

Result<std::vector<ChangeEvent>> MemoryEventLog::Read(EventId after, size_t max_events) const {
  std::lock_guard lock(mu_);
  std::vector<ChangeEvent> out;
  if (!last_event_) return out;
  for (auto it = events_.upper_bound(after);
       it != events_.end() && it->first <= *last_event_ && out.size() < max_events; ++it) {
    out.push_back(it->second);
  }
  return out;
}

namespace {

// One event looked at by a filtered read: taken when `keep` says so, its row bytes counted.
void TakeIfKept(const ChangeEvent& e, const EventLog::EventFilter& keep,
                EventLog::FilteredRead& out, size_t& bytes) {
  if (!keep(EventLog::EventPeek{.op = e.op,
                                .table = e.table.get(),
                                .tenant = e.tenant,
                                .old_tenant = e.old_tenant,
                                .has_old_row = !e.old_row.empty()})) {
    return;
  }
  out.events.push_back(e);
  for (const auto& d : e.new_row) bytes += d.text.size() + 1;
  for (const auto& d : e.old_row) bytes += d.text.size() + 1;
}

}  // namespace

Result<EventLog::FilteredRead> MemoryEventLog::ReadFiltered(EventId after,
                                                           const ReadLimits& limits,
                                                           const EventFilter& keep) const {
  std::lock_guard lock(mu_);
  FilteredRead out;
  if (!last_event_ || limits.max_events == 0) return out;
  size_t scanned = 0, bytes = 0;
  for (auto it = events_.upper_bound(after);
       it != events_.end() && it->first <= *last_event_ && out.events.size() < limits.max_events &&
       bytes < limits.max_bytes && scanned < limits.max_scanned;
       ++it) {
    ++scanned;
    out.scanned_through = it->first;
    const ChangeEvent& e = it->second;
    TakeIfKept(e, keep, out, bytes);
  }
  return out;
}

// The twin keeps no index: it looks at every event and takes those the index would hold
// (BucketsOf), with the same limits and the same `scanned_through` as the RocksDB log.
Result<EventLog::FilteredRead> MemoryEventLog::ReadTenants(EventId after,
                                                          std::span<const std::string> tenants,
                                                          const ReadLimits& limits,
                                                          const EventFilter& keep) const {
  if (tenants.size() > kMaxIndexedTenants) return ReadFiltered(after, limits, keep);
  std::lock_guard lock(mu_);
  FilteredRead out;
  if (!last_event_ || after >= *last_event_ || limits.max_events == 0) return out;
  auto serves = [&](std::optional<std::string_view> tenant) {
    return tenant && std::find(tenants.begin(), tenants.end(), *tenant) != tenants.end();
  };
  size_t scanned = 0, bytes = 0;
  bool limited = false;
  for (auto it = events_.upper_bound(after); it != events_.end() && it->first <= *last_event_;
       ++it) {
    const ChangeEvent& e = it->second;
    auto buckets = BucketsOf(e.op, e.tenant, e.old_tenant);
    if (!buckets.shared && !serves(buckets.tenant) && !serves(buckets.old_tenant)) continue;
    if (out.events.size() >= limits.max_events || bytes >= limits.max_bytes ||
        scanned >= limits.max_scanned) {
      limited = true;
      break;
    }
    ++scanned;
    out.scanned_through = it->first;
    TakeIfKept(e, keep, out, bytes);
  }
  if (!limited) out.scanned_through = *last_event_;
  return out;
}

Result<uint64_t> MemoryEventLog::CountAfter(EventId after, uint64_t limit) const {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  if (!last_event_) return n;
  for (auto it = events_.upper_bound(after); it != events_.end() && it->first <= *last_event_ && n < limit;
       ++it) {
    ++n;
  }
  return n;
}

Result<void> MemoryEventLog::Trim(EventId through) {
  std::lock_guard lock(mu_);
  // Never past the durable position: events written ahead are not the reader's to drop.
  if (!last_event_) return boost::outcome_v2::success();
  EventId bound = std::min(through, *last_event_);
  events_.erase(events_.begin(), events_.upper_bound(bound));
  return boost::outcome_v2::success();
}

uint64_t MemoryEventLog::ApproximateSize() const {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  for (const auto& [id, e] : events_) n += 32 + RowBytes(e.new_row) + RowBytes(e.old_row);
  for (const auto& [key, s] : spill_) {
    n += 32 + RowBytes(s.event.new_row) + RowBytes(s.event.old_row);
  }
  return n;
}

Result<std::optional<SinkCursor>> MemoryEventLog::LoadCursor(const std::string& sink_id) const {
  std::lock_guard lock(mu_);
  auto it = cursors_.find(sink_id);
  if (it == cursors_.end()) return std::optional<SinkCursor>();
  return std::optional<SinkCursor>(it->second);
}

Result<void> MemoryEventLog::StoreCursor(const std::string& sink_id, const SinkCursor& cursor) {
  std::lock_guard lock(mu_);
  auto it = cursors_.find(sink_id);
  if (it != cursors_.end() && cursor.applied < it->second.applied) {
    return Error{ErrorKind::kInvalidArgument,
                 fmt::format("cursor of sink {} would move backward from {} to {}", sink_id,
                             it->second.applied.ToString(), cursor.applied.ToString())};
  }
  cursors_.insert_or_assign(sink_id, cursor);
  return boost::outcome_v2::success();
}

Result<void> MemoryEventLog::RewindCursor(const std::string& sink_id, const SinkCursor& cursor) {
  std::lock_guard lock(mu_);
  cursors_.insert_or_assign(sink_id, cursor);
  return boost::outcome_v2::success();
}

Result<std::vector<std::pair<std::string, SinkCursor>>> MemoryEventLog::ListCursors() const {
  std::lock_guard lock(mu_);
  return std::vector<std::pair<std::string, SinkCursor>>(cursors_.begin(), cursors_.end());
}

Result<void> MemoryEventLog::DropCursor(const std::string& sink_id) {
  std::lock_guard lock(mu_);
  cursors_.erase(sink_id);
  return boost::outcome_v2::success();
}

Result<std::optional<std::string>> MemoryEventLog::GetMeta(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = meta_.find(key);
  if (it == meta_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

Result<void> MemoryEventLog::PutMeta(const std::string& key, const std::string& value) {
  std::lock_guard lock(mu_);
  meta_.insert_or_assign(key, value);
  return boost::outcome_v2::success();
}

Result<void> MemoryEventLog::SpillPut(Xid xid, uint64_t seq, Xid subxid, const ChangeEvent& event) {
  if (!event.table) {
    return Error{ErrorKind::kInvalidArgument,
                 fmt::format("spill: change {} of xid {} has no schema", seq, xid.value)};
  }
  ChangeEvent copy = event;
  copy.id = EventId{};  // as the RocksDB log: a spilled change has no final id yet
  std::lock_guard lock(mu_);
  spill_.insert_or_assign(SpillKey{xid.value, seq}, Spilled{subxid, std::move(copy)});
  return boost::outcome_v2::success();
}

Result<void> MemoryEventLog::SpillScan(
    Xid xid, const std::function<Result<void>(const ChangeEvent&)>& fn) const {
  // One entry at a time, the lock released around `fn`.
  SpillKey next{xid.value, 0};
  while (true) {
    ChangeEvent event;
    {
      std::lock_guard lock(mu_);
      auto it = spill_.lower_bound(next);
      if (it == spill_.end() || it->first.first != xid.value) break;
      event = it->second.event;
      if (it->first.second == UINT64_MAX) {
        next = SpillKey{xid.value + 1, 0};
      } else {
        next = SpillKey{xid.value, it->first.second + 1};
      }
    }
    PGF_TRY(fn(event));
    if (next.first != xid.value) break;
  }
  return boost::outcome_v2::success();
}

Result<void> MemoryEventLog::SpillDrop(Xid xid, Xid subxid) {
  std::lock_guard lock(mu_);
  auto it = spill_.lower_bound(SpillKey{xid.value, 0});
  while (it != spill_.end() && it->first.first == xid.value) {
    if (subxid == xid || it->second.subxid == subxid) {
      it = spill_.erase(it);
    } else {
      ++it;
    }
  }
  return boost::outcome_v2::success();
}

Result<uint32_t> MemoryEventLog::SpillCommit(Xid xid, Lsn commit_lsn, int64_t commit_time_us) {
  std::lock_guard lock(mu_);
  if (last_event_ && commit_lsn <= last_event_->commit_lsn) {
    return Error{ErrorKind::kInvalidArgument,
                 "spill commit at " + commit_lsn.ToString() + ": not above the durable event " +
                     last_event_->ToString()};
  }
  uint32_t ordinal = 0;
  auto it = spill_.lower_bound(SpillKey{xid.value, 0});
  while (it != spill_.end() && it->first.first == xid.value) {
    ChangeEvent e = std::move(it->second.event);
    e.id = EventId{commit_lsn, ordinal++};
    e.xid = xid;
    e.commit_time_us = commit_time_us;
    partial_.Add(e.id);
    events_.insert_or_assign(e.id, std::move(e));
    it = spill_.erase(it);
  }
  return ordinal;
}

std::unique_ptr<EventLog> NewMemoryEventLog() { return std::make_unique<MemoryEventLog>(); }

}  // namespace pgfanout
