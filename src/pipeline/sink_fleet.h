#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "src/config/config.h"
#include "src/core/error.h"
#include "src/pipeline/backfill_admission.h"
#include "src/pipeline/connection_budget.h"
#include "src/pipeline/delivery_pool.h"
#include "src/pipeline/ingest.h"
#include "src/pipeline/sink_runner.h"
#include "src/pipeline/sink_wakeups.h"

namespace pgfanout {

// The sinks a daemon runs, and what they share: the delivery pool, the backfill admission
// (backfill_concurrency), the target-connection budget (delivery.max_connections) and the
// wake-ups by tenant. A set of sink definitions is applied as a diff (Apply): the config
// at start, each SIGHUP, and the sink registry next.
//
// Threads: Apply(), Start(), Wake(), NotifyAll(), Runners() and Stop() on one thread (the
// daemon's loop: a wake-up is never under way while the set changes); Statuses(), size()
// and the counts from any.
class SinkFleet {
 public:
  // Makes the runner of one sink definition: its sink, row fetcher, backfill and metrics.
  // The fleet sets what it owns (the batch cap, idle close, connection budget) and starts
  // it.
  using MakeRunner = std::function<Result<std::unique_ptr<SinkRunner>>(const SinkConfig&)>;

  SinkFleet(const DeliveryConfig& delivery, size_t backfill_slots, MakeRunner make);
  ~SinkFleet();
  SinkFleet(const SinkFleet&) = delete;
  SinkFleet& operator=(const SinkFleet&) = delete;

  struct Changes {
    std::vector<std::string> added, changed, removed;  // sink ids, in definition order
  };
  // Makes the runners the diff needs first: a definition that cannot be made changes
  // nothing (the error names its sink). Then stops removed and changed sinks (after their
  // batch in flight) and starts changed and added ones from their cursors, once Start()
  // was called. Sinks whose definition is unchanged go on untouched.
  Result<Changes> Apply(const std::vector<SinkConfig>& sinks);
  // Starts every runner Apply() made so far; later Apply() calls start theirs at once.
  void Start();
  // Stops every runner (all their flags first, so turns in progress wind down together),
  // then the pool. Idempotent.
  void Stop();

  // After a group commit: wakes the runners that may take what it appended.
  void Wake(const Ingest::Appended& appended) { wakeups_.Wake(appended); }
  // Wakes every runner (the source was just identified: runners waiting for it go on).
  void NotifyAll();

  std::vector<SinkRunner*> Runners() const;
  std::vector<SinkRunner::Status> Statuses() const;
  // The definitions applied, by sink id (the loop's thread, like Apply()).
  std::vector<SinkConfig> Definitions() const;
  size_t size() const;
  size_t workers() const { return pool_.workers(); }
  DeliveryPool::Counts pool_counts() const { return pool_.counts(); }
  ConnectionBudget::Counts connection_counts() const { return connections_.counts(); }
  // The admission a runner's backfill asks for its slot.
  BackfillAdmission& admission() { return admission_; }

 private:
  void StopRunners(const std::vector<std::unique_ptr<SinkRunner>>& runners);

  const DeliveryConfig delivery_;
  MakeRunner make_;
  // Declared before the runners: they outlive every runner.
  DeliveryPool pool_;
  BackfillAdmission admission_;
  ConnectionBudget connections_;
  SinkWakeups wakeups_;
  bool started_ = false;
  bool stopped_ = false;
  std::map<std::string, SinkConfig> definitions_;
  // Changed only by Apply() and Stop(), under mu_; Statuses() reads it under mu_.
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<SinkRunner>> runners_;
};

}  // namespace pgfanout
