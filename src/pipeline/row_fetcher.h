#pragma once

#include <span>
#include <vector>

#include "src/core/change_event.h"
#include "src/core/error.h"

namespace pgfanout {

// Reads rows as the source holds them now, for events that reach a sink without all their
// values.
//
// Why: the Router turns a row that moved in from another tenant into an insert. Unless the
// table's replica identity is FULL, the server sends only the old key, and a TOASTed column
// the UPDATE left alone arrives as kUnchangedToast: neither the event nor this sink's
// target (which never held the row) has the value. Writing the insert without it would
// leave NULL in the target for good.
//
// The value read is the row's state now, not at the event's commit; that is safe because
// every later change of the row is still ahead in the log and is applied on top (a row
// sink's version guard keeps the newer effect). A row no longer under that key and tenant
// (deleted, moved on, its key changed) is reported as gone: the later event that took it
// away settles this sink too, so the runner drops the insert.
//
// One instance per SinkRunner, used only from its thread; it may hold a connection.
class RowFetcher {
 public:
  RowFetcher() = default;
  RowFetcher(const RowFetcher&) = delete;
  RowFetcher& operator=(const RowFetcher&) = delete;
  virtual ~RowFetcher() = default;

  // For each event (an insert for which NeedsSourceRow() holds) fills its kUnchangedToast
  // values from the source row with the same replica-identity key and tenant. Returns, per
  // event, whether that row exists. On error nothing is assumed filled; kConnection errors
  // are retried by the runner like a sink's.
  virtual Result<std::vector<bool>> Fill(std::span<ChangeEvent* const> events) = 0;
};

// Whether `event` is an insert missing values that only the source has (see above). The
// server never sends kUnchangedToast in an INSERT, so only a routed move qualifies.
inline bool NeedsSourceRow(const ChangeEvent& event) {
  if (event.op != Op::kInsert) return false;
  for (const Datum& d : event.new_row) {
    if (d.kind == ValueKind::kUnchangedToast) return true;
  }
  return false;
}

}  // namespace pgfanout
