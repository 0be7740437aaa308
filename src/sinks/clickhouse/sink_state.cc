#include "src/sinks/clickhouse/sink_state.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>

#include "src/sinks/clickhouse/tsv_reader.h"
#include "src/sinks/clickhouse/value_encoder.h"
#include "src/sinks/json_text.h"

namespace pgfanout::clickhouse {
namespace {

template <class T>
bool ParseNumber(const std::optional<std::string>& text, T& out) {
  if (!text || text->empty()) return false;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), out);
  return ec == std::errc() && end == text->data() + text->size();
}

}  // namespace

SinkStateStore::SinkStateStore(ClickHouseHttp& ch, std::string database, std::string sink_id,
                               Lineage lineage)
    : ch_(ch),
      database_(std::move(database)),
      sink_id_(std::move(sink_id)),
      lineage_(std::move(lineage)) {}

std::string SinkStateStore::Table() const {
  return QuoteName(database_) + "." + QuoteName("pgfanout_sink_state");
}

Result<int> SinkStateStore::Shape() const {
  PGF_TRY(auto found,
          ch_.Query("looking up the sink state table",
                    fmt::format("SELECT count(), countIf(name = 'log_id') FROM system.columns "
                                "WHERE database = {} AND table = 'pgfanout_sink_state' "
                                "FORMAT TabSeparated",
                                QuoteString(database_))));
  if (found == "0\t0\n") return 0;
  return found.ends_with("\t1\n") ? 2 : 1;
}

Result<void> SinkStateStore::Ensure() {
  const std::string context =
      fmt::format("sink {}: preparing {}.pgfanout_sink_state", sink_id_, database_);
  PGF_TRY(int shape, Shape());
  if (shape == 2) return boost::outcome_v2::success();
  const std::string ddl =
      shape == 0
          ? fmt::format(
                "CREATE TABLE IF NOT EXISTS {} (sink_id String, commit_lsn UInt64, ordinal "
                "UInt32, event_id String, generation UInt32, seq UInt64, updated_at DateTime, "
                "source_system_id String, slot_name String, timeline UInt32, log_id String) "
                "ENGINE = ReplacingMergeTree(seq) ORDER BY sink_id",
                Table())
          : fmt::format(
                "ALTER TABLE {} ADD COLUMN source_system_id String, ADD COLUMN slot_name String, "
                "ADD COLUMN timeline UInt32, ADD COLUMN log_id String",
                Table());
  auto made = ch_.Query(shape == 0 ? "creating the sink state table"
                                   : "adding the lineage columns to the sink state table",
                        ddl);
  if (!made) {
    // Another sink of this database may have done it in the meantime.
    PGF_TRY(int now, Shape());
    if (now == 2) return boost::outcome_v2::success();
    Error e = made.error().Wrap(context);
    if (e.kind == ErrorKind::kMismatch) e.message += " (a DBA may run: " + ddl + ")";
    return e;
  }
  return boost::outcome_v2::success();
}

Result<std::optional<SinkStateStore::Position>> SinkStateStore::Load() {
  auto text = ch_.Query("reading the sink's position",
                        fmt::format("SELECT commit_lsn, ordinal, generation, seq, source_system_id, "
                                    "slot_name, timeline, log_id FROM {} FINAL "
                                    "WHERE sink_id = {} FORMAT TabSeparated",
                                    Table(), QuoteString(sink_id_)));
  if (!text) return text.error().Wrap("sink " + sink_id_);
  PGF_TRY(auto rows, ParseTsv(text.value()));
  if (rows.empty()) return std::optional<Position>();
  uint64_t lsn = 0;
  Position p;
  uint32_t timeline = 0;
  if (rows.size() != 1 || rows[0].size() != 8 || !ParseNumber(rows[0][0], lsn) ||
      !ParseNumber(rows[0][1], p.applied.ordinal) || !ParseNumber(rows[0][2], p.generation) ||
      !ParseNumber(rows[0][3], seq_) || !ParseNumber(rows[0][6], timeline)) {
    return MakeError(
        ErrorKind::kMismatch,
        fmt::format("sink {}: {} holds an unreadable position for this sink", sink_id_, Table()));
  }
  p.applied.commit_lsn = Lsn(lsn);
  if (rows[0][7] && !rows[0][7]->empty()) {
    p.lineage = Lineage{.system_id = rows[0][4].value_or(""),
                        .slot = rows[0][5].value_or(""),
                        .timeline = timeline,
                        .log_id = *rows[0][7]};
  }
  generation_ = p.generation;
  return std::optional<Position>(p);
}

Result<void> SinkStateStore::Write(EventId applied, uint32_t generation) {
  // Later writes must win under FINAL, also when the clock steps back.
  const auto now_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
  const uint64_t seq = std::max(seq_ + 1, now_us);
  std::string row = "{\"sink_id\":";
  json_text::AppendString(sink_id_, row);
  row += fmt::format(
      ",\"commit_lsn\":{},\"ordinal\":{},\"event_id\":\"{}\",\"generation\":{},\"seq\":{},"
      "\"updated_at\":{},\"source_system_id\":",
      applied.commit_lsn.value(), applied.ordinal, applied.ToString(), generation, seq,
      now_us / 1'000'000);
  json_text::AppendString(lineage_.system_id, row);
  row += ",\"slot_name\":";
  json_text::AppendString(lineage_.slot, row);
  row += fmt::format(",\"timeline\":{},\"log_id\":", lineage_.timeline);
  json_text::AppendString(lineage_.log_id, row);
  row += "}\n";
  auto r = ch_.Insert("storing the sink's position",
                      "INSERT INTO " + Table() +
                          " (sink_id, commit_lsn, ordinal, event_id, generation, seq, updated_at, "
                          "source_system_id, slot_name, timeline, log_id) FORMAT JSONEachRow",
                      row);
  if (!r) return r.error().Wrap("sink " + sink_id_);
  seq_ = seq;
  generation_ = generation;
  return boost::outcome_v2::success();
}

Result<void> SinkStateStore::Save(EventId applied) { return Write(applied, generation_); }

Result<void> SinkStateStore::Rewind(EventId to) { return Write(to, generation_ + 1); }

}  // namespace pgfanout::clickhouse
