#include "test/support/memory_sink.h"

namespace pgfanout::testing {

Result<std::optional<SinkCursor>> MemorySink::Open(const std::optional<SinkCursor>& stored) {
  std::lock_guard lock(mu_);
  opens_.push_back(stored);
  return stored;
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
