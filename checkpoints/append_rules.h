#pragma once

#include <map>
#include <optional>
#include <span>
#include <string_view>

#include "checkpoints/event_log.h"

namespace pgfanout {

// The checks and bookkeeping both EventLog implementations share, so the RocksDB log and
// its in-memory twin accept, reject and expose exactly the same things.

// Validates an Append() call against the durable position: commit LSNs non-zero and
// strictly increasing, above the last durable event's; end LSNs never moving backward;
// each transaction's event ids carrying its commit_lsn, ascending; every event with a
// schema. Returns the highest event id the transactions carry (nullopt if none).
Result<std::optional<EventId>> CheckAppend(std::span<const TransactionRecord> transactions,
                                           Lsn durable_lsn, std::optional<EventId> last_event);

// Validates AppendPartial(): ids ascending, all above the last durable event (a partial
// write must never overwrite a visible event), every event with a schema.
Result<void> CheckPartial(std::span<const ChangeEvent> events, std::optional<EventId> last_event);

// The buckets of the tenant index an event is in (EventLog::ReadTenants), the one rule
// both implementations index by. A TRUNCATE is in the shared bucket: it reaches every
// per-tenant sink of its table. A row change is in its tenant's bucket and, when the row
// moved between tenants, in its old tenant's too. A row with neither is in no bucket:
// only sinks of every tenant ("*") take it, and they read the whole log.
struct IndexBuckets {
  bool shared = false;
  std::optional<std::string_view> tenant;
  std::optional<std::string_view> old_tenant;  // set only when it differs from `tenant`
};
inline IndexBuckets BucketsOf(Op op, std::optional<std::string_view> tenant,
                              std::optional<std::string_view> old_tenant) {
  if (op == Op::kTruncate) return IndexBuckets{.shared = true};
  if (old_tenant && old_tenant == tenant) old_tenant.reset();
  return IndexBuckets{.tenant = tenant, .old_tenant = old_tenant};
}

// Remembers what AppendPartial() wrote ahead, so the Append() that moves the durable
// position past those events also moves LastDurableEvent() over them.
class PartialWrites {
 public:
  void Add(EventId id);
  // Highest id written ahead with commit_lsn <= `through`.
  std::optional<EventId> HighestThrough(Lsn through) const;
  // Forgets ids with commit_lsn <= `through` (after the Append that covered them).
  void ForgetThrough(Lsn through);

 private:
  std::map<Lsn, uint32_t> max_ordinal_;  // per commit_lsn; a handful of entries at most
};

}  // namespace pgfanout
