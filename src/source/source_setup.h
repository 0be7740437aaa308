#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "decoders/wal2json/options.h"
#include "src/config/config.h"
#include "src/core/error.h"
#include "src/pgclient/pg_connection.h"

namespace pgfanout {

struct SourceIdentity {
  std::string system_id;  // IDENTIFY_SYSTEM's systemid
  uint32_t timeline = 0;
  Lsn server_lsn;          // the server's current WAL flush position
  Lsn slot_confirmed_lsn;  // the slot's confirmed_flush_lsn after setup
  bool slot_created = false;
  // Qualified table name -> the row's key columns: the config's `key:`, else the replica
  // identity index's columns, else the primary key's.
  std::map<std::string, std::vector<std::string>> keys;
  // Set when source.decoder is wal2json: the tracked tables as the catalog describes them
  // now, and the server's logical_decoding_work_mem as the reader's streaming threshold.
  std::optional<wal2json::ReaderOptions> wal2json;
};

// Makes the source ready to stream, on every connect:
// - IDENTIFY_SYSTEM, and a check that the server is the cluster the state dir recorded;
// - the timeline: recorded on first success; on a later one (a failover, a point-in-time
//   restore) TIMELINE_HISTORY must show that the old timeline ended at or after the event
//   log's durable LSN, else kMismatch (the log holds transactions the server lacks). An
//   older timeline is kMismatch too. On a later timeline the slot is a copy (Patroni's, a
//   base backup's): it must have a saved snapshot at its restart_lsn
//   (pg_logical/snapshots), else kMismatch, since decoding would skip the transactions
//   that commit while the server rebuilds one. The new timeline is recorded only once
//   the slot passes;
// - every tracked table exists and has a replica identity (else UPDATE/DELETE on it would
//   fail once it is published: the message says which ALTER TABLE fixes it); a table a
//   per-tenant sink reads has its tenant column in the replica identity (else rows moving
//   between tenants could not be followed; the message gives the ALTER TABLE); every
//   column a sink mapping names exists, and explicit column lists keep the key;
// - pgoutput: the publication exists and covers the tracked tables (created or extended
//   with the SQL in migrations/source/ otherwise). wal2json needs no publication (the
//   stream names the tables itself) and none is made, so pgfanout needs no ownership of
//   the tables; instead bytea_output must be hex (wal2json cuts the "\x" off the text it
//   prints) and the catalog of each table is read into SourceIdentity::wal2json;
// - the slot exists, uses the configured decoder's plugin, belongs to this database, is
//   not invalidated, and has not been confirmed past what the state dir holds. A slot the
//   state dir recorded but the server lacks is an error (kMismatch), never a silent new
//   slot: changes would be lost. A missing slot is created (with that plugin) only when
//   the state dir is new.
// Records the system id and slot in the log's metadata on first success.
Result<SourceIdentity> PrepareSource(const Config& config, const PgConnection& sql,
                                     const PgConnection& replication, EventLog& log);

}  // namespace pgfanout
