#pragma once

#include <span>
#include <vector>

#include "src/core/change_event.h"
#include "src/core/error.h"

namespace pgfanout {

// Reads rows as the source holds them now, for events that reach a sink without all their
// values.
//
// Why: a TOASTed column an UPDATE left alone arrives as kUnchangedToast, and a row sink
// keeps the value its target already holds. Two events carry such values for a row the
// target may not hold:
// - a row that moved in from another tenant, which the Router turns into an insert: unless
//   the table's replica identity is FULL the server sends only the old key, and this sink's
//   target never held the row;
// - an update that changed the row's key (the server sent the old key): the sink moves the
//   target row to the new key, but the target lacks it when an earlier insert of the row
//   was dropped as gone (below), e.g. a row moved in and then had its key changed before
//   this sink read the move.
// Writing either without those values would leave NULL in the target for good.
//
// The value read is the row's state now, not at the event's commit; that is safe because
// every later change of the row is still ahead in the log and is applied on top (a row
// sink's version guard keeps the newer effect). A row no longer under that key and tenant
// (deleted, moved on, its key changed) is reported as gone: the later event that took it
// away settles this sink too (a delete, a move out, or a key change, which is read here
// again at its new key), so the runner drops such an insert and keeps such an update as it
// came.
//
// One instance per SinkRunner, used only from its thread; it may hold a connection.
class RowFetcher {
 public:
  RowFetcher() = default;
  RowFetcher(const RowFetcher&) = delete;
  RowFetcher& operator=(const RowFetcher&) = delete;
  virtual ~RowFetcher() = default;

  // For each event (one for which NeedsSourceRow() holds) fills its kUnchangedToast values
  // of the new row from the source row with the same replica-identity key and tenant.
  // Returns, per event, whether that row exists. On error nothing is assumed filled;
  // kConnection errors are retried by the runner like a sink's.
  virtual Result<std::vector<bool>> Fill(std::span<ChangeEvent* const> events) = 0;
};

// Whether `event` (as routed to a sink) is missing values that only the source has (see
// above): an insert with kUnchangedToast values (a routed move, or an UPDATE the server
// turned into an INSERT because the row started to match the publication's row filter:
// its unchanged TOASTed values come as such), or an update that changed the row's key (the
// server sent the old key alone) with such values.
inline bool NeedsSourceRow(const ChangeEvent& event) {
  if (event.op == Op::kUpdate) {
    if (!event.old_is_key_only || event.old_row.empty()) return false;
  } else if (event.op != Op::kInsert) {
    return false;
  }
  for (const Datum& d : event.new_row) {
    if (d.kind == ValueKind::kUnchangedToast) return true;
  }
  return false;
}

}  // namespace pgfanout
