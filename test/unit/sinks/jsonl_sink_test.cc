#include "src/sinks/jsonl/jsonl_sink.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "test/support/temp_dir.h"

namespace pgfanout {
namespace {

using nlohmann::json;

// pg_type OIDs the sink gives a JSON kind to; the rest print as strings.
constexpr uint32_t kBool = 16, kInt8 = 20, kInt4 = 23, kText = 25, kJson = 114, kFloat8 = 701,
                   kNumeric = 1700, kJsonb = 3802;

std::shared_ptr<const TableSchema> Accounts() {
  return std::make_shared<const TableSchema>(TableSchema{
      .relation_id = RelationId{16384},
      .schema_name = "public",
      .table_name = "accounts",
      .columns = {{.name = "id", .type_oid = kInt4, .part_of_key = true},
                  {.name = "tenant_id", .type_oid = kText},
                  {.name = "active", .type_oid = kBool},
                  {.name = "big", .type_oid = kInt8},
                  {.name = "score", .type_oid = kFloat8},
                  {.name = "amount", .type_oid = kNumeric},
                  {.name = "doc", .type_oid = kJsonb},
                  {.name = "meta", .type_oid = kJson},
                  {.name = "name", .type_oid = kText},
                  {.name = "bio", .type_oid = kText}},
  });
}

Datum T(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }
Datum Null() { return Datum{}; }
Datum Toast() { return Datum{ValueKind::kUnchangedToast}; }

std::vector<Datum> Row(std::string id, std::string name = "ada") {
  return {T(std::move(id)), T("7"),  T("t"),  T("9007199254740993"), T("1.5"),
          T("12.50"),       T("{}"), T("[]"), T(std::move(name)),    T("hello")};
}

// Only the key column set, as pgoutput sends an old key ('K').
std::vector<Datum> KeyRow(std::string id) {
  std::vector<Datum> row(10);
  row[0] = T(std::move(id));
  return row;
}

ChangeEvent Event(Op op, EventId id = EventId{Lsn(0x16B3748), 0}) {
  return ChangeEvent{.id = id,
                     .xid = Xid{747},
                     .commit_time_us = 1'700'000'000'123'456,
                     .op = op,
                     .table = Accounts(),
                     .tenant = "7"};
}

ChangeEvent Insert(EventId id, std::string name = "ada") {
  ChangeEvent e = Event(Op::kInsert, id);
  e.new_row = Row("1", std::move(name));
  return e;
}

std::string FormatLine(const ChangeEvent& e) {
  fmt::memory_buffer out;
  JsonlSink::FormatEvent(e, out);
  return fmt::to_string(out);
}

// The line for `e`, parsed; fails the test unless it is exactly one line of valid JSON.
json Format(const ChangeEvent& e) {
  std::string line = FormatLine(e);
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "a raw newline inside the line: " << line;
  json parsed = json::parse(line, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << line;
  return parsed;
}

TEST(JsonlFormatTest, ValuesKeepTheirJsonKind) {
  ChangeEvent e = Event(Op::kInsert);
  e.new_row = {T("1"),
               T("7"),
               T("t"),
               T("9007199254740993"),
               T("-2.5e-07"),
               T("123456789012345678901234567890.000000001"),
               T(R"({"a": [1, {"b": null}]})"),
               T(R"([1, "x"])"),
               Null(),
               T("f")};
  std::string line = FormatLine(e);
  json j = Format(e);
  const json& v = j["new"];
  EXPECT_TRUE(v["id"].is_number_integer());
  EXPECT_EQ(v["id"], 1);
  EXPECT_EQ(v["tenant_id"], "7") << "text stays a string even when it looks like a number";
  EXPECT_EQ(v["active"], true);
  EXPECT_TRUE(v["big"].is_number_integer());
  EXPECT_EQ(v["big"].get<int64_t>(), 9007199254740993) << "int8 beyond 2^53 keeps every digit";
  EXPECT_TRUE(v["score"].is_number_float());
  EXPECT_DOUBLE_EQ(v["score"].get<double>(), -2.5e-07);
  EXPECT_TRUE(v["amount"].is_number());
  EXPECT_NE(line.find(R"("amount":123456789012345678901234567890.000000001)"), std::string::npos)
      << "numeric digits are written as Postgres printed them: " << line;
  EXPECT_EQ(v["doc"], json::parse(R"({"a": [1, {"b": null}]})")) << "jsonb embedded";
  EXPECT_EQ(v["meta"], json::parse(R"([1, "x"])")) << "json embedded";
  EXPECT_TRUE(v["name"].is_null()) << "SQL NULL";
  EXPECT_EQ(v["bio"], "f") << "only bool columns turn 't'/'f' into booleans";

  e.new_row[2] = T("f");
  EXPECT_EQ(Format(e)["new"]["active"], false);
}

TEST(JsonlFormatTest, NonFiniteNumbersBecomeStrings) {
  ChangeEvent e = Insert(EventId{Lsn(0x100), 0});
  e.new_row[4] = T("NaN");
  e.new_row[5] = T("Infinity");
  json j = Format(e);
  EXPECT_EQ(j["new"]["score"], "NaN");
  EXPECT_EQ(j["new"]["amount"], "Infinity");
  e.new_row[4] = T("-Infinity");
  e.new_row[5] = T("NaN");
  j = Format(e);
  EXPECT_EQ(j["new"]["score"], "-Infinity");
  EXPECT_EQ(j["new"]["amount"], "NaN");
}

TEST(JsonlFormatTest, TextRoundTripsExactly) {
  std::string controls;
  for (char c = 1; c < 0x20; ++c) controls += c;
  for (const std::string& text :
       {std::string(R"(say "hi" \ C:\path\)"), std::string("line1\nline2\r\n\ttab"), controls,
        std::string("del\x7f end"),
        std::string("h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"),
        std::string(R"(\u0041 is not unescaped)"), std::string("</script>"), std::string()}) {
    ChangeEvent e = Insert(EventId{Lsn(0x100), 0}, text);
    e.tenant = text;
    json j = Format(e);
    EXPECT_EQ(j["new"]["name"].get<std::string>(), text);
    EXPECT_EQ(j["tenant"].get<std::string>(), text);
  }
}

TEST(JsonlFormatTest, CarriesIdPositionTimeAndTable) {
  ChangeEvent e = Insert(EventId{Lsn(0x16B3748), 12});
  json j = Format(e);
  EXPECT_EQ(j["id"], "0/16B3748#12");
  EXPECT_EQ(j["lsn"], "0/16B3748");
  EXPECT_EQ(j["xid"], 747);
  EXPECT_EQ(j["schema"], "public");
  EXPECT_EQ(j["table"], "accounts");
  EXPECT_EQ(j["op"], "insert");
  EXPECT_EQ(j["tenant"], "7");
  EXPECT_EQ(j["commit_time"], "2023-11-14T22:13:20.123456Z");

  e.tenant.reset();
  EXPECT_TRUE(Format(e)["tenant"].is_null());
}

TEST(JsonlFormatTest, CommitTimeIsUtcWithMicroseconds) {
  ChangeEvent e = Insert(EventId{Lsn(0x100), 0});
  e.commit_time_us = 0;
  EXPECT_EQ(Format(e)["commit_time"], "1970-01-01T00:00:00.000000Z");
  e.commit_time_us = 951'782'400'000'001;  // leap day 2000
  EXPECT_EQ(Format(e)["commit_time"], "2000-02-29T00:00:00.000001Z");
  e.commit_time_us = -1;
  EXPECT_EQ(Format(e)["commit_time"], "1969-12-31T23:59:59.999999Z");
}

TEST(JsonlFormatTest, InsertKeyComesFromNewRow) {
  json j = Format(Insert(EventId{Lsn(0x100), 0}));
  EXPECT_EQ(j["key"], json::parse(R"({"id": 1})"));
  EXPECT_EQ(j["new"].size(), 10u);
  EXPECT_TRUE(j["old"].is_null());
  EXPECT_FALSE(j.contains("unchanged_toast"));
}

TEST(JsonlFormatTest, UpdateKeyComesFromNewRowAndOldKeyIsKept) {
  ChangeEvent e = Event(Op::kUpdate);
  e.new_row = Row("2");
  e.old_row = KeyRow("1");
  e.old_is_key_only = true;
  json j = Format(e);
  EXPECT_EQ(j["op"], "update");
  EXPECT_EQ(j["key"], json::parse(R"({"id": 2})"));
  EXPECT_EQ(j["new"]["id"], 2);
  EXPECT_EQ(j["old"], json::parse(R"({"id": 1})")) << "an old key shows its key columns only";
}

TEST(JsonlFormatTest, DeleteKeyComesFromOldRow) {
  ChangeEvent e = Event(Op::kDelete);
  e.old_row = KeyRow("5");
  e.old_is_key_only = true;
  json j = Format(e);
  EXPECT_EQ(j["op"], "delete");
  EXPECT_EQ(j["key"], json::parse(R"({"id": 5})"));
  EXPECT_TRUE(j["new"].is_null());
  EXPECT_EQ(j["old"], json::parse(R"({"id": 5})"));
}

TEST(JsonlFormatTest, DeleteWithFullOldRowShowsEveryColumn) {
  ChangeEvent e = Event(Op::kDelete);
  e.old_row = Row("5", "bob");
  json j = Format(e);
  EXPECT_EQ(j["key"], json::parse(R"({"id": 5})"));
  EXPECT_EQ(j["old"]["name"], "bob");
  EXPECT_EQ(j["old"].size(), 10u);
}

TEST(JsonlFormatTest, UnchangedToastIsLeftOutOfNewAndListed) {
  ChangeEvent e = Event(Op::kUpdate);
  e.new_row = Row("1");
  e.new_row[6] = Toast();  // doc
  e.new_row[9] = Toast();  // bio
  json j = Format(e);
  EXPECT_FALSE(j["new"].contains("doc"));
  EXPECT_FALSE(j["new"].contains("bio"));
  EXPECT_EQ(j["new"]["name"], "ada");
  EXPECT_EQ(j["unchanged_toast"], json::parse(R"(["doc", "bio"])"));
}

TEST(JsonlFormatTest, TruncateCarriesItsFlagsAndNoRows) {
  ChangeEvent e = Event(Op::kTruncate);
  e.tenant.reset();
  e.truncate_flags = kTruncateCascade | kTruncateRestartIdentity;
  json j = Format(e);
  EXPECT_EQ(j["op"], "truncate");
  EXPECT_TRUE(j["tenant"].is_null());
  EXPECT_EQ(j["cascade"], true);
  EXPECT_EQ(j["restart_identity"], true);
  EXPECT_FALSE(j.contains("key"));
  EXPECT_FALSE(j.contains("new"));

  e.truncate_flags = kTruncateRestartIdentity;
  j = Format(e);
  EXPECT_EQ(j["cascade"], false);
  EXPECT_EQ(j["restart_identity"], true);
  EXPECT_FALSE(j.contains("only_tenants")) << "a sink of every tenant truncates everything";
}

TEST(JsonlFormatTest, TruncateInPerTenantSinkNamesTheTenantsItAppliesTo) {
  ChangeEvent e = Event(Op::kTruncate);
  e.tenant.reset();
  fmt::memory_buffer out;
  const std::vector<std::string> scope = {"7", "9"};
  JsonlSink::FormatEvent(e, out, scope);
  json j = json::parse(std::string(out.data(), out.size()));
  EXPECT_EQ(j["op"], "truncate");
  EXPECT_EQ(j["only_tenants"], json::parse(R"(["7", "9"])"));
}

using TempDir = ::pgfanout::testing::TempDir;

class JsonlSinkFileTest : public ::testing::Test {
 protected:
  std::string Contents() const {
    std::ifstream in(path_, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Ids of the lines in the file, in order; fails on a line that is not JSON.
  std::vector<std::string> LineIds() const {
    std::vector<std::string> ids;
    std::istringstream in(Contents());
    for (std::string line; std::getline(in, line);) {
      json j = json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << line;
      ids.push_back(j.is_discarded() ? "?" : j["id"].get<std::string>());
    }
    return ids;
  }
  uint64_t FileSize() const { return std::filesystem::file_size(path_); }
  void WriteFile(const std::string& text) const { std::ofstream(path_, std::ios::binary) << text; }

  static std::vector<ChangeEvent> Batch(uint64_t lsn, uint32_t n) {
    std::vector<ChangeEvent> out;
    for (uint32_t i = 0; i < n; ++i) out.push_back(Insert(EventId{Lsn(lsn), i}));
    return out;
  }
  // Writes `events` and returns the token, or "" after failing the test.
  static std::string MustWrite(JsonlSink& sink, const std::vector<ChangeEvent>& events) {
    auto token = sink.Write(events);
    EXPECT_TRUE(token.has_value()) << token.error().message;
    return token.has_value() ? token.value() : std::string();
  }

  TempDir dir_;
  std::string path_ = dir_.path() + "/out.jsonl";
};

TEST_F(JsonlSinkFileTest, NewSinkAppendsAfterExistingContent) {
  WriteFile("{\"id\":\"kept\"}\n");
  JsonlSink sink(path_);
  auto opened = sink.Open(std::nullopt, {});
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(opened.value(), std::nullopt) << "a new sink has no position of its own";
  MustWrite(sink, Batch(0x100, 2));
  EXPECT_EQ(LineIds(), (std::vector<std::string>{"kept", "0/100#0", "0/100#1"}));
}

TEST_F(JsonlSinkFileTest, TokenIsTheFileLength) {
  JsonlSink sink(path_);
  ASSERT_TRUE(sink.Open(std::nullopt, {}).has_value());
  std::string token = MustWrite(sink, Batch(0x100, 3));
  EXPECT_EQ(token, std::to_string(FileSize()));
  token = MustWrite(sink, Batch(0x200, 1));
  EXPECT_EQ(token, std::to_string(FileSize()));
  EXPECT_EQ(LineIds().size(), 4u);
}

TEST_F(JsonlSinkFileTest, ReopenDropsLinesPastTheCursorSoTheyAreWrittenOnce) {
  std::string covered;
  {
    JsonlSink sink(path_);
    ASSERT_TRUE(sink.Open(std::nullopt, {}).has_value());
    covered = MustWrite(sink, Batch(0x100, 2));
    MustWrite(sink, Batch(0x200, 2));  // durable, but its cursor was never stored
    sink.Stop();
  }
  SinkCursor cursor{.applied = EventId{Lsn(0x100), 1}, .token = covered};
  JsonlSink sink(path_);
  auto opened = sink.Open(cursor, {});
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(opened.value(), std::nullopt) << "the file length is the cursor's token";
  EXPECT_EQ(std::to_string(FileSize()), covered);
  MustWrite(sink, Batch(0x200, 2));  // the runner re-delivers after the cursor
  EXPECT_EQ(LineIds(), (std::vector<std::string>{"0/100#0", "0/100#1", "0/200#0", "0/200#1"}));
}

TEST_F(JsonlSinkFileTest, CursorBeyondTheFileIsAMismatchNamingTheFile) {
  WriteFile("{\"id\":\"0/100#0\"}\n");
  JsonlSink sink(path_);
  auto opened = sink.Open(SinkCursor{.applied = EventId{Lsn(0x200), 0}, .token = "4096"}, {});
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().kind, ErrorKind::kMismatch);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, path_, opened.error().message);
  EXPECT_EQ(Contents(), "{\"id\":\"0/100#0\"}\n") << "a mismatch leaves the file alone";
}

TEST_F(JsonlSinkFileTest, CreatesMissingParentDirectories) {
  path_ = dir_.path() + "/tenants/7/out.jsonl";
  JsonlSink sink(path_);
  auto opened = sink.Open(std::nullopt, {});
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  std::string token = MustWrite(sink, Batch(0x100, 1));
  EXPECT_EQ(token, std::to_string(FileSize()));
  EXPECT_EQ(LineIds(), std::vector<std::string>{"0/100#0"});
}

// A symbolic link where the file goes would send the rows elsewhere (another user's file,
// a world-readable place): refused, and what it points at is left alone. The file it
// makes is the daemon's user's only.
TEST_F(JsonlSinkFileTest, ASymbolicLinkAtThePathIsRefusedAndTheFileIsPrivate) {
  const std::string elsewhere = dir_.path() + "/elsewhere";
  std::ofstream(elsewhere) << "not ours\n";
  ASSERT_EQ(::symlink(elsewhere.c_str(), path_.c_str()), 0);
  JsonlSink linked(path_);
  auto opened = linked.Open(std::nullopt, {});
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(opened.error().message.find("is a symbolic link"), std::string::npos)
      << opened.error().message;
  ::unlink(path_.c_str());
  JsonlSink sink(path_);
  ASSERT_TRUE(sink.Open(std::nullopt, {}).has_value());
  MustWrite(sink, Batch(0x100, 1));
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(elsewhere);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "not ours");
}

// A power cut: the file keeps what its last fdatasync covered, nothing after. The cursor the
// runner stored for each batch (its token: the file length) must never point past that,
// or the lines it covers are gone while the log believes the sink has them. Without the
// sync in Write(), the cut leaves less than the cursor covers and the reopen refuses.
TEST_F(JsonlSinkFileTest, EveryLineACursorCoversSurvivesAPowerCut) {
  uint64_t synced = 0;
  auto noting = [&](int fd) {
    const int r = ::fdatasync(fd);
    struct stat st {};
    if (r == 0 && ::fstat(fd, &st) == 0) synced = static_cast<uint64_t>(st.st_size);
    return r;
  };
  SinkCursor cursor;
  {
    JsonlSink sink(path_, {}, noting);
    ASSERT_TRUE(sink.Open(std::nullopt, {}).has_value());
    for (uint64_t b = 1; b <= 10; ++b) {
      auto batch = Batch(0x100 * b, 5);
      cursor = SinkCursor{.applied = batch.back().id, .token = MustWrite(sink, batch)};
    }
    sink.Stop();
  }
  // The cut: what no sync covered is gone.
  std::filesystem::resize_file(path_, std::min<uint64_t>(synced, FileSize()));
  JsonlSink reopened(path_);
  auto opened = reopened.Open(cursor, {});
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(LineIds().size(), 50u) << "every line the stored cursor covers";
}

// The runner stores a cursor with an empty token when every event it has read so far was
// filtered out, before this sink wrote anything.
TEST_F(JsonlSinkFileTest, CursorWithoutTokenKeepsTheFileAndAppends) {
  WriteFile("{\"id\":\"kept\"}\n");
  JsonlSink sink(path_);
  SinkCursor skipped{.applied = EventId{Lsn(0x100), 3}, .token = ""};
  auto opened = sink.Open(skipped, {});
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  MustWrite(sink, Batch(0x200, 1));
  EXPECT_EQ(LineIds(), (std::vector<std::string>{"kept", "0/200#0"}));
}

}  // namespace
}  // namespace pgfanout
