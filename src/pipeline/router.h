#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "src/config/config.h"
#include "src/core/change_event.h"

namespace pgfanout {

// Decides what of each event reaches one sink: its tenants and its tables (tenant
// isolation, DESIGN.md invariant 5).
//
// - An event whose tenant is one the sink serves passes unchanged; "*" sinks get every
//   event of their tables.
// - A row whose tenant column changed *moves*: the old tenant's sink gets a delete, the new
//   tenant's sink an insert (a sink serving both gets the update). The old tenant comes
//   from the old row, which pgoutput sends when the tenant column is in the replica
//   identity and changed (the source check makes that so for every table a per-tenant sink
//   reads); no old row means the tenant did not change.
// - A TRUNCATE of a table with a tenant column reaches every sink of that table; a
//   per-tenant sink applies it to its own tenants' rows only (see sink.h). A TRUNCATE or
//   row of a table without a tenant column, or with a NULL tenant, reaches "*" sinks only.
class Router {
 public:
  Router(const SinkConfig& sink, const std::vector<TableConfig>& tables);

  // Returns false when `event` is not for this sink; may rewrite it (a move) when true.
  bool Route(ChangeEvent& event) const;
  // Route() without rewriting: whether any form of `event` reaches this sink.
  bool Accepts(const ChangeEvent& event) const;
  // From an event's header alone, before its rows are decoded: false only when Accepts()
  // would be false (an update with an old row may be a move from one of this sink's
  // tenants, so it is kept for Route() to decide).
  bool MayAccept(const EventLog::EventPeek& peek) const;

 private:
  bool Serves(const std::optional<std::string>& tenant) const;
  // The old row's tenant of an update that sent one, else nullopt.
  std::optional<std::string> OldTenant(const ChangeEvent& event) const;

  bool all_tenants_;
  std::set<std::string, std::less<>> tenants_;
  std::set<std::string, std::less<>> tables_;  // qualified; empty = every tracked table
  std::map<std::string, std::string, std::less<>> tenant_columns_;  // qualified -> column
};

}  // namespace pgfanout
