#pragma once

#include <set>
#include <string>

#include "src/config/config.h"
#include "src/core/change_event.h"

namespace pgfanout {

// Decides which events reach one sink: its tenants and its tables (tenant isolation,
// DESIGN.md invariant 5). An event without a tenant (a table with no tenant column, a
// NULL tenant, a TRUNCATE) reaches only sinks subscribed to every tenant ("*").
class Router {
 public:
  explicit Router(const SinkConfig& sink);

  bool Accepts(const ChangeEvent& event) const;

 private:
  bool all_tenants_;
  std::set<std::string, std::less<>> tenants_;
  std::set<std::string, std::less<>> tables_;  // qualified; empty = every tracked table
};

}  // namespace pgfanout
