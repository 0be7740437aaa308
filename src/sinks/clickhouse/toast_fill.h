#pragma once

#include "src/core/error.h"
#include "src/sinks/clickhouse/change_plan.h"
#include "src/sinks/clickhouse/clickhouse_http.h"
#include "src/sinks/clickhouse/row_encoder.h"

namespace pgfanout::clickhouse {

// ClickHouse has no partial update: a row is always inserted whole. A value Postgres did
// not resend (an UPDATE that left a TOASTed column alone, kUnchangedToast) and no earlier
// change of the batch supplied is read from the row the target holds at `toast_from`
// (SELECT … FINAL, the newest version), with one query per ~90 kB of keys per table,
// before the table's rows of this step are inserted.
//
// Why that value is right: the target row is the row's state after the changes before
// this batch, and the column has not changed since (else the server would have sent it).
// On a replay the target may hold a newer version; the value read then is newer too, but
// the row written carries the older version, which FINAL ranks below the newer one.
//
// The values read are the target's text form, written back as such: exact for the types
// Postgres TOASTs (text, json, bytea, arrays, numeric → String or Decimal), which the
// sink stores as their text. A row the target does not hold (live) keeps
// kUnchangedToast: it is written NULL (the target never had the value; see README.md).
Result<void> FillUnchangedValues(ClickHouseHttp& ch, const RowEncoder& encoder,
                                 PlannedTable& table);

}  // namespace pgfanout::clickhouse
