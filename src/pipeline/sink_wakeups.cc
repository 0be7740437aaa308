#include "src/pipeline/sink_wakeups.h"

namespace pgfanout {

void SinkWakeups::Set(const std::vector<SinkRunner*>& runners) {
  std::lock_guard lock(mu_);
  all_ = runners;
  every_tenant_.clear();
  some_tenants_.clear();
  by_tenant_.clear();
  for (SinkRunner* r : runners) {
    if (r->AllTenants()) {
      every_tenant_.push_back(r);
      continue;
    }
    some_tenants_.push_back(r);
    for (const auto& t : r->tenants()) by_tenant_[t].push_back(r);
  }
}

void SinkWakeups::Wake(const Ingest::Appended& appended) {
  if (!appended.any) return;
  std::lock_guard lock(mu_);
  if (appended.every) {
    for (SinkRunner* r : all_) r->Notify();
    return;
  }
  for (SinkRunner* r : every_tenant_) r->Notify();
  if (appended.shared) {
    for (SinkRunner* r : some_tenants_) r->Notify();
    return;
  }
  // A sink of several tenants may be woken twice; the second is a no-op on a queued task.
  for (const auto& t : appended.tenants) {
    auto it = by_tenant_.find(t);
    if (it == by_tenant_.end()) continue;
    for (SinkRunner* r : it->second) r->Notify();
  }
}

}  // namespace pgfanout
