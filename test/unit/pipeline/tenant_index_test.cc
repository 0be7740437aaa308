// The tenant index's contract, end to end through the pipeline's own parts: for random
// workloads (moves between tenants, NULL tenants, a table without tenants, TRUNCATEs,
// streamed transactions committed or aborted whole or in part, trims), a sink that reads
// through the index (EventLog::ReadTenants) receives exactly what the same sink gets by
// looking at the whole log (ReadFiltered), after the router has had its say. Run on both
// log implementations.

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "checkpoints/event_log.h"
#include "src/pipeline/router.h"
#include "src/pipeline/transaction_assembler.h"
#include "test/support/pgoutput_builder.h"
#include "test/support/temp_dir.h"

namespace pgfanout {
namespace {

using namespace pgoutput;
using testing::Null;
using testing::Text;

constexpr RelationId kUsers{16384};     // tenant_id, REPLICA IDENTITY FULL: moves show
constexpr RelationId kAccounts{16385};  // key (tenant_id, id): a key-only old row has it
constexpr RelationId kNotes{16386};     // no tenant column

const char* const kTenants[] = {"a", "b", "c", "d", nullptr};

// One sink's view: what the router let through, one line per event.
std::string Describe(const ChangeEvent& e) {
  std::string s = e.id.ToString() + " " + static_cast<char>(e.op) + " " +
                  e.table->table_name + " t=" + e.tenant.value_or("-");
  for (const Datum& d : e.new_row) s += " n:" + (d.kind == ValueKind::kText ? d.text : "~");
  for (const Datum& d : e.old_row) s += " o:" + (d.kind == ValueKind::kText ? d.text : "~");
  return s;
}

struct Reader {
  SinkConfig config;
  Router router;
  bool through_index;
  EventId cursor;
  std::vector<std::string> received;

  Reader(SinkConfig c, const std::vector<TableConfig>& tables, bool index)
      : config(std::move(c)), router(config, tables), through_index(index) {}

  // Reads to the head in small pages, as a runner does.
  void CatchUp(const EventLog& log, std::mt19937_64& rng) {
    auto may = [this](const EventLog::EventPeek& p) { return router.MayAccept(p); };
    for (int guard = 0; guard < 100000; ++guard) {
      auto last = log.LastDurableEvent();
      if (!last || !(cursor < *last)) return;
      const EventLog::ReadLimits limits{.max_events = 1 + rng() % 7,
                                        .max_bytes = 8u << 20,
                                        .max_scanned = 1 + rng() % 9};
      auto read = through_index ? log.ReadTenants(cursor, config.tenants, limits, may)
                                : log.ReadFiltered(cursor, limits, may);
      ASSERT_TRUE(read.has_value()) << read.error().message;
      for (auto& e : read.value().events) {
        if (router.Route(e)) received.push_back(Describe(e));
      }
      ASSERT_TRUE(read.value().scanned_through.has_value()) << "a read short of the head moves";
      ASSERT_TRUE(cursor < *read.value().scanned_through);
      cursor = *read.value().scanned_through;
    }
    FAIL() << "never caught up";
  }
};

class Workload {
 public:
  Workload(EventLog& log, const std::vector<TableConfig>& tables, uint64_t seed)
      : log_(log), assembler_(log, tables), rng_(seed) {}

  std::mt19937_64& rng() { return rng_; }

  void DescribeTables() {
    Apply(Relation{.relation_id = kUsers, .namespace_name = "public", .relation_name = "users",
                   .replica_identity = 'f',
                   .columns = {{.flags = 1, .name = "id", .type_oid = 23},
                               {.flags = 1, .name = "tenant_id", .type_oid = 25},
                               {.flags = 1, .name = "name", .type_oid = 25}}});
    Apply(Relation{.relation_id = kAccounts, .namespace_name = "public",
                   .relation_name = "accounts", .replica_identity = 'd',
                   .columns = {{.flags = 1, .name = "tenant_id", .type_oid = 25},
                               {.flags = 1, .name = "id", .type_oid = 23},
                               {.flags = 0, .name = "balance", .type_oid = 23}}});
    Apply(Relation{.relation_id = kNotes, .namespace_name = "public", .relation_name = "notes",
                   .replica_identity = 'd',
                   .columns = {{.flags = 1, .name = "id", .type_oid = 23},
                               {.flags = 0, .name = "body", .type_oid = 25}}});
  }

  // One transaction, plain or streamed (with other plain ones committed in between, and
  // aborted subtransactions, or aborted whole).
  void Transaction() {
    if (rng_() % 4 != 0) {
      const uint64_t lsn = NextLsn();
      Apply(Begin{.final_lsn = Lsn(lsn), .xid = Xid{next_xid_++}});
      for (int i = 0, n = 1 + int(rng_() % 6); i < n; ++i) Change(Xid{});
      Commit(lsn);
      return;
    }
    const Xid top{next_xid_++};
    const Xid sub{next_xid_++};
    for (int segment = 0, n = 1 + int(rng_() % 3); segment < n; ++segment) {
      Apply(StreamStart{.xid = top, .first_segment = segment == 0});
      for (int i = 0, m = 1 + int(rng_() % 8); i < m; ++i) Change(rng_() % 3 == 0 ? sub : top);
      Apply(StreamStop{});
      if (rng_() % 2 == 0) {  // a plain transaction commits while this one is open
        const uint64_t lsn = NextLsn();
        Apply(Begin{.final_lsn = Lsn(lsn), .xid = Xid{next_xid_++}});
        Change(Xid{});
        Commit(lsn);
      }
    }
    switch (rng_() % 4) {
      case 0:
        Apply(StreamAbort{.xid = top, .subxid = top});
        return;
      case 1:
        Apply(StreamAbort{.xid = top, .subxid = sub});
        [[fallthrough]];
      default: {
        const uint64_t lsn = NextLsn();
        Apply(StreamCommit{.xid = top, .commit_lsn = Lsn(lsn), .end_lsn = Lsn(lsn + 0x10)});
        Flush();
      }
    }
  }

 private:
  std::optional<std::string_view> Tenant() {
    const char* t = kTenants[rng_() % std::size(kTenants)];
    return t ? std::optional<std::string_view>(t) : std::nullopt;
  }
  Datum TenantDatum(std::optional<std::string_view> t) { return t ? Text(*t) : Null(); }
  std::string Id() { return std::to_string(rng_() % 20); }

  void Change(Xid xid) {
    switch (rng_() % 10) {
      case 0:
      case 1:
        Apply(Insert{.xid = xid, .relation_id = kUsers,
                     .new_tuple = {Text(Id()), TenantDatum(Tenant()), Text("n")}});
        break;
      case 2:
      case 3:  // FULL identity: the old row names the old tenant, which may differ
        Apply(Update{.xid = xid, .relation_id = kUsers, .old_kind = 'O',
                     .old_tuple = {Text(Id()), TenantDatum(Tenant()), Text("o")},
                     .new_tuple = {Text(Id()), TenantDatum(Tenant()), Text("n")}});
        break;
      case 4:
        Apply(Delete{.xid = xid, .relation_id = kUsers, .old_kind = 'O',
                     .old_tuple = {Text(Id()), TenantDatum(Tenant()), Text("o")}});
        break;
      case 5:  // a key change: the old key carries the old tenant
        Apply(Update{.xid = xid, .relation_id = kAccounts, .old_kind = 'K',
                     .old_tuple = {TenantDatum(Tenant()), Text(Id()), Null()},
                     .new_tuple = {TenantDatum(Tenant()), Text(Id()), Text("1")}});
        break;
      case 6:  // no old tuple: the key (and tenant) did not change
        Apply(Update{.xid = xid, .relation_id = kAccounts,
                     .new_tuple = {TenantDatum(Tenant()), Text(Id()), Text("2")}});
        break;
      case 7:
        Apply(Insert{.xid = xid, .relation_id = kNotes, .new_tuple = {Text(Id()), Text("x")}});
        break;
      case 8:
        Apply(Delete{.xid = xid, .relation_id = kAccounts, .old_kind = 'K',
                     .old_tuple = {TenantDatum(Tenant()), Text(Id()), Null()}});
        break;
      default:
        Apply(pgoutput::Truncate{
            .xid = xid, .relation_ids = {rng_() % 2 ? kUsers : kNotes, kAccounts}});
    }
  }

  uint64_t NextLsn() { return next_lsn_ += 0x100; }
  void Commit(uint64_t lsn) {
    Apply(pgoutput::Commit{.commit_lsn = Lsn(lsn), .end_lsn = Lsn(lsn + 0x10)});
    Flush();
  }
  void Flush() {
    if (ready_.empty()) return;
    auto r = log_.Append(ready_);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    ready_.clear();
  }
  void Apply(Message m) {
    auto r = assembler_.Apply(std::move(m), ready_);
    ASSERT_TRUE(r.has_value()) << r.error().message;
  }

  EventLog& log_;
  TransactionAssembler assembler_;
  std::mt19937_64 rng_;
  std::vector<TransactionRecord> ready_;
  uint64_t next_lsn_ = 0x1000;
  uint32_t next_xid_ = 700;
};

class TenantIndexTest : public ::testing::TestWithParam<bool> {
 protected:
  std::unique_ptr<EventLog> NewLog(const std::string& name) {
    if (!GetParam()) return NewMemoryEventLog();
    auto log = OpenRocksDbEventLog(dir_.path() + "/" + name);
    EXPECT_TRUE(log.has_value()) << log.error().message;
    return log.has_value() ? std::move(log).value() : nullptr;
  }
  ::pgfanout::testing::TempDir dir_;
};

TEST_P(TenantIndexTest, ASinkReadingItsTenantsGetsWhatAWholeLogReadGives) {
  const std::vector<TableConfig> tables = {
      TableConfig{.schema = "public", .name = "users", .tenant_column = "tenant_id"},
      TableConfig{.schema = "public", .name = "accounts", .tenant_column = "tenant_id"},
      TableConfig{.schema = "public", .name = "notes"}};
  const std::vector<std::vector<std::string>> sinks = {
      {"a"}, {"b", "c"}, {"d"}, {"a", "b", "c", "d"}, {"nobody"}};
  for (uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto log = NewLog("log" + std::to_string(seed));
    ASSERT_NE(log, nullptr);
    Workload work(*log, tables, seed);
    work.DescribeTables();
    std::vector<std::unique_ptr<Reader>> readers;
    for (const auto& tenants : sinks) {
      for (bool index : {true, false}) {
        readers.push_back(
            std::make_unique<Reader>(SinkConfig{.id = "s", .tenants = tenants}, tables, index));
      }
    }
    for (int round = 0; round < 60; ++round) {
      for (int i = 0; i < 5; ++i) ASSERT_NO_FATAL_FAILURE(work.Transaction());
      // Readers catch up on rounds of their own, so some are always behind the head.
      for (size_t i = 0; i < readers.size(); ++i) {
        if ((round + i / 2) % 3 == 0) {
          ASSERT_NO_FATAL_FAILURE(readers[i]->CatchUp(*log, work.rng()));
        }
      }
      if (round % 4 == 3) {
        // Retention trims what every reader has taken (behind the head): the index must
        // lose those keys and nothing else.
        EventId oldest = readers[0]->cursor;
        for (auto& r : readers) oldest = std::min(oldest, r->cursor);
        ASSERT_TRUE(log->Trim(oldest).has_value());
      }
    }
    for (auto& r : readers) ASSERT_NO_FATAL_FAILURE(r->CatchUp(*log, work.rng()));
    for (size_t i = 0; i < readers.size(); i += 2) {
      const auto& index = readers[i]->received;
      const auto& whole = readers[i + 1]->received;
      SCOPED_TRACE(readers[i]->config.tenants.front());
      EXPECT_EQ(index, whole);
      if (readers[i]->config.tenants.front() != "nobody") {
        EXPECT_GT(index.size(), 20u) << "the workload gave this sink too little to compare";
      } else {
        // A sink of a tenant without rows gets the TRUNCATEs of tenant tables only.
        for (const auto& line : index) EXPECT_EQ(line[line.find(' ') + 1], 'T') << line;
        EXPECT_EQ(readers[i]->cursor, log->LastDurableEvent()) << "an idle sink is at the head";
      }
    }
    // The workload moved rows between the sinks' tenants (routed as deletes and inserts
    // out of updates), and truncated their tables.
    std::set<char> ops;
    for (const auto& line : readers[0]->received) ops.insert(line[line.find(' ') + 1]);
    EXPECT_EQ(ops, (std::set<char>{'I', 'U', 'D', 'T'}));
  }
}

INSTANTIATE_TEST_SUITE_P(Logs, TenantIndexTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "RocksDb" : "Memory"; });

}  // namespace
}  // namespace pgfanout
