#include "src/pipeline/sink_fleet.h"

#include <algorithm>
#include <set>

namespace pgfanout {

SinkFleet::SinkFleet(const DeliveryConfig& delivery, size_t backfill_slots, MakeRunner make)
    : delivery_(delivery),
      make_(std::move(make)),
      pool_(delivery.workers ? delivery.workers : DefaultDeliveryWorkers()),
      admission_(backfill_slots),
      connections_(delivery.max_connections) {}

SinkFleet::~SinkFleet() { Stop(); }

Result<SinkFleet::Changes> SinkFleet::Apply(const std::vector<SinkConfig>& sinks) {
  Changes changes;
  // Every runner the diff needs, made before anything stops.
  std::map<std::string, std::unique_ptr<SinkRunner>> fresh;
  std::set<std::string> wanted;
  for (const auto& sc : sinks) {
    wanted.insert(sc.id);
    auto old = definitions_.find(sc.id);
    if (old != definitions_.end() && old->second == sc) continue;
    auto made = make_(sc);
    if (!made) {
      return MakeError(made.error().kind, "sink " + sc.id + ": " + made.error().message);
    }
    auto& runner = made.value();
    // Each worker's batch gets an equal share of delivery.memory.
    runner->SetBatchBytesCap(
        std::max<size_t>(static_cast<size_t>(delivery_.memory / pool_.workers()), 1));
    runner->SetIdleClose(delivery_.idle_close);
    runner->SetConnectionBudget(&connections_);
    (old == definitions_.end() ? changes.added : changes.changed).push_back(sc.id);
    fresh[sc.id] = std::move(runner);
  }
  // Removed and changed sinks leave the set (and the wake-ups) before they stop.
  std::vector<std::unique_ptr<SinkRunner>> gone;
  {
    std::lock_guard lock(mu_);
    for (auto& r : runners_) {
      if (!wanted.count(r->id())) changes.removed.push_back(r->id());
      if (!wanted.count(r->id()) || fresh.count(r->id())) gone.push_back(std::move(r));
    }
    std::erase(runners_, nullptr);
  }
  wakeups_.Set(Runners());
  StopRunners(gone);
  gone.clear();
  // New runners are in the wake-ups before their first turn: none misses an append that
  // lands after that turn's read, whatever thread wakes.
  std::vector<SinkRunner*> starting;
  {
    std::lock_guard lock(mu_);
    for (const auto& sc : sinks) {
      auto it = fresh.find(sc.id);
      if (it == fresh.end()) continue;
      starting.push_back(it->second.get());
      runners_.push_back(std::move(it->second));
    }
  }
  wakeups_.Set(Runners());
  if (started_) {
    for (auto* r : starting) r->Start(&pool_);
  }
  definitions_.clear();
  for (const auto& sc : sinks) definitions_.emplace(sc.id, sc);
  return changes;
}

void SinkFleet::Start() {
  if (started_) return;
  started_ = true;
  for (auto* r : Runners()) r->Start(&pool_);
}

void SinkFleet::Stop() {
  if (stopped_) return;
  stopped_ = true;
  std::vector<std::unique_ptr<SinkRunner>> all;
  {
    std::lock_guard lock(mu_);
    all = std::move(runners_);
    runners_.clear();
  }
  wakeups_.Set({});
  StopRunners(all);
  // Runners are destroyed only after the pool stopped: none is in a turn.
  pool_.Stop();
}

void SinkFleet::StopRunners(const std::vector<std::unique_ptr<SinkRunner>>& runners) {
  for (const auto& r : runners) r->RequestStop();
  for (const auto& r : runners) {
    r->Stop();
    admission_.Forget(*r);
  }
}

void SinkFleet::NotifyAll() {
  for (auto* r : Runners()) r->Notify();
}

std::vector<SinkRunner*> SinkFleet::Runners() const {
  std::lock_guard lock(mu_);
  std::vector<SinkRunner*> out;
  out.reserve(runners_.size());
  for (const auto& r : runners_) out.push_back(r.get());
  return out;
}

std::vector<SinkConfig> SinkFleet::Definitions() const {
  std::vector<SinkConfig> out;
  out.reserve(definitions_.size());
  for (const auto& [id, sc] : definitions_) out.push_back(sc);
  return out;
}

std::vector<SinkRunner::Status> SinkFleet::Statuses() const {
  std::lock_guard lock(mu_);
  std::vector<SinkRunner::Status> out;
  out.reserve(runners_.size());
  for (const auto& r : runners_) out.push_back(r->status());
  return out;
}

size_t SinkFleet::size() const {
  std::lock_guard lock(mu_);
  return runners_.size();
}

}  // namespace pgfanout
