#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "src/config/config.h"
#include "src/pgclient/pg_connection.h"
#include "src/pipeline/row_fetcher.h"

namespace pgfanout {

// RowFetcher over an ordinary connection to the source (opened on first use, reopened
// after a loss). Per table of a call, one SELECT per 200 events:
//   SELECT <key>, <tenant>, <missing columns> FROM ONLY t WHERE (<tenant>, <key>) IN (...)
// (without ONLY for a partitioned table: its rows are in its partitions).
// Read in a REPEATABLE READ transaction whose snapshot shows the events' transactions
// committed (BeginSeeing). Values come back in text form from the type's output function,
// as pgoutput sends them.
// Columns the table no longer has (dropped since the event) are left NULL; a table that
// is gone reports every row gone.
class SourceRowFetcher final : public RowFetcher {
 public:
  // `tables`: the tracked tables, for their tenant columns.
  SourceRowFetcher(SourceConfig source, std::vector<TableConfig> tables);

  Result<std::vector<bool>> Fill(std::span<ChangeEvent* const> events) override;

 private:
  // Opens a REPEATABLE READ transaction whose snapshot shows every transaction of `xids`
  // committed. The walsender can send a commit before the committing backend leaves the
  // procarray (a synchronous commit waits between the two), so a snapshot taken as soon
  // as the change arrives may lack its rows; a moved-in row would then be dropped as gone.
  Result<void> BeginSeeing(const std::set<uint32_t>& xids);
  // Fills `events`, all of one table shape; found[i] for each.
  Result<void> FillTable(std::span<ChangeEvent* const> events, std::vector<bool>& found);

  SourceConfig source_;
  std::vector<TableConfig> tables_;
  std::optional<PgConnection> conn_;
};

}  // namespace pgfanout
