#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/core/error.h"
#include "src/daemon/verify_plan.h"
#include "src/pgclient/pg_connection.h"

namespace pgfanout {

struct TableVerifyResult {
  uint64_t source_rows = 0;
  uint64_t target_rows = 0;
  uint64_t missing = 0;     // in the source, not in the target
  uint64_t unexpected = 0;  // in the target, not among the source rows of the sink's tenants
  uint64_t differing = 0;   // in both, and some compared column differs
  // The first `list_limit` differences, one line each: "missing in target: (id)=(42)",
  // "unexpected in target: (id)=(43)", "differs: (id)=(44): column email: source 'a@x'
  // target 'b@x'".
  std::vector<std::string> listing;

  uint64_t Differences() const { return missing + unexpected + differing; }
};

// Compares the rows `plan` describes, as text (`"col"::text` on each side), on the key and
// every copied column. Each side first hashes its rows into buckets by key (md5 of the
// key's text, so both sides agree whatever their types and collations), the two servers
// in parallel; only buckets whose count or hash differ are read back, both sides in the
// same (bucket, key text) order, and merged. Logs progress every few seconds.
// The caller holds each connection in a REPEATABLE READ transaction with the same
// TimeZone and bytea_output; the cursor this opens is closed before returning.
// Errors: Exec's (kConnection, kProtocol).
Result<TableVerifyResult> CompareTable(const TableVerifyPlan& plan, const PgConnection& source,
                                       const PgConnection& target, size_t list_limit);

}  // namespace pgfanout
