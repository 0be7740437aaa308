// OpenSinkAtCursor (src/pipeline/sink_open.h): how a sink is opened at its cursor, and
// what a crash between a sink's first write and its first cursor store leaves behind.
#include "src/pipeline/sink_open.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "src/sinks/jsonl/jsonl_sink.h"
#include "test/support/temp_dir.h"

namespace pgfanout {
namespace {

using ::pgfanout::testing::TempDir;

// What a JSONL file holds, one id per line ("?" for a line that is not an event).
std::vector<std::string> FileIds(const std::string& path) {
  std::vector<std::string> ids;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const auto at = line.find("\"id\":\"");
    ids.push_back(at == std::string::npos ? "?"
                                          : line.substr(at + 6, line.find('"', at + 6) - at - 6));
  }
  return ids;
}

// The crash the fault suite found (StreamTest, 1 run in 13): a JSONL sink whose cursor had
// no token yet (a new sink, or one that had only skipped events) wrote its first batch and
// died before the cursor was stored. The next Open() kept those lines and the batch came
// again: every event of it twice. Opened at its cursor, the sink now goes back to the file
// as its first Open() found it, in both cases, and keeps what was there before.
TEST(SinkOpenTest, AJsonlSinkKilledAfterItsFirstWriteWritesThoseLinesOnce) {
  const auto users_ = std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{16384},
                  .schema_name = "public",
                  .table_name = "users",
                  .columns = {{.name = "id", .type_oid = 23, .part_of_key = true}}});
  for (bool skipped_first : {false, true}) {
    SCOPED_TRACE(skipped_first ? "cursor without a token" : "no cursor");
    TempDir dir;
    const std::string path = dir.path() + "/out.jsonl";
    std::ofstream(path) << "{\"id\":\"kept\"}\n";
    auto log = NewMemoryEventLog();
    const std::string id = skipped_first ? "skipped" : "new";
    if (skipped_first) {
      ASSERT_TRUE(log->StoreCursor(id, SinkCursor{.applied = EventId{Lsn(0x80), 0}}).has_value());
    }
    const std::vector<ChangeEvent> batch = {
        ChangeEvent{.id = EventId{Lsn(0x100), 0}, .op = Op::kInsert, .table = users_},
        ChangeEvent{.id = EventId{Lsn(0x100), 1}, .op = Op::kInsert, .table = users_}};
    {
      JsonlSink sink(path);
      auto opened = OpenSinkAtCursor(sink, *log, id, Lineage{});
      ASSERT_TRUE(opened.has_value()) << opened.error().message;
      ASSERT_TRUE(sink.Write(batch).has_value());
      // Killed here: the batch is in the file, its cursor is not in the log.
    }
    JsonlSink sink(path);
    auto opened = OpenSinkAtCursor(sink, *log, id, Lineage{});
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    auto token = sink.Write(batch);  // the runner hands the batch again
    ASSERT_TRUE(token.has_value()) << token.error().message;
    EXPECT_EQ(FileIds(path), (std::vector<std::string>{"kept", "0/100#0", "0/100#1"}));
    // Once the cursor has a token of its own, that token is what a reopen goes back to.
    ASSERT_TRUE(log->StoreCursor(id, SinkCursor{.applied = batch.back().id, .token = token.value()})
                    .has_value());
    const std::vector<ChangeEvent> later = {
        ChangeEvent{.id = EventId{Lsn(0x200), 0}, .op = Op::kInsert, .table = users_}};
    ASSERT_TRUE(sink.Write(later).has_value());  // never acknowledged
    sink.Stop();
    JsonlSink again(path);
    ASSERT_TRUE(OpenSinkAtCursor(again, *log, id, Lineage{}).has_value());
    EXPECT_EQ(FileIds(path), (std::vector<std::string>{"kept", "0/100#0", "0/100#1"}));
  }
}

}  // namespace
}  // namespace pgfanout
