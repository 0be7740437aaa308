#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkpoints/meta_records.h"
#include "src/config/config.h"
#include "src/core/change_event.h"
#include "src/core/error.h"
#include "src/pgclient/pg_connection.h"

namespace pgfanout {

// KeyValues and TableCopyState (where a copy of a table stands, kept between runs so a
// copy interrupted by kill -9 resumes from its last completed chunk) are meta records:
// checkpoints/meta_records.h.

// Rows of one table range, in key order.
struct SnapshotChunk {
  size_t table = 0;  // index into the tables given to Read()
  size_t range = 0;
  std::vector<std::vector<Datum>> rows;
  KeyValues last_key;       // of the last row
  bool range_done = false;  // the range has no rows after these
};

// Reads the tracked tables as of one exact point of the WAL, for a snapshot or backfill.
//
// Begin() opens a replication connection and creates a TEMPORARY logical slot that exports
// its snapshot: the rows it shows are exactly those committed before the slot's consistent
// point, and every transaction committed at or after it reaches the event log through the
// main slot. Rows read here plus the log's events from consistent_lsn() on are the source,
// with no gap and no overlap. The temporary slot goes away with the connection; it never
// writes to the source's tables.
//
// Read() copies with COPY … TO STDOUT over `connections` connections that import the
// snapshot, each taking a key range of a table (ranges cut at key quantiles), in chunks
// in key order (keyset pagination: no OFFSET scans). Readers wait at most 10 s for a table
// lock (a DDL queued on the source): then, or when the server picks one as a deadlock
// victim, Read() fails with kSink and the caller retries, resuming from its last chunk.
class SnapshotReader {
 public:
  struct Table {
    TableConfig config;  // key filled in
    std::shared_ptr<const TableSchema> schema;
    uint64_t estimated_rows = 0;  // of the tenants asked for, as of the snapshot
  };

  // `password` as PgConnection::Connect takes it (empty: none).
  static Result<std::unique_ptr<SnapshotReader>> Begin(const std::string& dsn,
                                                       const std::string& password,
                                                       const std::string& slot_name);
  ~SnapshotReader();

  Lsn consistent_lsn() const { return consistent_lsn_; }

  // The tables as the snapshot sees them; `tenants` empty means every tenant.
  Result<std::vector<Table>> Describe(const std::vector<TableConfig>& tables,
                                      const std::vector<std::string>& tenants);

  // Fills in `state.splits` (for `ranges` ranges) where a table has none yet.
  Result<void> Plan(const Table& table, const std::vector<std::string>& tenants, size_t ranges,
                    TableCopyState& state);

  // Ends the planning connection's transaction, so that it holds no lock while the readers
  // run: an idle holder would let a queued DDL (TRUNCATE) block the readers behind it
  // forever. Call after Describe() and Plan(), before Read().
  Result<void> DonePlanning();

  // Copies every range not done, resuming after each range's last key, and hands chunks
  // to `on_chunk` on the calling thread (one at a time, ranges interleaved). Stops at the
  // first error, from a reader or from `on_chunk`.
  Result<void> Read(const std::vector<Table>& tables, const std::vector<std::string>& tenants,
                    const std::vector<TableCopyState>& states, size_t connections,
                    size_t chunk_rows,
                    const std::function<Result<void>(SnapshotChunk&&)>& on_chunk);

 private:
  SnapshotReader(PgConnection replication, PgConnection sql)
      : replication_(std::move(replication)), sql_(std::move(sql)) {}
  Result<PgConnection> Import() const;

  std::string dsn_;
  std::string password_;
  PgConnection replication_;  // holds the exported snapshot and the temporary slot
  PgConnection sql_;          // imports the snapshot; catalog and planning queries
  std::string snapshot_name_;
  Lsn consistent_lsn_;
};

// Parses one line of COPY text output (without its newline) into Datums.
// Errors: kProtocol when the line is malformed or has the wrong number of fields.
Result<void> ParseCopyLine(std::string_view line, size_t columns, std::vector<Datum>& out);

}  // namespace pgfanout
