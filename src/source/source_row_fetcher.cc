#include "src/source/source_row_fetcher.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

namespace pgfanout {
namespace {

constexpr size_t kRowsPerQuery = 200;

// Length-prefixed join of values: a map key that no two different tuples share.
std::string Joined(const std::vector<const std::string*>& values) {
  std::string out;
  for (const std::string* v : values) {
    out += std::to_string(v->size());
    out += ':';
    out += *v;
  }
  return out;
}

}  // namespace

SourceRowFetcher::SourceRowFetcher(SourceConfig source, std::vector<TableConfig> tables)
    : source_(std::move(source)), tables_(std::move(tables)) {}

Result<std::vector<bool>> SourceRowFetcher::Fill(std::span<ChangeEvent* const> events) {
  std::vector<bool> found(events.size(), false);
  // Group by shape, keeping the order of first appearance; a shape's events in runs of
  // kRowsPerQuery.
  std::map<const TableSchema*, std::vector<size_t>> by_table;
  for (size_t i = 0; i < events.size(); ++i) by_table[events[i]->table.get()].push_back(i);
  for (const auto& [table, indexes] : by_table) {
    for (size_t at = 0; at < indexes.size(); at += kRowsPerQuery) {
      std::vector<ChangeEvent*> run;
      for (size_t j = at; j < std::min(indexes.size(), at + kRowsPerQuery); ++j) {
        run.push_back(events[indexes[j]]);
      }
      std::vector<bool> run_found(run.size(), false);
      auto r = FillTable(run, run_found);
      if (!r) {
        if (r.error().kind == ErrorKind::kConnection) conn_.reset();
        return r.error().Wrap(
            fmt::format("reading rows of {} from the source (moved in from another tenant "
                        "with unchanged TOASTed values)",
                        table->QualifiedName()));
      }
      for (size_t j = 0; j < run.size(); ++j) found[indexes[at + j]] = run_found[j];
    }
  }
  return found;
}

// Whether the snapshot of the open transaction shows every transaction of $1 (32-bit xids)
// committed. Each is widened to a full xid below the snapshot's xmax; one at or past xmax
// (d = 0, or a "distance" of half the xid space or more) is not visible yet.
constexpr const char* kVisibleSql =
    "SELECT coalesce(bool_and(d > 0 AND d < 2147483648 AND "
    "  pg_visible_in_snapshot((q.x - d)::text::xid8, q.s)), true) "
    "FROM (SELECT s, pg_snapshot_xmax(s)::text::bigint AS x "
    "      FROM (SELECT pg_current_snapshot() AS s) a) q, "
    "  unnest($1::bigint[]) AS xid32, "
    "  LATERAL (SELECT ((q.x % 4294967296) - xid32 + 4294967296) % 4294967296 AS d) dd";

Result<void> SourceRowFetcher::BeginSeeing(const std::set<uint32_t>& xids) {
  std::string list;
  for (uint32_t x : xids) list += (list.empty() ? "" : ",") + std::to_string(x);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int attempt = 0;; ++attempt) {
    PGF_TRY(
        conn_->ExecSimple("reading the rows", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    auto seen = conn_->Exec("checking the changes' transactions are visible", kVisibleSql,
                            {"{" + list + "}"});
    if (seen && GetValue(seen.value(), 0, 0) == "t") return boost::outcome_v2::success();
    (void)conn_->ExecSimple("ending the read", "ROLLBACK");
    if (!seen) return seen.error();
    if (std::chrono::steady_clock::now() > deadline) {
      // kConnection: the runner retries the batch later, as after a lost connection.
      return MakeError(ErrorKind::kConnection,
                       fmt::format("the source still shows transaction(s) {} in progress 10 s "
                                   "after their commit was received (a synchronous commit "
                                   "waiting for a standby?)",
                                   list));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50, 1 << attempt)));
  }
}

Result<void> SourceRowFetcher::FillTable(std::span<ChangeEvent* const> events,
                                         std::vector<bool>& found) {
  const TableSchema& schema = *events.front()->table;
  if (!conn_) {
    PGF_TRY(auto c, PgConnection::Connect(source_.dsn, PgConnection::Mode::kNormal, "source",
                                          source_.password));
    conn_.emplace(std::move(c));
  }
  // The columns the table has now: the events' shape may be older than a DROP COLUMN.
  PGF_TRY(auto current,
          conn_->Exec("reading the table's columns",
                      "SELECT a.attname, c.relkind FROM pg_attribute a "
                      "JOIN pg_class c ON c.oid = a.attrelid WHERE a.attrelid = to_regclass($1) "
                      "AND a.attnum > 0 AND NOT a.attisdropped",
                      {QuoteIdent(schema.schema_name) + "." + QuoteIdent(schema.table_name)}));
  std::set<std::string> exists;
  for (int r = 0; r < PQntuples(current.get()); ++r) exists.insert(*GetValue(current, r, 0));
  // A partitioned table's rows are in its partitions (ONLY would find none); for a plain
  // table ONLY keeps inheritance children, which publish as themselves, out.
  const bool partitioned = PQntuples(current.get()) > 0 && GetValue(current, 0, 1) == "p";

  std::string tenant_column, row_filter;
  for (const auto& t : tables_) {
    if (t.schema == schema.schema_name && t.name == schema.table_name) {
      tenant_column = t.tenant_column;
      row_filter = t.row_filter;
    }
  }
  // Compared: the tenant column, then the replica identity's key columns.
  std::vector<size_t> compare;
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    if (schema.columns[i].name == tenant_column && !schema.columns[i].part_of_key) {
      compare.push_back(i);
    }
  }
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    if (schema.columns[i].part_of_key) compare.push_back(i);
  }
  bool key_known = false;
  for (const auto& c : schema.columns) key_known = key_known || c.part_of_key;
  for (size_t i : compare) key_known = key_known && exists.count(schema.columns[i].name) > 0;
  if (!key_known) {
    spdlog::warn(
        "{}: no longer on the source with its key columns; {} row(s) not read (moved-in "
        "inserts are left out, key changes kept as they came)",
        schema.QualifiedName(), events.size());
    return boost::outcome_v2::success();  // every row gone: later events settle them
  }
  // Fetched: the compared columns, then every column some event lacks and the table has.
  std::vector<size_t> fetch;
  std::vector<int> fetched_at(schema.columns.size(), -1);
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    if (!exists.count(schema.columns[i].name)) continue;
    for (ChangeEvent* e : events) {
      if (e->new_row[i].kind == ValueKind::kUnchangedToast) {
        fetched_at[i] = static_cast<int>(compare.size() + fetch.size());
        fetch.push_back(i);
        break;
      }
    }
  }

  std::string select, tuple;
  for (size_t i : compare) {
    const std::string col = QuoteIdent(schema.columns[i].name);
    select += (select.empty() ? "" : ", ") + col;
    tuple += (tuple.empty() ? "" : ", ") + col;
  }
  for (size_t i : fetch) select += ", " + QuoteIdent(schema.columns[i].name);
  std::vector<std::string> params;
  std::string in_list;
  std::vector<bool> asked(events.size(), false);
  for (size_t e = 0; e < events.size(); ++e) {
    const auto& row = events[e]->new_row;
    bool complete = true;
    for (size_t i : compare) complete = complete && row[i].kind == ValueKind::kText;
    if (!complete) continue;  // a NULL key or tenant matches no row
    asked[e] = true;
    std::string one;
    for (size_t i : compare) {
      params.push_back(row[i].text);
      one += (one.empty() ? "$" : ", $") + std::to_string(params.size());
    }
    in_list += (in_list.empty() ? "(" : ", (") + one + ")";
  }
  if (in_list.empty()) return boost::outcome_v2::success();
  std::set<uint32_t> xids;
  for (ChangeEvent* e : events) {
    if (e->xid.value >= 3) xids.insert(e->xid.value);  // 0-2: not a transaction (a copy)
  }
  PGF_TRY(BeginSeeing(xids));
  auto read = conn_->Exec(
      "reading the rows",
      fmt::format("SELECT {} FROM {}{}.{} WHERE ({}) IN ({}){}", select, partitioned ? "" : "ONLY ",
                  QuoteIdent(schema.schema_name), QuoteIdent(schema.table_name), tuple, in_list,
                  // A row the publication's filter no longer lets through is
                  // dropped like a gone one: the server sends its DELETE.
                  row_filter.empty() ? "" : " AND (" + row_filter + ")"),
      params);
  (void)conn_->ExecSimple("ending the read", read ? "COMMIT" : "ROLLBACK");
  PGF_TRY(auto rows, std::move(read));
  std::map<std::string, int> row_of;
  std::vector<std::string> texts(compare.size());
  for (int r = 0; r < PQntuples(rows.get()); ++r) {
    std::vector<const std::string*> values;
    for (size_t c = 0; c < compare.size(); ++c) {
      texts[c] = GetValue(rows, r, static_cast<int>(c)).value_or("");
      values.push_back(&texts[c]);
    }
    row_of[Joined(values)] = r;
  }
  for (size_t e = 0; e < events.size(); ++e) {
    if (!asked[e]) continue;
    auto& row = events[e]->new_row;
    std::vector<const std::string*> values;
    for (size_t i : compare) values.push_back(&row[i].text);
    auto hit = row_of.find(Joined(values));
    if (hit == row_of.end()) continue;
    found[e] = true;
    for (size_t i = 0; i < row.size(); ++i) {
      if (row[i].kind != ValueKind::kUnchangedToast) continue;
      auto value = fetched_at[i] < 0 ? std::nullopt : GetValue(rows, hit->second, fetched_at[i]);
      row[i] = value ? Datum{ValueKind::kText, std::move(*value)} : Datum{};
    }
  }
  return boost::outcome_v2::success();
}

}  // namespace pgfanout
