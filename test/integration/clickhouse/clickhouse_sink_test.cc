// The ClickHouse sink driven directly (no daemon) against one real clickhouse-server:
// each scenario in a database of its own, read back as a user would, with FINAL.

#include "src/sinks/clickhouse/clickhouse_sink.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>

#include "test/support/clickhouse_server.h"

namespace pgfanout::testing {
namespace {

constexpr uint32_t kText = 25, kInt4 = 23, kNumeric = 1700, kTimestamptz = 1184;

Datum T(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }
Datum Null() { return Datum{}; }
Datum Toast() { return Datum{ValueKind::kUnchangedToast}; }

std::shared_ptr<const TableSchema> Accounts(bool with_score = false) {
  TableSchema t{
      .relation_id = RelationId{16384},
      .schema_name = "public",
      .table_name = "accounts",
      .columns = {{.name = "tenant_id", .type_oid = kText, .part_of_key = true},
                  {.name = "id", .type_oid = kInt4, .part_of_key = true},
                  {.name = "name", .type_oid = kText},
                  {.name = "balance", .type_oid = kNumeric, .type_modifier = ((12 << 16) | 2) + 4},
                  {.name = "note", .type_oid = kText},
                  {.name = "updated_at", .type_oid = kTimestamptz}}};
  if (with_score) t.columns.push_back({.name = "score", .type_oid = kInt4});
  return std::make_shared<const TableSchema>(std::move(t));
}

class ClickHouseSinkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = ClickHouseServer::Start(
                  ClickHouseServer::Options{.users = {{"writer", "pw with spaces & <xml>"}}})
                  .release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    database_ = fmt::format("t{}_{}", ::getpid(), next_database_++);
  }

  SinkConfig Config(std::vector<std::string> tenants = {"*"}, std::string id = "ch") const {
    return SinkConfig{
        .id = std::move(id),
        .tenants = std::move(tenants),
        .options = ClickHouseSinkOptions{.url = server_->Url(),
                                         .database = database_,
                                         .create_tables = true,
                                         .timeout = std::chrono::milliseconds(10'000)}};
  }
  static ClickHouseSinkOptions& Ch(SinkConfig& config) {
    return std::get<ClickHouseSinkOptions>(config.options);
  }
  static std::vector<TableConfig> Tracked() {
    return {TableConfig{.schema = "public", .name = "accounts", .tenant_column = "tenant_id"}};
  }
  std::unique_ptr<ClickHouseSink> Sink(SinkConfig config) const {
    return std::make_unique<ClickHouseSink>(SinkBasics::Of(config, Tracked()),
                                            std::get<ClickHouseSinkOptions>(config.options));
  }
  std::unique_ptr<ClickHouseSink> Opened(SinkConfig config,
                                         const std::optional<SinkCursor>& stored = std::nullopt) {
    auto sink = Sink(std::move(config));
    auto r = sink->Open(stored, {});
    EXPECT_TRUE(r) << r.error().message;
    return sink;
  }

  ChangeEvent Event(Op op, std::shared_ptr<const TableSchema> table = nullptr) {
    lsn_ += 8;
    return ChangeEvent{.id = EventId{Lsn(lsn_), 0},
                       .xid = Xid{7},
                       .op = op,
                       .table = table ? std::move(table) : accounts_};
  }
  ChangeEvent Insert(std::string tenant, std::string id, std::string name, Datum note = T("n")) {
    ChangeEvent e = Event(Op::kInsert);
    e.tenant = tenant;
    e.new_row = {T(tenant), T(id), T(name), T("10.50"), note, T("2026-01-01 10:00:00.25+02")};
    return e;
  }
  ChangeEvent Update(std::string tenant, std::string id, std::string name, Datum note = Toast()) {
    ChangeEvent e = Insert(tenant, id, name, note);
    e.op = Op::kUpdate;
    return e;
  }
  ChangeEvent Delete(std::string tenant, std::string id) {
    ChangeEvent e = Event(Op::kDelete);
    e.tenant = tenant;
    e.old_row = {T(tenant), T(id), Null(), Null(), Null(), Null()};
    e.old_is_key_only = true;
    return e;
  }

  void Write(ClickHouseSink& sink, const std::vector<ChangeEvent>& events) {
    auto r = sink.Write(events);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r.value(), events.back().id.ToString());
  }

  // What a user sees: the live rows, newest version of each key. A long value shows as its
  // length and last byte, so a failure message stays readable.
  std::vector<Row> Final(const std::string& columns = "tenant_id, id, name, note") const {
    auto rows = server_->Rows(fmt::format(
        "SELECT {} FROM {}.accounts FINAL WHERE pgfanout_is_deleted = 0 ORDER BY tenant_id, id",
        columns, database_));
    for (auto& r : rows) {
      for (auto& v : r) {
        if (v && v->size() > 100) v = Long(*v);
      }
    }
    return rows;
  }
  static std::string Long(const std::string& v) {
    return fmt::format("<{} bytes ending {}>", v.size(), v.back());
  }

  static ClickHouseServer* server_;
  static std::atomic<int> next_database_;
  std::string database_;
  std::shared_ptr<const TableSchema> accounts_ = Accounts();
  uint64_t lsn_ = 0x1000000;
};

ClickHouseServer* ClickHouseSinkTest::server_ = nullptr;
std::atomic<int> ClickHouseSinkTest::next_database_{0};

TEST_F(ClickHouseSinkTest, ABatchWrittenTwiceLeavesWhatFinalShowsUnchanged) {
  auto sink = Opened(Config());
  // 18.16 knows no insert_deduplication_token: sending it would fail every insert.
  EXPECT_FALSE(sink->features().dedup_token) << sink->features().version;
  const std::vector<ChangeEvent> batch = {Insert("t1", "1", "a"), Insert("t1", "2", "b"),
                                          Insert("t2", "3", "c"), Update("t1", "2", "b2"),
                                          Delete("t2", "3")};
  Write(*sink, batch);
  const std::vector<Row> once = Final("tenant_id, id, name, balance, note, updated_at");
  EXPECT_EQ(once,
            (std::vector<Row>{{"t1", "1", "a", "10.50", "n", "2026-01-01 08:00:00.250000"},
                              {"t1", "2", "b2", "10.50", "n", "2026-01-01 08:00:00.250000"}}));
  // The runner retries a batch whose cursor it did not store: same rows, same versions.
  Write(*sink, batch);
  EXPECT_EQ(Final("tenant_id, id, name, balance, note, updated_at"), once);
  EXPECT_EQ(server_->Scalar(fmt::format("SELECT count() FROM {}.accounts FINAL", database_)), "3")
      << "one row per key (the delete's included) under FINAL";
}

TEST_F(ClickHouseSinkTest, OpenReturnsThePositionStoredBesideTheRowsWithItsLineage) {
  const Lineage ours{.system_id = "7310000000000000001",
                     .slot = "pgfanout",
                     .timeline = 2,
                     .log_id = "0123456789abcdef0123456789abcdef"};
  auto sink = Sink(Config());
  ASSERT_TRUE(sink->Open(std::nullopt, ours));
  const std::vector<ChangeEvent> batch = {Insert("t1", "1", "a"), Insert("t1", "2", "b")};
  Write(*sink, batch);
  sink->Stop();
  const EventId written = batch.back().id;
  const SinkCursor behind{.applied = batch.front().id, .token = "x"};

  // The daemon died after the rows and the position landed, before it stored its cursor.
  auto again = Sink(Config());
  auto resumed = again->Open(behind, ours);
  ASSERT_TRUE(resumed) << resumed.error().message;
  ASSERT_TRUE(resumed.value());
  EXPECT_EQ(resumed.value()->applied, written);
  ASSERT_TRUE(resumed.value()->lineage.has_value());
  EXPECT_EQ(*resumed.value()->lineage, ours);

  // pgfanout replay: the position moves back, under the lineage the rewind names.
  Lineage rewinder = ours;
  rewinder.timeline = 3;
  ASSERT_TRUE(again->Rewind(behind, rewinder));
  auto after_rewind = Sink(Config())->Open(std::nullopt, ours);
  ASSERT_TRUE(after_rewind && after_rewind.value());
  EXPECT_EQ(after_rewind.value()->applied, behind.applied);
  EXPECT_EQ(after_rewind.value()->lineage.value_or(Lineage{}).timeline, 3u);
}

TEST_F(ClickHouseSinkTest, AStateTableWithoutLineageColumnsGetsThem) {
  server_->Exec(fmt::format("CREATE DATABASE IF NOT EXISTS {}", database_));
  server_->Exec(fmt::format(
      "CREATE TABLE {}.pgfanout_sink_state (sink_id String, commit_lsn UInt64, ordinal UInt32, "
      "event_id String, generation UInt32, seq UInt64, updated_at DateTime) "
      "ENGINE = ReplacingMergeTree(seq) ORDER BY sink_id",
      database_));
  server_->Exec(fmt::format("INSERT INTO {}.pgfanout_sink_state VALUES ('ch', 4096, 2, "
                            "'0/1000#2', 0, 1, now())",
                            database_));
  SinkConfig config = Config();
  config.id = "ch";
  auto sink = Sink(config);
  auto opened = sink->Open(std::nullopt, Lineage{.log_id = "x"});
  ASSERT_TRUE(opened) << opened.error().message;
  ASSERT_TRUE(opened.value());
  EXPECT_EQ(opened.value()->applied, (EventId{Lsn(0x1000), 2}));
  EXPECT_FALSE(opened.value()->lineage.has_value()) << "an old row names no log";
}

TEST_F(ClickHouseSinkTest, AnUpdateLeavingAToastedValueAloneKeepsItAlsoWhenTheKeyMoves) {
  const std::string big(100'000, 'x');
  auto sink = Opened(Config());
  Write(*sink, {Insert("t1", "1", "a", T(big + "1")), Insert("t1", "2", "b", T(big + "2"))});
  // Postgres does not resend a TOASTed value the UPDATE did not touch.
  ChangeEvent moved = Update("t1", "20", "b moved");
  moved.old_row = {T("t1"), T("2"), Null(), Null(), Null(), Null()};
  moved.old_is_key_only = true;
  Write(*sink, {Update("t1", "1", "a2"), moved});
  EXPECT_EQ(Final(), (std::vector<Row>{{"t1", "1", "a2", Long(big + "1")},
                                       {"t1", "20", "b moved", Long(big + "2")}}));
  EXPECT_EQ(server_->Scalar(fmt::format("SELECT count() FROM {}.accounts FINAL WHERE id = 20 AND "
                                        "note = '{}'",
                                        database_, big + "2")),
            "1")
      << "the whole value, byte for byte";
  // The same batch again, as after a crash between its rows and its position: the old key
  // now holds this batch's delete, the value is at the new key already.
  Write(*sink, {Update("t1", "1", "a2"), moved});
  EXPECT_EQ(Final(), (std::vector<Row>{{"t1", "1", "a2", Long(big + "1")},
                                       {"t1", "20", "b moved", Long(big + "2")}}))
      << "a replayed move kept its unchanged value";
  // Again in one batch with the insert: the value comes from the batch itself.
  Write(*sink, {Insert("t1", "3", "c", T(big + "3")), Update("t1", "3", "c2")});
  EXPECT_EQ(Final()[1], (Row{"t1", "3", "c2", Long(big + "3")}));
}

// A copy that replaces a per-tenant sink's rows (its target's position could not be
// trusted): its tenants' rows go first, whatever their versions (another history's
// versions could rank above the copy's); other tenants' rows in the table stay.
TEST_F(ClickHouseSinkTest, ACopyThatReplacesDeletesOnlyItsTenantsRowsFirst) {
  auto all = Opened(Config({"*"}, "ch-all"));
  lsn_ = 0x7000000000;  // versions from another history, far above the copy's
  Write(*all, {Insert("t1", "1", "stale"), Insert("t1", "2", "gone"), Insert("t2", "3", "other")});
  auto t1 = Opened(Config({"t1"}, "ch-t1"));
  const std::vector<std::shared_ptr<const TableSchema>> tables = {accounts_};
  auto begun = t1->BeginReplace(tables);
  ASSERT_TRUE(begun) << begun.error().message;
  lsn_ = 0x2000000;
  Write(*t1, {Insert("t1", "1", "fresh")});
  ASSERT_TRUE(t1->FinishReplace(tables, Lsn(lsn_)));
  EXPECT_EQ(Final("tenant_id, id, name"),
            (std::vector<Row>{{"t1", "1", "fresh"}, {"t2", "3", "other"}}));
}

TEST_F(ClickHouseSinkTest, TruncateOnAPerTenantSinkRemovesOnlyItsTenantsOlderRows) {
  auto all = Opened(Config({"*"}, "ch-all"));
  Write(*all, {Insert("t1", "1", "a"), Insert("t2", "2", "b"), Insert("t3", "3", "c")});
  auto t1 = Opened(Config({"t1", "t3"}, "ch-t13"));
  ChangeEvent before = Insert("t1", "5", "before");
  ChangeEvent truncate = Event(Op::kTruncate);
  // Same transaction as the TRUNCATE, so the same version: inserted after it, it stays.
  ChangeEvent after = Insert("t1", "4", "after");
  after.id = EventId{truncate.id.commit_lsn, 1};
  Write(*t1, {before, truncate, after});
  EXPECT_EQ(Final(), (std::vector<Row>{{"t1", "4", "after", "n"}, {"t2", "2", "b", "n"}}));
}

TEST_F(ClickHouseSinkTest, TruncateOnAnAllTenantsSinkKeepsRowsNewerThanIt) {
  auto sink = Opened(Config());
  Write(*sink, {Insert("t1", "1", "a"), Insert("t2", "2", "b")});
  ChangeEvent truncate = Event(Op::kTruncate);
  const std::vector<ChangeEvent> batch = {truncate, Insert("t2", "9", "new")};
  Write(*sink, batch);
  EXPECT_EQ(Final(), (std::vector<Row>{{"t2", "9", "new", "n"}}));
  // The batch again (its cursor was not stored): the TRUNCATE runs again and leaves the
  // row that is newer than it.
  Write(*sink, batch);
  EXPECT_EQ(Final(), (std::vector<Row>{{"t2", "9", "new", "n"}}));
}

TEST_F(ClickHouseSinkTest, ANewSourceColumnIsAddedAfterAskingForABackfill) {
  auto sink = Sink(Config());
  std::vector<std::string> asked;
  std::string columns_when_asked;
  sink->SetBackfillRequest([&](const std::string& table) -> Result<void> {
    asked.push_back(table);
    columns_when_asked = server_->Scalar(fmt::format(
        "SELECT count() FROM system.columns WHERE database = '{}' AND table = 'accounts' AND "
        "name = 'score'",
        database_));
    return boost::outcome_v2::success();
  });
  ASSERT_TRUE(sink->Open(std::nullopt, {}));
  Write(*sink, {Insert("t1", "1", "a")});
  EXPECT_TRUE(asked.empty()) << "creating a table asks for nothing";
  ChangeEvent wide = Event(Op::kInsert, Accounts(/*with_score=*/true));
  wide.new_row = {T("t1"), T("2"), T("b"), Null(), Null(), Null(), T("9")};
  Write(*sink, {wide});
  EXPECT_EQ(asked, (std::vector<std::string>{"public.accounts"}));
  EXPECT_EQ(columns_when_asked, "0") << "asked before the ALTER, so a crash cannot lose it";
  EXPECT_EQ(Final("id, score"), (std::vector<Row>{{"1", std::nullopt}, {"2", "9"}}));
}

TEST_F(ClickHouseSinkTest, AValueTheTargetCannotHoldStopsTheSinkNamingTableAndColumn) {
  server_->Exec("CREATE DATABASE " + database_);
  server_->Exec(fmt::format(
      "CREATE TABLE {}.accounts (tenant_id String, id Int32, name Nullable(String), balance "
      "Decimal(4, 2), note Nullable(String), updated_at Nullable(String), pgfanout_version UInt64, "
      "pgfanout_is_deleted UInt8) ENGINE = ReplacingMergeTree(pgfanout_version) ORDER BY "
      "(tenant_id, id)",
      database_));
  SinkConfig config = Config();
  Ch(config).create_tables = false;
  auto sink = Opened(config);
  // 10.50 fits Decimal(4, 2); 1234.50 does not, and the server says so.
  ChangeEvent big = Insert("t1", "1", "a");
  big.new_row[3] = T("1234.50");
  auto r = sink->Write(std::vector<ChangeEvent>{big});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kMismatch) << r.error().message;
  EXPECT_NE(r.error().message.find(
                fmt::format("sink ch: table public.accounts -> {}.accounts", database_)),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("balance"), std::string::npos) << r.error().message;
  // A source column the table lacks: named, and not added to a table the sink did not make.
  ChangeEvent wide = Event(Op::kInsert, Accounts(/*with_score=*/true));
  wide.new_row = {T("t1"), T("2"), T("b"), Null(), Null(), Null(), T("9")};
  r = sink->Write(std::vector<ChangeEvent>{wide});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(r.error().message.find("no column \"score\""), std::string::npos) << r.error().message;
}

TEST_F(ClickHouseSinkTest, ATableThatCannotCollapseVersionsIsRefused) {
  server_->Exec("CREATE DATABASE " + database_);
  server_->Exec(fmt::format(
      "CREATE TABLE {}.accounts (tenant_id String, id Int32, name Nullable(String), balance "
      "Nullable(Decimal(12, 2)), note Nullable(String), updated_at Nullable(String), "
      "pgfanout_version UInt64, pgfanout_is_deleted UInt8) ENGINE = MergeTree ORDER BY id",
      database_));
  auto sink = Opened(Config());
  auto r = sink->Write(std::vector<ChangeEvent>{Insert("t1", "1", "a")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(r.error().message.find("must be ReplacingMergeTree(pgfanout_version)"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(server_->Scalar(fmt::format("SELECT count() FROM {}.accounts", database_)), "0");
}

TEST_F(ClickHouseSinkTest, CredentialsWorkAndAWrongPasswordIsNeverShown) {
  SinkConfig config = Config();
  Ch(config).user = "writer";
  Ch(config).password = "pw with spaces & <xml>";
  auto sink = Opened(config);
  Write(*sink, {Insert("t1", "1", "a")});
  EXPECT_EQ(Final().size(), 1u);

  Ch(config).password = "hunter2-not-it";
  auto refused = Sink(config)->Open(std::nullopt, {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::kConnection) << "retried: a person may fix it";
  EXPECT_NE(refused.error().message.find("Wrong password for user writer"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(refused.error().message.find("hunter2"), std::string::npos) << refused.error().message;
}

TEST_F(ClickHouseSinkTest, AServerThatDoesNotAnswerIsAConnectionError) {
  SinkConfig config = Config();
  Ch(config).url = fmt::format("http://127.0.0.1:{}", FreePort());
  Ch(config).timeout = std::chrono::milliseconds(500);
  auto r = Sink(config)->Open(std::nullopt, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kConnection) << r.error().message;
  EXPECT_NE(r.error().message.find("no answer from ClickHouse"), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace pgfanout::testing
