#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "src/config/config.h"
#include "src/core/change_event.h"
#include "src/core/predicate.h"

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

  // The sink's `tables[].where` (src/core/predicate.h) on an event Route() kept: false when
  // the row is outside it, and rewrites an update whose row enters it (an insert, or an
  // update when the old row is unknown) or leaves it (a delete by the key). Per op:
  // - insert: kept when the row matches;
  // - delete: kept unless the old row, when sent with the columns the predicate reads,
  //   does not match (a key-only old row usually lacks them: the delete is kept, which a
  //   row sink ignores and a change log shows);
  // - update: new row matches and old did not -> insert; new matches, old unknown ->
  //   update (an insert when values are unsent, for the fetcher); new does not match and
  //   old did or is unknown -> delete by the key; neither -> dropped; new row unknown (an
  //   unsent TOASTed value the predicate reads, and no full old row) -> kept as it is;
  // - truncate: kept.
  // An error when the predicate does not fit the table's shape (a column dropped or of a
  // type it does not compare): the sink cannot know which rows are its.
  Result<bool> ApplyWhere(ChangeEvent& event);
  bool HasWhere() const { return !predicates_.empty(); }

 private:
  bool Serves(const std::optional<std::string>& tenant) const;
  // The old row's tenant of an update that sent one, else nullopt.
  std::optional<std::string> OldTenant(const ChangeEvent& event) const;

  bool all_tenants_;
  std::set<std::string, std::less<>> tenants_;
  std::set<std::string, std::less<>> tables_;  // qualified; empty = every tracked table
  std::map<std::string, std::string, std::less<>> tenant_columns_;  // qualified -> column
  std::map<std::string, Predicate, std::less<>> predicates_;        // qualified -> where
  // Bound per table shape (nullopt: the table has no where); the shared_ptr keeps the
  // address from being reused.
  struct Bound {
    std::shared_ptr<const TableSchema> schema;
    std::optional<BoundPredicate> predicate;
  };
  std::map<const TableSchema*, Bound> bound_;
};

}  // namespace pgfanout
