#pragma once

#include <vector>

#include "checkpoints/event_log.h"
#include "src/core/error.h"
#include "src/core/lsn.h"
#include "src/pipeline/sink_runner.h"

namespace pgfanout {

// source.confirm: sinks (README, "High availability"): how far the slot may be confirmed
// so that it keeps every change some sink has not made durable in its destination. With
// it, losing pgfanout's machine loses nothing: a standby streams from the slot and each
// sink resumes from the position its destination stored.
//
// The server resends, after a reconnect, every transaction whose commit record starts at
// or after the confirmed position. So the slot may be confirmed to `durable` (the log's
// durable LSN, read before the runners' statuses), but for each sink with something
// pending, to no more than the commit LSN of the last event it made durable (that
// transaction comes again and its destination skips what it has). A sink holds nothing
// when it has nothing pending:
// - caught up: its cursor is at the log's last event, or it is a sink of some tenants that
//   is idle (Status::idle: every event of its tenants up to the log's last is taken);
// - finished (retired at an end it reached).
// A sink still in its first copy holds what comes after the log's last event when the copy
// began (Status::holds_after, set once Open() found nothing in the destination to resume
// from); one not opened yet, without a cursor, holds everything (what its destination
// holds is not known yet: a standby's sink resumes from it); a paused or failing one
// holds at its cursor, however long, and so does one stopped behind what retention
// trimmed (log.lagging_sinks: drop) until `pgfanout backfill` moves its cursor: only this
// state dir knows that its destination's position is stale. The trade-off the README
// states; max_slot_wal_keep_size bounds it on the server.
//
// The result never exceeds `durable`; the caller keeps what it reports monotonic (the
// server's confirmed position must not go back).
Result<Lsn> SinksConfirmable(const std::vector<SinkRunner*>& runners, const EventLog& log,
                             Lsn durable, std::optional<EventId> last_event);

}  // namespace pgfanout
