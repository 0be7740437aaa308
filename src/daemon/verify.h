#pragma once

#include <string>

#include "src/config/config.h"

namespace pgfanout {

// `pgfanout verify --sink ID [--table T]`: compares one postgres sink's target tables with
// the source rows of its tenants (every row for a "*" sink; tables without a tenant column
// only for "*" sinks) on the key and every copied column, as text. Computed columns are not
// compared; rows soft-deleted in the target count as absent. Prints a line per table
// (counts) and the first differences (missing in target, unexpected in target, differs),
// then `sink ID: in sync` or `sink ID: N differences`.
// Read-only on both servers, each side one REPEATABLE READ snapshot; never opens the state
// dir, so it runs beside the daemon (rows changing meanwhile may show as differences).
// `table` ("public.users", "users", `public."Team Rooms"`; "" for every mapped table)
// limits it to one table. Returns 0 in sync, 1 when something differs, 2 on bad arguments
// (unknown sink or table, a sink that is not postgres) or when it cannot compare
// (connection or query failure, a mapping that no longer fits the source).
int VerifySink(const Config& config, const std::string& sink_id, const std::string& table);

}  // namespace pgfanout
