#pragma once

#include <fmt/format.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/change_event.h"

namespace pgfanout {

// Formats events as JSONL lines (the format is in src/sinks/README.md). Keeps what the
// events of one transaction and one table have in common (the commit LSN, time and xid
// text, the escaped schema, table and column names) from one event to the next: most
// events of a batch share them, and this is the JSONL sink's hot path.
//
// Threads: one owner. The cache keys on the TableSchema's address, which the event log
// keeps alive while any event points at it.
class JsonlFormatter {
 public:
  // Appends the line for `event` (with its newline). `truncate_scope`: the tenants a
  // per-tenant sink's TRUNCATE applies to (named in the line).
  void Format(const ChangeEvent& event, fmt::memory_buffer& out,
              std::span<const std::string> truncate_scope = {});

 private:
  void Learn(const TableSchema& table);
  static void AppendName(std::string_view name, fmt::memory_buffer& out);

  Lsn tx_lsn_;
  int64_t tx_time_ = 0;
  uint32_t tx_xid_ = 0;
  std::string lsn_text_;  // the commit LSN as X/X
  std::string tx_tail_;   // ","lsn":"X/X","commit_time":"…","xid":N,
  const TableSchema* schema_ = nullptr;
  std::string schema_fragment_;          // "schema":"…","table":"…"
  std::vector<std::string> column_keys_;  // per column: "name":
};

}  // namespace pgfanout
