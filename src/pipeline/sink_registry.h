#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "checkpoints/meta_records.h"
#include "src/config/config.h"
#include "src/config/sink_templates.h"
#include "src/core/error.h"
#include "src/pipeline/own_table_events.h"

namespace pgfanout {

// The sink registry: a table on the source (`sink_registry.table`) whose rows are sinks
// (src/config/sink_templates.h). Its changes come through the same slot as the rows they
// govern, so each takes effect at its exact position in commit order: Extract() takes them
// out of a group commit before it is appended (they are not data: no sink receives them),
// Apply() changes the rows, and the daemon stops, drops and starts sinks before that
// group commit becomes readable. A sink deleted at position P therefore never reads an
// event after P; one added at P copies its rows from a snapshot taken after P and follows
// the log from that snapshot's point.
//
// The rows are kept in the event log's metadata (meta::Registry, stored before the append
// that holds the changes) with the id of the last change applied: after a restart the
// registry is what it was at the log's position, and a change the server sends again (at
// or below that id) is skipped. A registry that was never read (a new state dir, or a
// registry newly configured) is read from the table once (Seed).
//
// Threads: the daemon's loop only.
class SinkRegistry {
 public:
  using Row = meta::Registry::Row;
  explicit SinkRegistry(SinkRegistryConfig config)
      : config_(std::move(config)), own_(config_.schema, config_.table) {}

  // The rows as stored; false when the log holds none yet.
  Result<bool> Load(const EventLog& log);
  // The rows read from the table, as of `applied` (the log's position when read).
  void Seed(std::vector<Row> rows, EventId applied);
  Result<void> Store(EventLog& log) const;

  // Moves the registry table's events out of `transactions` (their other events keep their
  // ids) and returns those after the last change applied, in commit order.
  std::vector<ChangeEvent> Extract(std::vector<TransactionRecord>& transactions) const;

  // The sink ids whose rows an Apply() changed.
  struct Delta {
    std::vector<std::string> changed;      // every sink_id a change touched, once, in order
    std::set<std::string> deleted;         // those deleted at some point (maybe added again)
    std::map<std::string, EventId> first;  // the first change of each, by sink_id
    bool empty() const { return changed.empty(); }
  };
  // Applies registry events in order. A row that does not decode (params not a JSON
  // object, a NULL tenant) is kept with its error, so that it shows.
  Delta Apply(const std::vector<ChangeEvent>& events);

  const std::vector<Row>& rows() const { return state_.rows; }
  const Row* Find(const std::string& sink_id) const;
  // Records why a row makes no sink beyond what the config can tell (a tenant value the
  // source writes in another form); empty: clears it.
  void SetRowError(const std::string& sink_id, std::string error);
  EventId applied() const { return state_.applied; }
  // Sinks retired while still delivering (meta::Registry::dropping), stored with the rows.
  std::vector<std::string>& dropping() { return state_.dropping; }

  // Definitions of the rows: the sinks they make, and for each row that makes none, why
  // ("registry: sink <id>: <column>: <what>").
  struct Resolved {
    std::vector<SinkConfig> sinks;              // in sink_id order
    std::map<std::string, std::string> errors;  // sink_id -> message
  };
  // A row's sink is made again only when the row, the templates or the static sinks
  // changed since (a registry of thousands of rows costs one instantiation per change).
  Resolved Resolve(const Config& config) const;

  // The row as the template instantiation takes it.
  static RegistryRow ToRegistryRow(const Row& row);

 private:
  SinkRegistryConfig config_;
  meta::Registry state_;
  mutable OwnTableEvents own_;  // Extract()
  // Resolve(): each row's verdict, made with these templates and static sinks.
  struct Made {
    Row row;
    Result<SinkConfig> sink;
  };
  mutable std::map<std::string, Made> made_;
  mutable std::vector<SinkTemplate> made_with_templates_;
  mutable std::vector<SinkConfig> made_with_sinks_;
};

// A registry row from the table's text output: `tenants` a text[] literal ({a,"b c"}),
// `params` a jsonb text. What does not decode is in the row's error, naming the column.
meta::Registry::Row DecodeRegistryRow(std::string sink_id, std::string template_name,
                                      std::string_view tenants, const std::string& params,
                                      bool enabled);

// The value of column `name` in `values` (a row of `table`); nullptr when the table has
// no such column.
const Datum* ValueOf(const TableSchema& table, const std::vector<Datum>& values,
                     std::string_view name);

// A Postgres one-dimensional text[] literal's elements; nullopt when malformed or an
// element is NULL.
std::optional<std::vector<std::string>> ParseTextArray(std::string_view literal);

}  // namespace pgfanout
