#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/config/config.h"
#include "src/core/error.h"
#include "src/pipeline/sink_fleet.h"

namespace pgfanout {

// `pgfanout resnapshot` and the daemon's route for it, POST
// /resnapshot?sink=ID[&table=T][&replace=false][&where=EXPR]: copy a sink's rows of some tables
// again while every sink, that one included, keeps streaming (SinkRunner::RequestResnapshot; the
// copy is backfill.h's live copy).

struct ResnapshotQuery {
  std::string sink;
  std::optional<std::string> table;  // "schema.name", or "name" in public; unset: every table
  bool replace = true;  // rows the copy does not find on the source are removed (row sinks)
  // Only rows this Predicate (src/core/predicate.h) holds for; implies replace = false.
  std::optional<std::string> where;
};
// kInvalidArgument naming the parameter.
Result<ResnapshotQuery> ParseResnapshotQuery(std::string_view query);
// The query string of `ask`, percent-encoded.
std::string ResnapshotQueryString(const ResnapshotQuery& ask);

// The qualified tables a resnapshot of `sink` copies: `table`, which the sink must
// receive, or every table it receives. kInvalidArgument saying what is wrong.
Result<std::vector<std::string>> ResnapshotTables(const Config& config, const SinkConfig& sink,
                                                  const std::optional<std::string>& table);

// Asks sink `sink_id` of `fleet` to copy `table` again (every table it receives when
// unset): the tables asked, or kNotFound (no such sink), kInvalidArgument (a table),
// kBusy (SinkRunner::RequestResnapshot's reasons). On the daemon's loop.
Result<std::vector<std::string>> AskResnapshot(const Config& config, SinkFleet& fleet,
                                               const std::string& sink_id,
                                               const std::optional<std::string>& table,
                                               bool replace, const std::string& origin,
                                               const std::string& where = {});

// The command: asks the running daemon at `address` ("host:port"; empty: the config's
// http.listen) with the token of http.token_file; with `wait`, follows the sink's status
// until the copy is done, printing its progress. Returns the exit code.
int ResnapshotCommand(const Config& config, const ResnapshotQuery& ask, std::string address,
                      bool wait);

}  // namespace pgfanout
