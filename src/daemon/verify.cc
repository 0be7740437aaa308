#include "src/daemon/verify.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <vector>

#include "src/daemon/verify_compare.h"
#include "src/daemon/verify_plan.h"
#include "src/pgclient/pg_connection.h"

namespace pgfanout {
namespace {

constexpr size_t kListLimit = 100;  // differences listed per table

struct MappedTable {
  const TableConfig* table;
  SinkTableConfig mapping;
};

// The tables whose rows reach `sink`: it maps them, and they have a tenant column unless
// the sink takes every tenant (the router sends tenant-less tables to "*" sinks only).
std::vector<MappedTable> MappedTables(const Config& config, const SinkConfig& sink) {
  std::vector<MappedTable> out;
  for (const auto& t : config.tables) {
    SinkTableConfig fallback;
    if (sink.Receives(t)) out.push_back({&t, *sink.FindTable(t.QualifiedName(), fallback)});
  }
  return out;
}

// Pins what text forms depend on beyond PgConnection's settings (timestamptz, bytea), so
// both servers print equal values alike, and opens the side's snapshot.
Result<void> BeginSnapshot(const PgConnection& conn, std::string_view peer) {
  PGF_TRY(conn.ExecSimple(fmt::format("starting a read-only snapshot on the {}", peer),
                          "SET TIME ZONE 'UTC'; SET bytea_output = 'hex'; "
                          "SET application_name = 'pgfanout verify'; "
                          "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  return boost::outcome_v2::success();
}

// Compares every table; the number of differences, or the error that stopped it.
Result<uint64_t> VerifyTables(const SinkConfig& sink, const std::vector<MappedTable>& tables,
                              const PgConnection& source, const PgConnection& target) {
  uint64_t total = 0;
  for (const auto& [table, mapping] : tables) {
    PGF_TRY(auto plan, PlanTableVerify(sink, *table, mapping, source, target));
    const std::string head = fmt::format("table {} -> {}", plan.source_name, plan.target_name);
    if (!plan.problem.empty()) {
      fmt::print("{}: not compared: {}\n", head, plan.problem);
      ++total;
      continue;
    }
    PGF_TRY(auto r, CompareTable(plan, source, target, kListLimit));
    fmt::print("{}: source {} rows, target {} rows, {} missing, {} unexpected, {} differing\n",
               head, r.source_rows, r.target_rows, r.missing, r.unexpected, r.differing);
    if (!plan.target.exists) fmt::print("  (the target table does not exist)\n");
    if (plan.whole_row_key) {
      fmt::print(
          "  (no key: rows are matched on every column; a changed row shows as missing "
          "plus unexpected)\n");
    }
    if (!plan.computed.empty()) {
      std::string names;
      for (const auto& c : plan.computed) names += (names.empty() ? "" : ", ") + DisplayIdent(c);
      fmt::print("  (computed columns, not compared: {})\n", names);
    }
    for (const auto& line : r.listing) fmt::print("  {}\n", line);
    if (r.Differences() > r.listing.size()) {
      fmt::print("  … {} more\n", r.Differences() - r.listing.size());
    }
    std::fflush(stdout);
    total += r.Differences();
  }
  return total;
}

}  // namespace

int VerifySink(const Config& config, const std::string& sink_id, const std::string& table) {
  const SinkConfig* sink = config.FindSink(sink_id);
  if (!sink) {
    spdlog::error("{}: no sink with id '{}'", config.path, sink_id);
    return 2;
  }
  const auto* pg = std::get_if<PostgresSinkOptions>(&sink->options);
  if (!pg) {
    spdlog::error("sink {} is a {} sink; verify compares postgres sinks only", sink_id,
                  sink->type());
    return 2;
  }
  auto tables = MappedTables(config, *sink);
  if (!table.empty()) {
    auto name = ParseQualifiedName(table, "public");
    if (!name) {
      spdlog::error("--table: '{}' is not a table name (expected [schema.]table, as in the config)",
                    table);
      return 2;
    }
    std::erase_if(tables, [&](const MappedTable& m) {
      return m.table->schema != name->first || m.table->name != name->second;
    });
    if (tables.empty()) {
      const bool tracked = config.FindTable(name->first, name->second) != nullptr;
      spdlog::error("--table {}: {}", table,
                    tracked ? fmt::format("sink {} does not receive this table's rows", sink_id)
                            : fmt::format("not in the tables: of {}", config.path));
      return 2;
    }
  }

  auto source = PgConnection::Connect(config.source.dsn, PgConnection::Mode::kNormal, "source",
                                      config.source.password);
  if (!source) {
    spdlog::error("{}", source.error().message);
    return 2;
  }
  auto target = PgConnection::Connect(pg->dsn, PgConnection::Mode::kNormal,
                                      "target of sink " + sink_id, pg->password);
  if (!target) {
    spdlog::error("{}", target.error().message);
    return 2;
  }
  auto snapshots = BeginSnapshot(source.value(), "source");
  if (snapshots) snapshots = BeginSnapshot(target.value(), "target");
  if (!snapshots) {
    spdlog::error("{}", snapshots.error().message);
    return 2;
  }

  std::string tenants;
  for (const auto& t : sink->tenants) tenants += (tenants.empty() ? "" : ", ") + t;
  fmt::print(
      "verify sink {} (tenants [{}])\n  source: {}\n  target: {}\n"
      "Compares each row's key and copied columns as text; computed columns are not compared, "
      "and rows soft-deleted in the target count as absent. Each side is read in one "
      "REPEATABLE READ snapshot: rows changed while verify runs may show as differences (run "
      "it again, or once the sink has caught up: pgfanout status).\n",
      sink_id, tenants, RedactDsn(config.source.dsn), RedactDsn(pg->dsn));
  std::fflush(stdout);

  auto total = VerifyTables(*sink, tables, source.value(), target.value());
  if (!total) {
    spdlog::error("verify of sink {} stopped: {}", sink_id, total.error().message);
    return 2;
  }
  if (total.value() == 0) {
    fmt::print("sink {}: in sync\n", sink_id);
    return 0;
  }
  fmt::print("sink {}: {} difference{}\n", sink_id, total.value(), total.value() == 1 ? "" : "s");
  return 1;
}

}  // namespace pgfanout
