#pragma once
// What the sink runner tests share: an in-memory log with the source identified, a
// users table with a tenant column, and helpers to append and to wait. Header-only, for
// test/unit/pipeline's runner suites.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "checkpoints/log_identity.h"
#include "checkpoints/meta_records.h"
#include "src/pipeline/sink_runner.h"
#include "src/pipeline/sink_wakeups.h"
#include "src/sinks/jsonl/jsonl_sink.h"
#include "test/support/faulty_sink.h"
#include "test/support/memory_sink.h"
#include "test/support/temp_dir.h"

namespace pgfanout {

// Readable gtest failure messages (found by ADL, so outside the anonymous namespace).
inline void PrintTo(const EventId& id, std::ostream* os) { *os << id.ToString(); }
inline void PrintTo(const SinkCursor& c, std::ostream* os) {
  *os << "{" << c.applied.ToString() << ", token '" << c.token << "'}";
}

namespace {

using std::chrono::milliseconds;
using testing::FaultySink;
using testing::MemorySink;

// How long a runner gets to reach a state. Generous: the first two retries back off for up
// to 600 ms, and CI machines are slow. Only a failing test waits this long.
constexpr milliseconds kDeadline{5000};

// Polls `done` until it holds or kDeadline passes.
template <class Pred>
bool Eventually(Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

// What the daemon records when it first meets the source; runners wait for it (the lineage
// their sinks write positions under).
inline void Identify(EventLog& log) {
  ASSERT_TRUE(
      meta::Store(
          log, meta::SourceKey(),
          meta::Source{.system_id = "7310000000000000001", .slot = "pgfanout", .timeline = 1})
          .has_value());
}

inline Lineage LineageOf(const EventLog& log) {
  auto l = LoadLineage(log);
  EXPECT_TRUE(l.has_value() && l.value().has_value());
  return l.has_value() && l.value() ? *l.value() : Lineage{};
}

inline SinkConfig Config(std::string id, std::vector<std::string> tenants,
                         size_t batch_size = 1000) {
  return SinkConfig{.id = std::move(id), .tenants = std::move(tenants), .batch_size = batch_size};
}

class SinkRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override { Identify(*log_); }

  // Appends one transaction with one insert per entry of `tenants` (nullopt: no tenant) and
  // returns the new events' ids.
  std::vector<EventId> Append(std::vector<std::optional<std::string>> tenants) {
    TransactionRecord tx{.commit_lsn = Lsn(next_lsn_), .end_lsn = Lsn(next_lsn_ + 0x28)};
    std::vector<EventId> ids;
    for (uint32_t i = 0; i < tenants.size(); ++i) {
      EventId id{Lsn(next_lsn_), i};
      tx.events.push_back(ChangeEvent{.id = id,
                                      .xid = Xid{700},
                                      .op = Op::kInsert,
                                      .table = users_,
                                      .tenant = tenants[i],
                                      .new_row = {Datum{ValueKind::kText, std::to_string(i)}}});
      ids.push_back(id);
    }
    next_lsn_ += 0x100;
    auto r = log_->Append(std::span<const TransactionRecord>(&tx, 1));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return ids;
  }

  std::unique_ptr<SinkRunner> Runner(const SinkConfig& config, std::unique_ptr<Sink> sink) {
    return std::make_unique<SinkRunner>(config, tables_, std::move(sink), *log_,
                                        [this](const Error&) { fatal_ = true; });
  }

  std::optional<SinkCursor> Stored(const std::string& sink_id) const {
    auto cursor = log_->LoadCursor(sink_id);
    EXPECT_TRUE(cursor.has_value()) << cursor.error().message;
    return cursor.has_value() ? cursor.value() : std::nullopt;
  }

  static bool At(const SinkRunner& runner, EventId id) { return runner.status().cursor == id; }

  void TearDown() override { EXPECT_FALSE(fatal_) << "a sink error stopped the process"; }

  std::unique_ptr<EventLog> log_ = NewMemoryEventLog();
  std::shared_ptr<const TableSchema> users_ = std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{16384},
                  .schema_name = "public",
                  .table_name = "users",
                  .columns = {{.name = "id", .type_oid = 23, .part_of_key = true}}});
  std::vector<TableConfig> tables_ = {
      TableConfig{.schema = "public", .name = "users", .tenant_column = "tenant_id"}};
  uint64_t next_lsn_ = 0x1000;
  std::atomic<bool> fatal_ = false;
};

}  // namespace
}  // namespace pgfanout
