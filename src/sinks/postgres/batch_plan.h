#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "src/core/change_event.h"
#include "src/core/error.h"

namespace pgfanout {

// The surviving effect of a batch on one row identity (key) of one table.
struct RowChange {
  enum class Kind : uint8_t { kUpsert, kDelete };
  Kind kind = Kind::kUpsert;
  // One Datum per source column. Upsert: the newest row; kUnchangedToast where neither the
  // event nor an earlier event of the batch had the value (the target keeps its own).
  // Delete: the key values, NULL elsewhere; or, when `whole_row`, the row as last known.
  std::vector<Datum> row;
  // Delete only: `row` is the whole row (an earlier upsert of the batch, or the old row
  // under REPLICA IDENTITY FULL). A soft-deleting sink writes it, marked deleted, so the
  // outcome does not depend on whether the insert and the delete shared a batch.
  bool whole_row = false;
  // Upsert only: when the row's key changed in this batch and some values are still
  // kUnchangedToast, the old key (key order): the target row to take those values from.
  std::vector<Datum> moved_from;
  Lsn version;  // commit LSN of the last event that touched the key
  int64_t commit_time_us = 0;
};

struct TableChanges {
  std::shared_ptr<const TableSchema> schema;
  std::vector<RowChange> changes;  // one per key, in order of each key's first appearance
};

struct TruncateChange {
  std::shared_ptr<const TableSchema> schema;
  Lsn version;
  int64_t commit_time_us = 0;
};

// A run of the batch that can be applied set-wise: either row changes of any number of
// tables (each table in one shape) or one TRUNCATE. Segments apply in order.
struct PlanSegment {
  std::vector<TableChanges> tables;
  std::optional<TruncateChange> truncate;
};

struct BatchPlan {
  std::vector<PlanSegment> segments;
};

// The row identity of a table in the given shape, as source column indexes; nullptr when
// the sink does not map the table (its events are skipped). Called once per shape.
using KeyLookup =
    std::function<Result<const std::vector<size_t>*>(const std::shared_ptr<const TableSchema>&)>;

// Compacts `events` (ascending) per table and key: only each key's last effect survives.
// An UPDATE that moves a row to another key becomes delete(old) + upsert(new); an UPDATE
// with unchanged TOAST values takes them from an earlier upsert of the row in the batch.
// Cuts a new segment at every TRUNCATE and wherever a table's schema changes.
// Errors: kMismatch for a DELETE (or key-changing UPDATE) whose old row lacks a key value,
// and whatever `keys` returns.
Result<BatchPlan> PlanBatch(std::span<const ChangeEvent> events, const KeyLookup& keys);

}  // namespace pgfanout
