#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "test/faults/workload.h"

namespace pgfanout::faults {

// One change as a sink received or applied it.
struct Delivery {
  enum class Table { kLedger, kAccounts };
  Table table = Table::kLedger;
  char op = 'i';  // 'i' insert, 'u' update, 'd' delete
  std::string tenant;
  int64_t key = 0;      // ledger: op_id; accounts: account id
  int64_t version = 0;  // accounts: the row's version; ledger: 0
  // The event id (commit LSN, ordinal), for sinks that carry it (JSONL, NATS, webhook).
  std::optional<std::pair<uint64_t, uint32_t>> id;
};

// Rows of the workload's tables.
struct TableState {
  std::set<std::pair<std::string, int64_t>> ledger;                          // (tenant, op_id)
  std::map<std::pair<std::string, int64_t>, std::pair<int64_t, int64_t>> accounts;  // -> (version, balance)
};

// What one sink shows: the changes it received in order (raw deliveries) and/or the rows
// it ends up holding (effect).
struct SinkView {
  std::string name;
  std::set<std::string> tenants;  // empty: every tenant
  // Raw deliveries in the order the sink got them. `compacts`: the sink may merge several
  // changes of one key into one (the Postgres sink does per batch), so a missing
  // intermediate version is not a loss there; only the final rows can show one.
  std::optional<std::vector<Delivery>> deliveries;
  bool compacts = false;
  // The sink promises each change once (JSONL truncates back to its cursor, NATS drops a
  // re-published id, the Postgres sink commits its position with the rows): a change seen
  // twice is a duplicate effect. false for an at-least-once sink (a webhook resends).
  bool exactly_once = true;
  // The sink promises commit order across keys (JSONL, NATS, webhook): each delivery's id
  // must be above the one before it. A row sink applies a batch per table, not in id order.
  bool commit_order = false;
  std::optional<TableState> rows;
};

struct SinkFindings {
  std::string name;
  int64_t delivered = 0;
  int64_t lost = 0;               // a committed change absent (raw), or a row missing/stale
  int64_t duplicated_raw = 0;     // the same change received again
  int64_t duplicated_effect = 0;  // a change applied twice: a deleted row back, a sum off
  int64_t unexpected = 0;         // a change nobody committed, or another tenant's row
  int64_t order_violations = 0;   // per key, a change after a newer one; per sink, a
                                  // change after a later transaction's (commit_order)
  bool exactly_once = true;       // SinkView::exactly_once: duplicated_raw is an offence
  std::vector<std::string> examples;  // the first few offences, for a person
};

// Jepsen-style summary of one scenario run.
struct Report {
  std::string scenario;
  int64_t attempted = 0, committed = 0, failed = 0, unknown = 0, unknown_committed = 0;
  std::vector<SinkFindings> sinks;
  // Filled by the scenario.
  int faults = 0;                      // kills, crashes, stops injected
  std::vector<double> recovery_s;      // per fault: until every sink passed the fault's LSN
  int recoveries_censored = 0;         // next fault came before recovery completed
  int64_t max_replay_window_bytes = 0;  // WAL the server re-sent after a restart
  int64_t peak_retained_wal_bytes = 0;
  int64_t peak_rss_bytes = 0;
  double seconds = 0;
  std::string notes;

  int64_t Lost() const;
  int64_t DuplicatedEffect() const;
  int64_t DuplicatedRaw() const;
  // Raw duplicates of sinks that promise each change once: each is a change applied twice.
  int64_t DuplicatedOnce() const;
  int64_t Unexpected() const;
  int64_t OrderViolations() const;
  // Nothing lost, nothing applied twice (a duplicate effect, or a raw duplicate where the
  // sink promises once), nothing unexpected, nothing out of order.
  bool Valid() const {
    return Lost() == 0 && DuplicatedEffect() == 0 && DuplicatedOnce() == 0 && Unexpected() == 0 &&
           OrderViolations() == 0;
  }
  double RecoveryPercentile(double p) const;  // -1 when none measured
  std::string ToText() const;
  // One Markdown table row; MarkdownHeader() names the columns.
  std::string ToMarkdownRow() const;
  static std::string MarkdownHeader();
  // One CSV line of the raw result (test/faults/results/faults.csv); CsvHeader() names
  // the columns. Text fields are quoted.
  std::string ToCsvRow() const;
  static std::string CsvHeader();
};

// Compares the workload's history and the source's final rows with what each sink shows.
// Unknown outcomes are settled by the source: an op whose ledger row is there committed.
Report Check(const std::string& scenario, const std::vector<Op>& history,
             const TableState& source, const std::vector<SinkView>& sinks);

}  // namespace pgfanout::faults
