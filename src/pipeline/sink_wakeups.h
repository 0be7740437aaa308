#pragma once

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "src/pipeline/ingest.h"
#include "src/pipeline/sink_runner.h"

namespace pgfanout {

// Wakes, after each group commit, only the runners that may take what it appended: the
// sinks of the tenants whose index buckets it wrote to, every sink with a tenant list for
// the shared bucket, sinks of every tenant ("*") for any event, and every sink for events
// whose tenants were not looked at (a streamed transaction). A sink of tenants that had no
// events is not woken at all.
//
// Threads: Set() and Wake() may be called from any thread.
class SinkWakeups {
 public:
  // Replaces the runners to wake (each must stay valid until the next Set()).
  void Set(const std::vector<SinkRunner*>& runners);
  void Wake(const Ingest::Appended& appended);

 private:
  std::mutex mu_;
  std::vector<SinkRunner*> all_;
  std::vector<SinkRunner*> every_tenant_;  // "*" sinks
  std::vector<SinkRunner*> some_tenants_;  // sinks with a tenant list
  std::unordered_map<std::string, std::vector<SinkRunner*>> by_tenant_;
};

}  // namespace pgfanout
