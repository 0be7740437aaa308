#pragma once

#include <string>

#include "src/config/config.h"
#include "src/core/lsn.h"

namespace pgfanout {

// `pgfanout status`: the slot as the server sees it (confirmed and restart LSNs, WAL it
// retains, wal_status), the event log's durable position and size, and each sink's cursor
// and how many events it is behind. Reads the state dir without locking it, so it works
// while the daemon runs. Returns the process exit code.
// `sink_id` non-empty: that sink only (exit 2 when the config has none by that id).
int ShowStatus(const Config& config, const std::string& sink_id = "");

// `pgfanout checkpoint`: the positions stored in the state dir, nothing else.
int ShowCheckpoints(const Config& config);

// `pgfanout replay --sink ID --from-lsn X/X`: rewinds the sink's cursor to just before the
// first event committed at or after `from` and re-delivers from there up to the log's
// durable position. Fails clearly when `from` is older than what the log retains, and when
// the daemon holds the state dir (stop it first).
int ReplaySink(const Config& config, const std::string& sink_id, Lsn from);

// `pgfanout backfill --sink ID [--table T]`: copies the rows that exist on the source for
// the sink's tenants (every table it maps, or only T) into the sink, as of one snapshot,
// and leaves its cursor so the stream continues exactly after it. Resumes an interrupted
// backfill. Needs the daemon stopped (a running daemon backfills new sinks and tables by
// itself). `connections` source connections copy in parallel.
int BackfillCommand(const Config& config, const std::string& sink_id, const std::string& table,
                    size_t connections);

}  // namespace pgfanout
