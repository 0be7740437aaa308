// Per-event cost of the hot path on one core, with messages built in memory (no server,
// no disk): decoding a pgoutput Insert, decoding plus assembling a 1000-row transaction
// into events (the in-memory event log stands in for RocksDB), and formatting an event
// as a JSONL line.
//   decoder_bench [google benchmark flags]      events/s (items_per_second)
//   decoder_bench --count N                     decode+assemble N events, nothing else:
//                                                run under callgrind twice (N, 2N) and
//                                                the difference / N is instructions/event
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "decoders/pgoutput/reader.h"
#include "src/pipeline/transaction_assembler.h"
#include "src/sinks/jsonl/jsonl_formatter.h"
#include "test/support/pgoutput_builder.h"

namespace pgfanout {
namespace {

using testing::Encode;

// One table like bench/decode_limit.sh's: id, tenant_id, name, qty, price, updated_at.
pgoutput::Relation Items() {
  return pgoutput::Relation{
      .relation_id = RelationId{16384},
      .namespace_name = "public",
      .relation_name = "items",
      .replica_identity = 'd',
      .columns = {{.flags = 1, .name = "id", .type_oid = 20},
                  {.name = "tenant_id", .type_oid = 25},
                  {.name = "name", .type_oid = 25},
                  {.name = "qty", .type_oid = 23},
                  {.name = "price", .type_oid = 1700, .type_modifier = (12 << 16 | 2) + 4},
                  {.name = "updated_at", .type_oid = 1184}}};
}

std::string InsertBytes(int64_t id) {
  return Encode(pgoutput::Insert{
      .relation_id = RelationId{16384},
      .new_tuple = testing::TextTuple({std::to_string(id), "t7", "item " + std::to_string(id),
                                       "42", "12.34", "2026-12-01 18:00:00.123456+00"})});
}

// A transaction of `rows` inserts, as the walsender sends it.
std::vector<std::string> Transaction(uint64_t lsn, int rows) {
  std::vector<std::string> out;
  out.push_back(Encode(pgoutput::Begin{.final_lsn = Lsn(lsn), .commit_time = 1, .xid = Xid{700}}));
  out.push_back(Encode(Items()));
  for (int i = 0; i < rows; ++i) out.push_back(InsertBytes(i));
  out.push_back(Encode(pgoutput::Commit{
      .commit_lsn = Lsn(lsn), .end_lsn = Lsn(lsn + 0x28), .commit_time = 1}));
  return out;
}

const std::vector<TableConfig>& Tables() {
  static const std::vector<TableConfig> t = {
      {.schema = "public", .name = "items", .tenant_column = "tenant_id", .key = {"id"}}};
  return t;
}

// Decodes and assembles transactions first..first+txs-1 (each the same 1000 rows at its
// own commit LSN); returns the events made.
size_t DecodeAndAssemble(int first, int txs, const std::vector<std::string>& tx,
                         TransactionAssembler& assembler) {
  size_t events = 0;
  std::vector<TransactionRecord> ready;
  for (int t = first; t < first + txs; ++t) {
    for (const auto& bytes : tx) {
      auto m = pgoutput::Decode(bytes, false);
      if (!m) std::abort();
      // Each round is the same WAL again: a new commit LSN keeps the assembler's
      // "already durable" check from skipping it.
      if (auto* b = std::get_if<pgoutput::Begin>(&m.value())) b->final_lsn = Lsn(0x1000 + t * 0x100);
      if (auto* c = std::get_if<pgoutput::Commit>(&m.value())) {
        c->commit_lsn = Lsn(0x1000 + t * 0x100);
        c->end_lsn = Lsn(0x1000 + t * 0x100 + 0x28);
      }
      if (!assembler.Apply(std::move(m).value(), ready)) std::abort();
    }
    for (auto& r : ready) events += r.events.size();
    ready.clear();
  }
  return events;
}

void BM_DecodeInsert(benchmark::State& state) {
  const std::string bytes = InsertBytes(123456);
  for (auto _ : state) {
    auto m = pgoutput::Decode(bytes, false);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeInsert);

void BM_DecodeAndAssemble1kRowTransaction(benchmark::State& state) {
  const auto tx = Transaction(0x1000, 1000);
  auto log = NewMemoryEventLog();
  TransactionAssembler assembler(*log, Tables());
  size_t events = 0;
  int round = 0;
  for (auto _ : state) events += DecodeAndAssemble(round++, 1, tx, assembler);
  if (events != 1000 * static_cast<size_t>(round)) state.SkipWithError("transactions were skipped");
  state.SetItemsProcessed(static_cast<int64_t>(events));
}
BENCHMARK(BM_DecodeAndAssemble1kRowTransaction);

void BM_FormatJsonl(benchmark::State& state) {
  auto log = NewMemoryEventLog();
  TransactionAssembler assembler(*log, Tables());
  std::vector<TransactionRecord> ready;
  for (const auto& bytes : Transaction(0x1000, 1000)) {
    if (!assembler.Apply(pgoutput::Decode(bytes, false).value(), ready)) std::abort();
  }
  const auto& events = ready.at(0).events;
  JsonlFormatter formatter;
  fmt::memory_buffer out;
  size_t i = 0;
  for (auto _ : state) {
    out.clear();
    formatter.Format(events[i++ % events.size()], out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FormatJsonl);

}  // namespace
}  // namespace pgfanout

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--count") == 0) {
    const int txs = std::atoi(argv[2]) / 1000;
    const auto tx = pgfanout::Transaction(0x1000, 1000);
    auto log = pgfanout::NewMemoryEventLog();
    pgfanout::TransactionAssembler assembler(*log, pgfanout::Tables());
    const size_t events = pgfanout::DecodeAndAssemble(0, txs, tx, assembler);
    std::printf("%zu events\n", events);
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
