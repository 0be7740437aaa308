#pragma once

#include <string>
#include <vector>

#include "src/core/change_event.h"
#include "src/core/error.h"

// The row identity that per-key compaction works on, for the sinks that compact a batch to
// one change per key before writing (Postgres `batch_plan`, ClickHouse `change_plan`):
// which key an event's row has, whether an update moved the row to another key, and the
// encoded form both use to find earlier changes of a row in the batch.
namespace pgfanout::row_key {

// Appends `d` to `out` so that no two different key tuples encode alike (length-prefixed).
void Encode(const Datum& d, std::string& out);

// Whether any value of `row` is an unchanged TOAST value (not sent by the server).
bool AnyUnchanged(const std::vector<Datum>& row);

// kMismatch: the `what` (INSERT, UPDATE, DELETE) at `e` carries no value for key `column`.
Error MissingKey(const ChangeEvent& e, const std::string& column, const char* what);

// The key of a DELETE, from its old row: every key column must have a value.
Result<void> OfDelete(const ChangeEvent& e, const std::vector<size_t>& key, std::string& encoded);

// What an insert's or update's row is keyed by.
struct NewRowKey {
  std::string encoded;      // the new row's key
  bool moved = false;       // an update that changed the key: the row left `old_encoded`
  std::string old_encoded;  // set when moved
};

// The key of an insert's or update's new row `row` (the event's new row, which this may
// change: a key value the server did not resend, because it is TOASTed and unchanged, is
// taken from the old row). An update moved the row when an old key value it sent differs;
// a NULL or unsent value in the old key says nothing.
Result<void> OfNewRow(const ChangeEvent& e, const std::vector<size_t>& key, std::vector<Datum>& row,
                      NewRowKey& out);

// The value of key column `k` the row had before an update that moved it: the old row's,
// or where the server sent none for that column, the new row's (it did not change).
inline const Datum& OldValue(const ChangeEvent& e, const std::vector<Datum>& row, size_t k) {
  return e.old_row[k].kind == ValueKind::kText ? e.old_row[k] : row[k];
}

}  // namespace pgfanout::row_key
