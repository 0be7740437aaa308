#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pgfanout::faults {

// What the client knows about one transaction it sent.
enum class Outcome { kCommitted, kFailed, kUnknown };

// One workload transaction: inserts ledger row (tenant, op_id), adds `amount` to account
// (tenant, account) and so bumps its `version` by one, and sometimes deletes an older,
// committed ledger row of the same tenant.
struct Op {
  int64_t op_id = 0;
  std::string tenant;
  int account = 0;
  int64_t amount = 0;
  int64_t deletes_op = 0;  // 0: none
  int64_t version = 0;     // the account's version after this op (known when committed)
  std::string lsn;         // pg_current_wal_insert_lsn() inside the transaction
  Outcome outcome = Outcome::kUnknown;
};

// Source schema the workload writes (database "postgres"): the tenant is part of both
// primary keys, so the default replica identity routes deletes to per-tenant sinks.
inline constexpr const char* kWorkloadSchema = R"sql(
  CREATE TABLE accounts (tenant_id text NOT NULL, id int NOT NULL, version bigint NOT NULL,
                         balance bigint NOT NULL, PRIMARY KEY (tenant_id, id));
  CREATE TABLE ledger (tenant_id text NOT NULL, op_id bigint NOT NULL, account_id int NOT NULL,
                       amount bigint NOT NULL, payload text, PRIMARY KEY (tenant_id, op_id));
)sql";

// A paced workload of single-statement transactions against a real source, recording every
// attempt and what the client learned about its outcome (the history the checker reads).
// A connection error while a transaction is in flight leaves its outcome unknown; the
// worker reconnects with a short backoff and goes on.
class Workload {
 public:
  struct Options {
    std::string dsn;
    std::vector<std::string> tenants;
    int accounts_per_tenant = 20;
    double rate = 300;  // transactions per second, over all workers
    int workers = 2;
    int delete_percent = 10;
    size_t payload_bytes = 64;
    uint64_t seed = 1;
  };

  explicit Workload(Options options);
  ~Workload();  // Stop()

  // Creates the accounts rows (version 0) through `dsn`; the tables must exist.
  bool Seed(std::string* error);
  void SetRate(double rate) { options_.rate = rate; }  // before Start()
  void Start();
  void Stop();

  // One large transaction on its own connection: inserts `rows` ledger rows of `tenant` in
  // chunks of 1000 (account_id 0: no account changes), every `rollback_every`-th chunk
  // inside a savepoint that is rolled back (0: none), and commits, or rolls back when
  // `abort`. Every row is recorded in the history with the outcome the client saw.
  void BigTransaction(const std::string& tenant, int rows, int rollback_every, bool abort);

  // A copy of the history so far.
  std::vector<Op> History() const;
  int64_t committed() const { return committed_.load(); }
  int64_t connection_errors() const { return connection_errors_.load(); }

 private:
  void Run(int worker);
  int64_t TakeDeletable(const std::string& tenant, uint64_t rnd);

  Options options_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> next_op_{1};
  std::atomic<int64_t> committed_{0};
  std::atomic<int64_t> connection_errors_{0};
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::vector<Op> history_;
  std::vector<std::vector<int64_t>> live_;  // per tenant: committed, not yet deleted op ids
};

}  // namespace pgfanout::faults
