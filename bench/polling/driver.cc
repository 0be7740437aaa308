// The polling design's moving parts, as a baseline for bench/polling.sh (see schema.sql):
//   sequencer    every 50 ms: up to 1000 flagged rows (and tombstones) get
//                sequence_id = nextval(...), FOR UPDATE SKIP LOCKED, until none is left
//   sync engine  per tenant, every 50 ms: rows and tombstones with sequence_id > the last
//                one synced, 1000 at a time in sequence order, applied to the tenant's
//                database in one transaction with a sequence guard, the position stored
//                in that same transaction (as exactly-once as pgfanout's Postgres sink)
// One persistent connection per loop, prepared statements, no shortcut that would make it
// slower than its design. Runs until SIGTERM/SIGINT.
//   polling_driver <source dsn> <target dsn template with %t for the tenant> <tenant>...

#include <libpq-fe.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> stop{false};
constexpr auto kInterval = std::chrono::milliseconds(50);

PGconn* Connect(const std::string& dsn) {
  PGconn* c = PQconnectdb(dsn.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::fprintf(stderr, "cannot connect (%s): %s", dsn.c_str(), PQerrorMessage(c));
    std::exit(1);
  }
  return c;
}

// Runs `sql` and dies on error: a baseline that silently fails would measure nothing.
PGresult* Must(PGconn* c, const char* sql, int n = 0, const char* const* params = nullptr) {
  PGresult* r = PQexecParams(c, sql, n, nullptr, params, nullptr, nullptr, 0);
  auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::fprintf(stderr, "polling driver: %s\n  in: %s\n", PQerrorMessage(c), sql);
    std::exit(1);
  }
  return r;
}

void Sequencer(std::string dsn) {
  PGconn* c = Connect(dsn);
  const char* items =
      "WITH c AS (SELECT tenant_id, id FROM items WHERE should_update_sequence_id "
      "LIMIT 1000 FOR UPDATE SKIP LOCKED) "
      "UPDATE items i SET sequence_id = nextval('items_sequence'), "
      "should_update_sequence_id = false FROM c "
      "WHERE i.tenant_id = c.tenant_id AND i.id = c.id";
  const char* tombstones =
      "WITH c AS (SELECT tenant_id, id FROM deleted_items WHERE should_update_sequence_id "
      "LIMIT 1000 FOR UPDATE SKIP LOCKED) "
      "UPDATE deleted_items d SET sequence_id = nextval('items_sequence'), "
      "should_update_sequence_id = false FROM c "
      "WHERE d.tenant_id = c.tenant_id AND d.id = c.id";
  while (!stop) {
    int done = 0;
    for (const char* sql : {items, tombstones}) {
      PGresult* r = Must(c, sql);
      done += std::atoi(PQcmdTuples(r));
      PQclear(r);
    }
    if (done == 0) std::this_thread::sleep_for(kInterval);
  }
  PQfinish(c);
}

void Sync(std::string source_dsn, std::string target_dsn, std::string tenant) {
  PGconn* src = Connect(source_dsn);
  PGconn* dst = Connect(target_dsn);
  PQclear(Must(dst,
               "CREATE TABLE IF NOT EXISTS items (tenant_id text NOT NULL, id bigint NOT NULL, "
               "name text, qty int, price numeric(12,2), updated_at timestamptz, ts timestamptz, "
               "sequence_id bigint NOT NULL, PRIMARY KEY (tenant_id, id))"));
  PQclear(Must(dst,
               "CREATE TABLE IF NOT EXISTS sync_state (tenant_id text PRIMARY KEY, "
               "last_sequence_id bigint NOT NULL)"));
  std::string last = "0";
  {
    const char* p[] = {tenant.c_str()};
    PGresult* r = Must(dst, "SELECT last_sequence_id FROM sync_state WHERE tenant_id = $1", 1, p);
    if (PQntuples(r) == 1) last = PQgetvalue(r, 0, 0);
    PQclear(r);
  }
  while (!stop) {
    const char* p[] = {tenant.c_str(), last.c_str()};
    // Rows and tombstones past the position, merged in sequence order, 1000 at a time.
    PGresult* r = Must(src,
                       "SELECT sequence_id, false, id, name, qty, price, updated_at, ts "
                       "FROM items WHERE tenant_id = $1 AND sequence_id > $2 "
                       "UNION ALL SELECT sequence_id, true, id, NULL, NULL, NULL, NULL, NULL "
                       "FROM deleted_items WHERE tenant_id = $1 AND sequence_id > $2 "
                       "ORDER BY 1 LIMIT 1000",
                       2, p);
    const int n = PQntuples(r);
    if (n == 0) {
      PQclear(r);
      std::this_thread::sleep_for(kInterval);
      continue;
    }
    PQclear(Must(dst, "BEGIN"));
    for (int i = 0; i < n; ++i) {
      auto v = [&](int col) { return PQgetisnull(r, i, col) ? nullptr : PQgetvalue(r, i, col); };
      if (std::string(PQgetvalue(r, i, 1)) == "t") {
        const char* d[] = {tenant.c_str(), v(2), v(0)};
        PQclear(Must(dst, "DELETE FROM items WHERE tenant_id = $1 AND id = $2 AND sequence_id < $3",
                     3, d));
      } else {
        const char* u[] = {tenant.c_str(), v(2), v(3), v(4), v(5), v(6), v(7), v(0)};
        PQclear(
            Must(dst,
                 "INSERT INTO items VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                 "ON CONFLICT (tenant_id, id) DO UPDATE SET name = EXCLUDED.name, "
                 "qty = EXCLUDED.qty, price = EXCLUDED.price, updated_at = EXCLUDED.updated_at, "
                 "ts = EXCLUDED.ts, sequence_id = EXCLUDED.sequence_id "
                 "WHERE items.sequence_id < EXCLUDED.sequence_id",
                 8, u));
      }
    }
    last = PQgetvalue(r, n - 1, 0);
    PQclear(r);
    const char* s[] = {tenant.c_str(), last.c_str()};
    PQclear(Must(dst,
                 "INSERT INTO sync_state VALUES ($1, $2) ON CONFLICT (tenant_id) "
                 "DO UPDATE SET last_sequence_id = EXCLUDED.last_sequence_id",
                 2, s));
    PQclear(Must(dst, "COMMIT"));
  }
  PQfinish(src);
  PQfinish(dst);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s <source dsn> <target dsn with %%t> <tenant>...\n", argv[0]);
    return 2;
  }
  signal(SIGTERM, [](int) { stop = true; });
  signal(SIGINT, [](int) { stop = true; });
  std::vector<std::thread> threads;
  threads.emplace_back(Sequencer, std::string(argv[1]));
  for (int i = 3; i < argc; ++i) {
    std::string dsn = argv[2];
    dsn.replace(dsn.find("%t"), 2, argv[i]);
    threads.emplace_back(Sync, std::string(argv[1]), dsn, std::string(argv[i]));
  }
  for (auto& t : threads) t.join();
  return 0;
}
