#pragma once

#include <map>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
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
};

// Makes the source ready to stream, on every connect:
// - IDENTIFY_SYSTEM, and a check that the server is the cluster the state dir recorded;
// - every tracked table exists and has a replica identity (else UPDATE/DELETE on it would
//   fail once it is published: the message says which ALTER TABLE fixes it); a table a
//   per-tenant sink reads has its tenant column in the replica identity (else rows moving
//   between tenants could not be followed; the message gives the ALTER TABLE); every
//   column a sink mapping names exists, and explicit column lists keep the key;
// - the publication exists and covers the tracked tables (created or extended with the
//   SQL in migrations/source/ otherwise);
// - the slot exists, uses pgoutput, belongs to this database, is not invalidated, and has
//   not been confirmed past what the state dir holds. A slot the state dir recorded but the
//   server lacks is an error (kMismatch), never a silent new slot: changes would be lost.
//   A missing slot is created only when the state dir is new.
// Records the system id and slot in the log's metadata on first success.
Result<SourceIdentity> PrepareSource(const Config& config, const PgConnection& sql,
                                     const PgConnection& replication, EventLog& log);

}  // namespace pgfanout
