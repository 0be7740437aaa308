#pragma once

#include "src/config/config.h"
#include "src/core/error.h"
#include "src/pgclient/pg_connection.h"

namespace pgfanout {

// Makes the publication (source.publication) list every tracked table as the config
// says: created WITH (publish_via_partition_root = true) when missing, tables added when
// missing, and a table's row filter and column list (tables[].where, tables[].columns)
// set when they differ. The changes run in one transaction that also checks what
// PostgreSQL 15 would only check at the application's next UPDATE or DELETE: every
// column the row filter reads is in the table's replica identity. A failed check rolls it
// all back, so the primary's writes never start failing.
//
// Refused: an existing publication without publish_via_partition_root while a tracked
// table is partitioned (pgfanout does not change that option: other subscribers may read
// the publication), and a table the publication filters or narrows while the config does
// not say so (a copy would then hold rows and columns the stream never sends).
//
// Returns whether it created the publication.
Result<bool> EnsurePublication(const Config& config, const PgConnection& sql);

}  // namespace pgfanout
