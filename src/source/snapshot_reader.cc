#include "src/source/snapshot_reader.h"

#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "src/source/table_catalog.h"

namespace pgfanout {
namespace {

std::string KeyList(const TableConfig& t) {
  std::string out;
  for (size_t i = 0; i < t.key.size(); ++i) out += (i ? ", " : "") + QuoteIdent(t.key[i]);
  return out;
}

std::string Row(const KeyValues& values) {
  std::string out = "ROW(";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + QuoteLiteral(values[i]);
  return out + ")";
}

// The WHERE clause selecting the tenants' rows (all rows when `tenants` is empty), by
// their text form as the router compares them, and of those only the ones the
// publication's row filter lets through (the stream carries no other).
std::string TenantFilter(const TableConfig& t, const std::vector<std::string>& tenants) {
  std::string where = "true";
  if (!tenants.empty() && !t.tenant_column.empty()) {
    where = "(" + TenantTextMatch(QuoteIdent(t.tenant_column), tenants, /*indexable=*/true) + ")";
  }
  if (!t.row_filter.empty()) where += " AND (" + t.row_filter + ")";
  return where;
}

std::string TableName(const TableConfig& t) {
  return QuoteIdent(t.schema) + "." + QuoteIdent(t.name);
}

}  // namespace

Result<void> ParseCopyLine(std::string_view line, size_t columns, std::vector<Datum>& out) {
  out.clear();
  out.reserve(columns);
  size_t at = 0;
  while (true) {
    size_t tab = line.find('\t', at);
    std::string_view field = line.substr(at, tab == std::string_view::npos ? tab : tab - at);
    if (field == "\\N") {
      out.push_back(Datum{});
    } else {
      Datum d{ValueKind::kText, {}};
      d.text.reserve(field.size());
      for (size_t i = 0; i < field.size(); ++i) {
        char c = field[i];
        if (c != '\\') {
          d.text.push_back(c);
          continue;
        }
        if (++i == field.size()) return MakeError(ErrorKind::kProtocol, "COPY line ends in '\\'");
        switch (field[i]) {
          case 'b':
            d.text.push_back('\b');
            break;
          case 'f':
            d.text.push_back('\f');
            break;
          case 'n':
            d.text.push_back('\n');
            break;
          case 'r':
            d.text.push_back('\r');
            break;
          case 't':
            d.text.push_back('\t');
            break;
          case 'v':
            d.text.push_back('\v');
            break;
          default:
            d.text.push_back(field[i]);
            break;  // "\\" and any other escaped char
        }
      }
      out.push_back(std::move(d));
    }
    if (tab == std::string_view::npos) break;
    at = tab + 1;
  }
  if (out.size() != columns) {
    return MakeError(ErrorKind::kProtocol,
                     fmt::format("COPY row has {} fields, expected {}", out.size(), columns));
  }
  return boost::outcome_v2::success();
}

Result<std::unique_ptr<SnapshotReader>> SnapshotReader::Begin(const std::string& dsn,
                                                              const std::string& password,
                                                              const std::string& slot_name) {
  PGF_TRY(auto repl,
          PgConnection::Connect(dsn, PgConnection::Mode::kReplication, "source", password));
  PGF_TRY(auto sql, PgConnection::Connect(dsn, PgConnection::Mode::kNormal, "source", password));
  PGF_TRY(auto created,
          repl.ExecSimple("creating a temporary slot to export a snapshot",
                          fmt::format("CREATE_REPLICATION_SLOT {} TEMPORARY LOGICAL pgoutput "
                                      "(SNAPSHOT 'export')",
                                      repl.QuoteIdent(slot_name))));
  auto lsn = Lsn::Parse(GetValue(created, 0, 1).value_or(""));
  auto name = GetValue(created, 0, 2);
  if (!lsn || !name) {
    return MakeError(ErrorKind::kProtocol, "CREATE_REPLICATION_SLOT returned no snapshot");
  }
  std::unique_ptr<SnapshotReader> reader(new SnapshotReader(std::move(repl), std::move(sql)));
  reader->dsn_ = dsn;
  reader->password_ = password;
  reader->snapshot_name_ = *name;
  reader->consistent_lsn_ = *lsn;
  PGF_TRY(reader->sql_.ExecSimple("importing the snapshot",
                                  "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                                  "SET TRANSACTION SNAPSHOT " +
                                      QuoteLiteral(*name)));
  return reader;
}

SnapshotReader::~SnapshotReader() = default;

Result<void> SnapshotReader::DonePlanning() {
  PGF_TRY(sql_.ExecSimple("ending the planning transaction", "COMMIT"));
  return boost::outcome_v2::success();
}

Result<PgConnection> SnapshotReader::Import() const {
  PGF_TRY(auto conn,
          PgConnection::Connect(dsn_, PgConnection::Mode::kNormal, "source", password_));
  PGF_TRY(conn.ExecSimple("limiting lock waits", "SET lock_timeout = '10s'"));
  PGF_TRY(conn.ExecSimple("importing the snapshot",
                          "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                          "SET TRANSACTION SNAPSHOT " +
                              QuoteLiteral(snapshot_name_)));
  return conn;
}

Result<std::vector<SnapshotReader::Table>> SnapshotReader::Describe(
    const std::vector<TableConfig>& tables, const std::vector<std::string>& tenants) {
  std::vector<Table> out;
  for (const auto& t : tables) {
    PGF_TRY(auto catalog, ReadTableCatalog(sql_, t));
    if (!catalog) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "table " + t.QualifiedName() + " does not exist on the source");
    }
    Table table{.config = t};
    table.config.key = catalog->KeyFor(t);
    if (table.config.key.empty()) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "table " + t.QualifiedName() +
                           " has no key to copy it by (no primary key; set key: in tables:)");
    }
    auto schema = std::make_shared<TableSchema>();
    schema->relation_id = RelationId{catalog->oid};
    schema->schema_name = t.schema;
    schema->table_name = t.name;
    schema->replica_identity = catalog->replica_identity;
    for (const auto& c : catalog->columns) {
      bool key = std::find(table.config.key.begin(), table.config.key.end(), c.name) !=
                 table.config.key.end();
      schema->columns.push_back(ColumnSchema{.name = c.name,
                                             .type_oid = c.type_oid,
                                             .type_modifier = c.type_modifier,
                                             .part_of_key = key});
    }
    table.schema = std::move(schema);
    PGF_TRY(auto count, sql_.Exec("counting rows of " + t.QualifiedName(),
                                  fmt::format("SELECT count(*) FROM {} WHERE {}", TableName(t),
                                              TenantFilter(t, tenants))));
    table.estimated_rows = std::stoull(GetValue(count, 0, 0).value_or("0"));
    out.push_back(std::move(table));
  }
  return out;
}

Result<void> SnapshotReader::Plan(const Table& table, const std::vector<std::string>& tenants,
                                  size_t ranges, TableCopyState& state) {
  if (state.Planned()) return boost::outcome_v2::success();
  const TableConfig& t = table.config;
  state.splits.clear();
  if (ranges > 1 && table.estimated_rows > ranges * 1000) {
    for (size_t i = 1; i < ranges; ++i) {
      PGF_TRY(auto r, sql_.Exec("splitting " + t.QualifiedName(),
                                fmt::format("SELECT {} FROM {} WHERE {} ORDER BY {} OFFSET {} "
                                            "LIMIT 1",
                                            KeyList(t), TableName(t), TenantFilter(t, tenants),
                                            KeyList(t), table.estimated_rows * i / ranges)));
      if (PQntuples(r.get()) == 0) break;
      KeyValues split;
      for (int c = 0; c < PQnfields(r.get()); ++c) split.push_back(GetValue(r, 0, c).value_or(""));
      if (state.splits.empty() || state.splits.back() != split) state.splits.push_back(split);
    }
  }
  state.last.assign(state.splits.size() + 1, std::nullopt);
  state.done.assign(state.splits.size() + 1, false);
  return boost::outcome_v2::success();
}

namespace {

// One chunk's COPY statement: rows of range `range` after `last` (or from its start).
std::string ChunkSql(const SnapshotReader::Table& table, const std::vector<std::string>& tenants,
                     const TableCopyState& state, size_t range,
                     const std::optional<KeyValues>& last, size_t chunk_rows) {
  const TableConfig& t = table.config;
  std::string where = TenantFilter(t, tenants);
  const std::string key = "ROW(" + KeyList(t) + ")";
  if (last) {
    where += " AND " + key + " > " + Row(*last);
  } else if (range > 0) {
    where += " AND " + key + " >= " + Row(state.splits[range - 1]);
  }
  if (range < state.splits.size()) where += " AND " + key + " < " + Row(state.splits[range]);
  std::string columns;
  for (size_t i = 0; i < table.schema->columns.size(); ++i) {
    columns += (i ? ", " : "") + QuoteIdent(table.schema->columns[i].name);
  }
  return fmt::format("COPY (SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {}) TO STDOUT", columns,
                     TableName(t), where, KeyList(t), chunk_rows);
}

Result<std::vector<std::vector<Datum>>> CopyOut(const PgConnection& conn, const std::string& sql,
                                                size_t columns) {
  PGresult* started = PQexec(conn.get(), sql.c_str());
  if (PQresultStatus(started) != PGRES_COPY_OUT) {
    std::string message = started ? ServerErrorText(started) : conn.LastError();
    const char* state = started ? PQresultErrorField(started, PG_DIAG_SQLSTATE) : nullptr;
    const std::string sqlstate = state ? state : "";
    PQclear(started);
    auto kind =
        PQstatus(conn.get()) == CONNECTION_OK ? ErrorKind::kProtocol : ErrorKind::kConnection;
    // A lock wait given up, or chosen as a deadlock victim against a DDL: try again later.
    if (sqlstate == "55P03" || sqlstate == "40P01") kind = ErrorKind::kSink;
    return MakeError(kind, "snapshot copy: " + message);
  }
  PQclear(started);
  std::vector<std::vector<Datum>> rows;
  char* buf = nullptr;
  int n = 0;
  while ((n = PQgetCopyData(conn.get(), &buf, 0)) > 0) {
    std::string_view line(buf, static_cast<size_t>(n));
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    rows.emplace_back();
    auto parsed = ParseCopyLine(line, columns, rows.back());
    PQfreemem(buf);
    if (!parsed) return parsed.error();
  }
  std::optional<Error> failed;
  if (n == -2) failed = MakeError(ErrorKind::kConnection, "snapshot copy: " + conn.LastError());
  while (PGresult* r = PQgetResult(conn.get())) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && !failed) {
      failed =
          MakeError(ErrorKind::kProtocol, std::string("snapshot copy: ") + ServerErrorText(r));
    }
    PQclear(r);
  }
  if (failed) return *failed;
  return rows;
}

}  // namespace

Result<void> SnapshotReader::Read(const std::vector<Table>& tables,
                                  const std::vector<std::string>& tenants,
                                  const std::vector<TableCopyState>& states, size_t connections,
                                  size_t chunk_rows,
                                  const std::function<Result<void>(SnapshotChunk&&)>& on_chunk) {
  struct Item {
    size_t table, range;
    std::optional<KeyValues> last;
  };
  std::deque<Item> work;
  for (size_t t = 0; t < tables.size(); ++t) {
    for (size_t r = 0; r < states[t].done.size(); ++r) {
      if (!states[t].done[r]) work.push_back({t, r, states[t].last[r]});
    }
  }
  if (work.empty()) return boost::outcome_v2::success();
  const size_t workers = std::max<size_t>(1, std::min(connections, work.size()));
  std::mutex mu;
  std::condition_variable changed;
  std::deque<SnapshotChunk> ready;
  std::optional<Error> failed;
  size_t running = workers;
  bool stop = false;
  const size_t kMaxReady = 2 * workers;

  auto worker = [&]() {
    auto finish = [&](std::optional<Error> e) {
      std::lock_guard lock(mu);
      if (e && !failed) failed = std::move(e);
      if (failed) stop = true;
      --running;
      changed.notify_all();
    };
    auto conn = Import();
    if (!conn) return finish(conn.error());
    while (true) {
      Item item;
      {
        std::lock_guard lock(mu);
        if (stop || work.empty()) break;
        item = std::move(work.front());
        work.pop_front();
      }
      const Table& table = tables[item.table];
      while (true) {
        auto rows =
            CopyOut(conn.value(),
                    ChunkSql(table, tenants, states[item.table], item.range, item.last, chunk_rows),
                    table.schema->columns.size());
        if (!rows) return finish(rows.error());
        SnapshotChunk chunk{.table = item.table, .range = item.range};
        chunk.range_done = rows.value().size() < chunk_rows;
        if (!rows.value().empty()) {
          for (const auto& k : table.config.key) {
            size_t i = 0;
            while (table.schema->columns[i].name != k) ++i;
            chunk.last_key.push_back(rows.value().back()[i].text);
          }
          item.last = chunk.last_key;
        } else if (item.last) {
          chunk.last_key = *item.last;
        }
        chunk.rows = std::move(rows).value();
        const bool done = chunk.range_done;
        {
          std::unique_lock lock(mu);
          changed.wait(lock, [&] { return stop || ready.size() < kMaxReady; });
          if (stop) break;
          ready.push_back(std::move(chunk));
          changed.notify_all();
        }
        if (done) break;
      }
    }
    finish(std::nullopt);
  };

  std::vector<std::thread> threads;
  for (size_t i = 0; i < workers; ++i) threads.emplace_back(worker);
  while (true) {
    SnapshotChunk chunk;
    {
      std::unique_lock lock(mu);
      changed.wait(lock, [&] { return !ready.empty() || running == 0 || stop; });
      if (stop || ready.empty()) break;  // failed, or every worker finished and all handed on
      chunk = std::move(ready.front());
      ready.pop_front();
      changed.notify_all();
    }
    if (auto r = on_chunk(std::move(chunk)); !r) {
      std::lock_guard lock(mu);
      if (!failed) failed = r.error();
      stop = true;
      changed.notify_all();
      break;
    }
  }
  for (auto& t : threads) t.join();
  if (failed) return *failed;
  return boost::outcome_v2::success();
}

}  // namespace pgfanout
