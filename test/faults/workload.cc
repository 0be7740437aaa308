#include "test/faults/workload.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <memory>
#include <random>

namespace pgfanout::faults {
namespace {

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;
struct ResultCloser {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Res = std::unique_ptr<PGresult, ResultCloser>;

Conn Connect(const std::string& dsn) {
  Conn c(PQconnectdb(dsn.c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK) return nullptr;
  return c;
}

}  // namespace

Workload::Workload(Options options)
    : options_(std::move(options)), live_(options_.tenants.size()) {}

Workload::~Workload() { Stop(); }

bool Workload::Seed(std::string* error) {
  Conn c = Connect(options_.dsn);
  if (!c) {
    *error = "cannot connect to seed the workload";
    return false;
  }
  for (const auto& t : options_.tenants) {
    std::string sql = fmt::format(
        "INSERT INTO accounts SELECT '{}', g, 0, 0 FROM generate_series(1, {}) g", t,
        options_.accounts_per_tenant);
    Res r(PQexec(c.get(), sql.c_str()));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      *error = PQresultErrorMessage(r.get());
      return false;
    }
  }
  return true;
}

void Workload::Start() {
  stop_ = false;
  for (int w = 0; w < options_.workers; ++w) threads_.emplace_back([this, w] { Run(w); });
}

void Workload::Stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

std::vector<Op> Workload::History() const {
  std::lock_guard lock(mu_);
  return history_;
}

int64_t Workload::TakeDeletable(const std::string& tenant, uint64_t rnd) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < options_.tenants.size(); ++i) {
    if (options_.tenants[i] != tenant) continue;
    auto& live = live_[i];
    if (live.empty()) return 0;
    size_t at = rnd % live.size();
    int64_t id = live[at];
    live[at] = live.back();
    live.pop_back();
    return id;
  }
  return 0;
}

void Workload::BigTransaction(const std::string& tenant, int rows, int rollback_every,
                              bool abort) {
  constexpr int kChunk = 1000;
  std::vector<Op> ops;
  std::vector<bool> rolled_back;
  Conn conn = Connect(options_.dsn);
  bool ok = conn != nullptr;
  auto exec = [&](const std::string& sql) {
    if (!ok) return;
    Res r(PQexec(conn.get(), sql.c_str()));
    auto st = PQresultStatus(r.get());
    ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  };
  exec("BEGIN");
  for (int chunk = 0; chunk * kChunk < rows; ++chunk) {
    int n = std::min(kChunk, rows - chunk * kChunk);
    int64_t first = next_op_.fetch_add(n);
    bool rollback = rollback_every > 0 && chunk % rollback_every == rollback_every - 1;
    if (rollback) exec("SAVEPOINT chunk");
    exec(fmt::format(
        "INSERT INTO ledger SELECT '{}', g, 0, 1, repeat(md5(g::text), 4) "
        "FROM generate_series({}, {}) g",
        tenant, first, first + n - 1));
    if (rollback) exec("ROLLBACK TO SAVEPOINT chunk");
    for (int i = 0; i < n; ++i) {
      ops.push_back(Op{.op_id = first + i, .tenant = tenant, .account = 0, .amount = 1});
      rolled_back.push_back(rollback);
    }
  }
  const bool sent_commit = ok && !abort;
  if (ok) exec(abort ? "ROLLBACK" : "COMMIT");
  // A failure before COMMIT was sent means the server rolled it back; a failure of the
  // COMMIT itself leaves the outcome unknown.
  Outcome outcome = abort           ? Outcome::kFailed
                    : ok            ? Outcome::kCommitted
                    : sent_commit ? Outcome::kUnknown
                                    : Outcome::kFailed;
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < ops.size(); ++i) {
    ops[i].outcome = rolled_back[i] && outcome == Outcome::kCommitted ? Outcome::kFailed : outcome;
    if (ops[i].outcome == Outcome::kCommitted) committed_.fetch_add(1);
    history_.push_back(ops[i]);
  }
}

void Workload::Run(int worker) {
  std::mt19937_64 rng(options_.seed * 7919 + static_cast<uint64_t>(worker));
  const auto interval = std::chrono::duration<double>(options_.workers / options_.rate);
  auto next = std::chrono::steady_clock::now();
  Conn conn;
  const std::string payload(options_.payload_bytes, 'p');
  while (!stop_) {
    if (!conn) {
      conn = Connect(options_.dsn);
      if (!conn) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
    }
    Op op;
    op.op_id = next_op_.fetch_add(1);
    size_t ti = rng() % options_.tenants.size();
    op.tenant = options_.tenants[ti];
    op.account = 1 + static_cast<int>(rng() % options_.accounts_per_tenant);
    op.amount = 1 + static_cast<int64_t>(rng() % 1000);
    if (static_cast<int>(rng() % 100) < options_.delete_percent) {
      op.deletes_op = TakeDeletable(op.tenant, rng());
    }
    std::string sql = fmt::format(
        "WITH l AS (INSERT INTO ledger VALUES ('{0}', {1}, {2}, {3}, '{4}'))"
        "{5} , a AS (UPDATE accounts SET version = version + 1, balance = balance + {3} "
        "WHERE tenant_id = '{0}' AND id = {2} RETURNING version) "
        "SELECT version, pg_current_wal_insert_lsn()::text FROM a",
        op.tenant, op.op_id, op.account, op.amount, payload,
        op.deletes_op == 0 ? ""
                           : fmt::format(", d AS (DELETE FROM ledger WHERE tenant_id = '{}' "
                                         "AND op_id = {})",
                                         op.tenant, op.deletes_op));
    Res r(PQexec(conn.get(), sql.c_str()));
    if (PQresultStatus(r.get()) == PGRES_TUPLES_OK && PQntuples(r.get()) == 1) {
      op.outcome = Outcome::kCommitted;
      op.version = std::stoll(PQgetvalue(r.get(), 0, 0));
      op.lsn = PQgetvalue(r.get(), 0, 1);
      committed_.fetch_add(1);
    } else if (PQstatus(conn.get()) != CONNECTION_OK) {
      // The commit may or may not have happened: only the source can tell later.
      op.outcome = Outcome::kUnknown;
      connection_errors_.fetch_add(1);
      conn.reset();
    } else {
      op.outcome = Outcome::kFailed;
    }
    {
      std::lock_guard lock(mu_);
      history_.push_back(op);
      if (op.outcome == Outcome::kCommitted) live_[ti].push_back(op.op_id);
      // A delete that did not commit leaves its row deletable by a later op.
      if (op.outcome == Outcome::kFailed && op.deletes_op != 0) {
        live_[ti].push_back(op.deletes_op);
      }
    }
    next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval);
    auto now = std::chrono::steady_clock::now();
    if (next > now) {
      std::this_thread::sleep_for(next - now);
    } else if (now - next > std::chrono::seconds(1)) {
      next = now;  // fell behind (a stall): do not burst to catch up
    }
  }
}

}  // namespace pgfanout::faults
