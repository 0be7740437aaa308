#include "test/support/memory_sink.h"

namespace pgfanout::testing {

Result<std::optional<TargetPosition>> MemorySink::Open(const std::optional<SinkCursor>& stored,
                                                 const Lineage& lineage) {
  std::lock_guard lock(mu_);
  opens_.push_back(stored);
  lineages_.push_back(lineage);
  return position_;
}

void MemorySink::SetPosition(std::optional<TargetPosition> position) {
  std::lock_guard lock(mu_);
  position_ = std::move(position);
}

std::vector<Lineage> MemorySink::lineages() const {
  std::lock_guard lock(mu_);
  return lineages_;
}

Result<void> MemorySink::BeginReplace(Tables tables) {
  std::lock_guard lock(mu_);
  ++replaces_;
  (void)tables;
  return boost::outcome_v2::success();
}

int MemorySink::replaces() const {
  std::lock_guard lock(mu_);
  return replaces_;
}

Result<std::string> MemorySink::Write(std::span<const ChangeEvent> events) {
  size_t held = 0;
  {
    std::lock_guard lock(mu_);
    events_.insert(events_.end(), events.begin(), events.end());
    held = events_.size();
  }
  cv_.notify_all();
  return std::to_string(held);
}

void MemorySink::Stop() {
  std::lock_guard lock(mu_);
  ++stops_;
}

std::vector<ChangeEvent> MemorySink::events() const {
  std::lock_guard lock(mu_);
  return events_;
}

std::vector<EventId> MemorySink::ids() const {
  std::lock_guard lock(mu_);
  std::vector<EventId> ids;
  for (const ChangeEvent& e : events_) ids.push_back(e.id);
  return ids;
}

std::vector<std::optional<SinkCursor>> MemorySink::opens() const {
  std::lock_guard lock(mu_);
  return opens_;
}

int MemorySink::stops() const {
  std::lock_guard lock(mu_);
  return stops_;
}

bool MemorySink::WaitForEvents(size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return events_.size() >= count; });
}

}  // namespace pgfanout::testing
