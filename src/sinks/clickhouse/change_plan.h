#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "src/core/change_event.h"
#include "src/core/error.h"

namespace pgfanout::clickhouse {

// What a batch leaves of one row identity (key) of one table: the row to insert, with the
// version that makes ReplacingMergeTree keep the newest one.
struct PlannedRow {
  bool deleted = false;
  // One Datum per source column. Live row: its newest values; kUnchangedToast where
  // neither its event nor an earlier one of the batch sent the value. Deleted row: what
  // the delete sent (the key; the whole old row under REPLICA IDENTITY FULL), kNull
  // elsewhere.
  std::vector<Datum> row;
  // Live row with kUnchangedToast values only: the key (key order) of the row the target
  // holds that has them; the row's own key unless the batch moved it to a new key.
  std::vector<Datum> toast_from;
  Lsn version;    // commit LSN of the last change of the key
  EventId event;  // that change's id
};

struct PlannedTable {
  std::shared_ptr<const TableSchema> schema;
  std::vector<PlannedRow> rows;  // one per key, in order of each key's first change
  EventId first, last;           // event ids the rows came from (for dedup tokens)
};

struct PlannedTruncate {
  std::shared_ptr<const TableSchema> schema;
  Lsn version;  // rows at or below it go
};

// Row changes of any number of tables (each in one shape), or one TRUNCATE. Applied in
// order: a step reads what the steps before it wrote.
struct PlanStep {
  std::vector<PlannedTable> tables;
  std::optional<PlannedTruncate> truncate;
};

// The key of a table shape as source column indexes; nullptr when the sink does not map
// the table (its events are skipped). Called once per shape.
using ShapeKey =
    std::function<Result<const std::vector<size_t>*>(const std::shared_ptr<const TableSchema>&)>;

// Compacts `events` (ascending) to each key's last effect, step by step: a new step starts
// at every TRUNCATE and where a table's shape changes. An UPDATE that changes the key
// becomes a delete of the old key and a row at the new one; unchanged TOAST values come
// from an earlier change of the row in the same step, else `toast_from` says where the
// target has them. Errors: kMismatch for a DELETE or key-changing UPDATE whose old row
// lacks a key value; whatever `key_of` returns.
Result<std::vector<PlanStep>> PlanChanges(std::span<const ChangeEvent> events,
                                          const ShapeKey& key_of);

}  // namespace pgfanout::clickhouse
