// A quiet tracked database while another database on the same cluster writes heavily:
// the slot must still move, or the server keeps every byte of that WAL for pgfanout.

#include <fmt/format.h>

#include <algorithm>

#include "test/faults/fault_fixture.h"

namespace pgfanout::faults {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int64_t kMiB = 1024 * 1024;
constexpr int64_t kSegment = 16 * kMiB;  // the source's wal_segment_size

class QuietTest : public FaultTest {
 protected:
  int64_t Bytes(const std::string& sql) {
    auto v = pg_->Scalar(sql);
    return v.empty() ? -1 : std::stoll(v);
  }
  // WAL the server keeps for the slot (from its restart_lsn), and WAL the daemon has not
  // confirmed yet (from its confirmed_flush_lsn).
  int64_t Retained() {
    return Bytes(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
        "FROM pg_replication_slots WHERE slot_name = 'pgfanout_fault'");
  }
  int64_t Unconfirmed() {
    return Bytes(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
        "FROM pg_replication_slots WHERE slot_name = 'pgfanout_fault'");
  }
};

// Database `busy` writes ~100 MB of WAL in short transactions over 20-30 s, with a
// CHECKPOINT every 5 s, while the tracked database writes nothing. The server sends the
// daemon no changes, only keepalives; confirming those must move the slot.
TEST_F(QuietTest, RetainedWalStaysBoundedWhileAnotherDatabaseWrites) {
  const int64_t target = (Full() ? 300 : 100) * kMiB;
  const auto duration = Full() ? 60s : 25s;
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  pg_->Exec("CREATE DATABASE busy");
  pg_->Exec("CREATE TABLE filler (id bigserial PRIMARY KEY, pad text)", "busy");

  const std::string start_lsn = SourceLsn();
  auto wal_since_start = [&] {
    return Bytes(
        fmt::format("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{}')::bigint", start_lsn));
  };
  std::atomic<bool> writing{true};
  std::thread busy([&] {
    auto began = Clock::now();
    auto last_checkpoint = began;
    int64_t rounds = 0;
    while (Clock::now() - began < duration) {
      // ~1 MB of rows (uncompressible pad, so not TOAST-compressed), paced evenly.
      pg_->Exec(
          "INSERT INTO filler (pad) SELECT md5(random()::text) || repeat(md5(random()::text), 30) "
          "FROM generate_series(1, 1000)",
          "busy");
      if (++rounds % 4 == 0) {
        pg_->Exec("UPDATE filler SET pad = left(pad, 900) WHERE id % 50 = 0", "busy");
      }
      if (Clock::now() - last_checkpoint >= 5s) {
        pg_->Exec("CHECKPOINT");
        last_checkpoint = Clock::now();
      }
      int64_t written = wal_since_start();
      if (written >= target) break;
      // Spread the target over the duration: wait until this much is due.
      auto due = began + std::chrono::duration_cast<Clock::duration>(
                             duration * (static_cast<double>(written) / target));
      std::this_thread::sleep_until(due);
    }
    writing = false;
  });

  int64_t peak = 0, peak_unconfirmed = 0;
  std::vector<std::pair<double, int64_t>> samples;  // (s, retained)
  auto began = Clock::now();
  while (writing) {
    std::this_thread::sleep_for(500ms);
    int64_t r = Retained(), u = Unconfirmed();
    peak = std::max(peak, r);
    peak_unconfirmed = std::max(peak_unconfirmed, u);
    samples.push_back({std::chrono::duration<double>(Clock::now() - began).count(), r});
    if (r < 0 || !daemon_.running()) break;
  }
  busy.join();
  ASSERT_TRUE(daemon_.running()) << "pgfanout exited while the other database wrote";
  ASSERT_GE(Retained(), 0) << "the slot is gone";
  const int64_t written = wal_since_start();
  const double seconds = std::chrono::duration<double>(Clock::now() - began).count();
  // After the writes: restart_lsn moves to the next snapshot of running transactions (a
  // CHECKPOINT writes one) once the daemon confirms past it. A snapshot that comes while an
  // earlier one waits for confirmation is skipped by the server, so checkpoint again.
  // The daemon confirms within its status_interval (1 s).
  int64_t final_retained = Retained(), final_unconfirmed = Unconfirmed();
  const auto settled_by = Clock::now() + 15s;
  while ((final_retained >= kSegment || final_unconfirmed >= kMiB) && Clock::now() < settled_by) {
    pg_->Exec("CHECKPOINT");
    std::this_thread::sleep_for(2s);
    final_retained = Retained();
    final_unconfirmed = Unconfirmed();
  }
  std::string trace;
  for (size_t i = 0; i < samples.size(); i += std::max<size_t>(1, samples.size() / 12)) {
    trace += fmt::format(" {:.0f}s:{:.0f}", samples[i].first,
                         static_cast<double>(samples[i].second) / kMiB);
  }
  report_.notes = fmt::format(
      "busy database wrote {:.0f} MiB of WAL in {:.0f} s; retained WAL peak {:.1f} MiB, final "
      "{:.1f} MiB; unconfirmed peak {:.1f} MiB, final {:.1f} MiB; retained MiB over time:{}",
      static_cast<double>(written) / kMiB, seconds, static_cast<double>(peak) / kMiB,
      static_cast<double>(final_retained) / kMiB, static_cast<double>(peak_unconfirmed) / kMiB,
      static_cast<double>(final_unconfirmed) / kMiB, trace);
  std::cout << "  " << report_.notes << std::endl;

  // Bounds. If the daemon never confirmed anything, restart_lsn would stay where the writes
  // began and retained WAL would climb to all that was written. Confirming keepalives, the
  // slot's restart_lsn follows the snapshots of running transactions it has confirmed:
  // one per CHECKPOINT here (every 5 s), and the server takes a new candidate only after
  // the previous one was confirmed, so retained WAL peaks near two intervals' worth (~40
  // MiB at the paced ~4 MiB/s) and drops back at each step. Half of what was written
  // separates the two behaviours with room for a slow machine; once the writes stop, the
  // slot must come within one WAL segment of the server.
  EXPECT_LT(peak, written / 2) << "retained WAL grew with the other database's writes";
  EXPECT_LT(final_retained, kSegment) << "the slot did not catch up once the writes stopped";
  EXPECT_LT(final_unconfirmed, kMiB) << "pgfanout did not confirm the server's position";
  EXPECT_GE(written, target * 8 / 10) << "the busy database wrote too little to tell";

  // A tracked write after the quiet spell still arrives, once.
  StartWorkload(10);
  std::this_thread::sleep_for(1s);
  auto report = Finish(fmt::format("quiet tracked database, another writes {:.0f} MiB",
                                   static_cast<double>(written) / kMiB),
                       60s);
  EXPECT_TRUE(report.Valid()) << report.ToText();
  EXPECT_GT(report.committed, 0);
}

}  // namespace
}  // namespace pgfanout::faults
