// The shared sink scenarios (sink_e2e_fixture.h) for the ClickHouse sink, through the
// daemon: a "*" sink and two per-tenant sinks, each into its own database of one server,
// read back as a user would: FINAL, without the rows deletes left. The server merges no
// parts, so the rows each sink ever inserted stay countable without FINAL: a change applied
// twice shows as the same row inserted twice.

#include <fmt/format.h>

#include <iostream>
#include <thread>

#include "test/integration/sink_e2e_fixture.h"
#include "test/support/clickhouse_server.h"
#include "test/support/http_client.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;

struct ChSink {
  const char* id;
  const char* database;
  const char* tenants;
};
constexpr ChSink kSinks[] = {{"ch-t1", "tenant_1", "[\"t1\"]"},
                             {"ch-t23", "tenants_23", "[\"t2\", \"t3\"]"},
                             {"ch-all", "everyone", "[\"*\"]"}};

class ClickHouseE2ETest : public SinkE2ETest {
 protected:
  void SetUp() override {
    SinkE2ETest::SetUp();
    if (HasFatalFailure()) return;
    ch_ = ClickHouseServer::Start({.no_merges = true});
    ASSERT_NE(ch_, nullptr);
  }

  void TearDown() override {
    SinkE2ETest::TearDown();
    ch_.reset();
  }

  std::string SinksYaml() override {
    std::string out;
    for (const auto& s : kSinks) {
      out += fmt::format(
          "  - id: {}\n    type: clickhouse\n    tenants: {}\n    url: \"{}\"\n"
          "    database: {}\n    batch_size: 100\n",
          s.id, s.tenants, ch_->Url(), s.database);
    }
    return out;
  }

  static std::string DatabaseOf(const std::string& sink_id) {
    for (const auto& s : kSinks) {
      if (sink_id == s.id) return s.database;
    }
    return "";
  }

  std::optional<Rows> TargetRows(const std::string& sink_id, const std::string& table,
                                 const std::set<std::string>& tenants) override {
    std::string where = "pgfanout_is_deleted = 0";
    if (!tenants.empty()) {
      std::string list;
      for (const auto& t : tenants) list += (list.empty() ? "'" : ", '") + t + "'";
      where += " AND tenant_id IN (" + list + ")";
    }
    std::string select;
    for (const auto& c : Columns(table)) select += (select.empty() ? "" : ", ") + c;
    auto rows = ch_->TryRows(fmt::format("SELECT {} FROM {}.{} FINAL WHERE {}", select,
                                         DatabaseOf(sink_id), table, where));
    if (!rows) return std::nullopt;
    return Normalise(table, std::move(*rows));
  }

  // ClickHouse's text of a value -> the source's: booleans are UInt8, and timestamptz is the
  // UTC text (String on 18.16, DateTime64 elsewhere), which the source spells for us.
  Rows Normalise(const std::string& table, std::vector<Row> rows) {
    const auto& columns = Columns(table);
    std::set<std::string> times;
    for (auto& r : rows) {
      for (size_t i = 0; i < columns.size(); ++i) {
        if (!r[i]) continue;
        if (columns[i] == "active") r[i] = *r[i] == "1" ? "true" : "false";
        if (columns[i] == "updated_at") times.insert(*r[i]);
      }
    }
    std::map<std::string, std::string> pg_text;
    if (!times.empty()) {
      std::string list;
      for (const auto& t : times) list += (list.empty() ? "'" : ", '") + t + "'";
      for (auto& r : pg_->Query(fmt::format(
               "SELECT v, (v || '+00')::timestamptz::text FROM unnest(ARRAY[{}]::text[]) v",
               list))) {
        pg_text[*r[0]] = *r[1];
      }
    }
    Rows out;
    for (auto& r : rows) {
      for (size_t i = 0; i < columns.size(); ++i) {
        if (columns[i] == "updated_at" && r[i]) r[i] = pg_text[*r[i]];
      }
      std::string key = table == "accounts" ? *r[0] + "/" + *r[1] : *r[0];
      out[key] = std::move(r);
    }
    return out;
  }

  // Rows inserted more than once, identical in every column (version and delete mark
  // included), over the sink's tables, read without FINAL.
  int64_t RepeatedRows(const std::string& database) {
    int64_t repeats = 0;
    for (const std::string table : {"accounts", "events"}) {
      const std::string columns = ch_->Scalar(fmt::format(
          "SELECT arrayStringConcat(groupArray(name), ', ') FROM system.columns "
          "WHERE database = '{}' AND table = '{}'",
          database, table));
      repeats += std::stoll(ch_->Scalar(
          fmt::format("SELECT toInt64(sum(c - 1)) FROM (SELECT count() AS c FROM {}.{} GROUP BY {})",
                      database, table, columns)));
    }
    return repeats;
  }

  std::unique_ptr<ClickHouseServer> ch_;
};

TEST_F(ClickHouseE2ETest, MixedWorkloadReachesEachSinkAsTheSourceHasIt) {
  StartDaemon();
  for (int round = 1; round <= 3; ++round) Workload(round);
  ExpectSinkEqualsSource("ch-t1", {"t1"});
  ExpectSinkEqualsSource("ch-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("ch-all", {});
  StopDaemon();
  // Without a crash each change is inserted once. No part was merged (a merge would
  // collapse a repeated row and hide it).
  for (const auto& s : kSinks) {
    EXPECT_EQ(RepeatedRows(s.database), 0) << s.id << ": a change inserted twice";
    EXPECT_EQ(ch_->Scalar(fmt::format(
                  "SELECT count() FROM system.parts WHERE database = '{}' AND level > 0", s.database)),
              "0")
        << s.id << ": the server merged parts; the check above cannot see a repeat";
  }
}

TEST_F(ClickHouseE2ETest, KillNineLoopLosesAndDuplicatesNothing) {
  StartDaemon();
  Workload(1);
  constexpr int kKills = 8;
  KillLoop(kKills, {{"ch-t1", {"t1"}}, {"ch-t23", {"t2", "t3"}}, {"ch-all", {}}});
  StopDaemon();
  // A kill between a batch's rows and its position replays that batch (at least once,
  // harmless under FINAL), so a sink may insert at most one batch (batch_size 100) again
  // per kill. More would mean the position is not kept, or batches are replayed twice.
  for (const auto& s : kSinks) {
    const int64_t repeats = RepeatedRows(s.database);
    std::cout << s.id << ": " << repeats << " rows inserted again after " << kKills << " kills\n";
    EXPECT_LE(repeats, kKills * 100) << s.id;
  }
}

TEST_F(ClickHouseE2ETest, AKillAfterRowsLandedBeforeThePositionDidChangesNothingUnderFinal) {
  // The daemon dies at the third batch whose rows are in ClickHouse but whose position is
  // neither in pgfanout_sink_state nor in the cursor: that batch is delivered again.
  WriteConfig();
  ASSERT_TRUE(daemon_.Start({"run", "--config", config_path_}, log_path_,
                            {{"PGFANOUT_FAILPOINTS", "sink.mid_write=kill@3"}}));
  WaitSlotActive(*pg_, daemon_, "pgfanout_e2e");
  Workload(1);
  ASSERT_TRUE(daemon_.Wait(60s).has_value()) << "the failpoint did not fire";
  StartDaemon();
  Workload(2);
  ExpectSinkEqualsSource("ch-t1", {"t1"});
  ExpectSinkEqualsSource("ch-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("ch-all", {});
  StopDaemon();
}

// `pgfanout resnapshot` into ClickHouse while everything streams: ch-t1 lost rows (a
// mutation deleted them) and holds one the source never had. The copy, many rounds of one
// chunk, brings the lost rows back and removes the stray one at its end, and the rows stay
// readable all along: a replace that deleted first (as `pgfanout backfill` does) would
// leave the tenant's table empty while the copy runs.
TEST_F(ClickHouseE2ETest, AResnapshotWhileStreamingRepairsASinkAndKeepsItsRowsReadable) {
  const std::string token = "ch-resnapshot-token";
  UseHttpToken(token);
  extra_yaml_ = "delivery:\n  copy_chunk_rows: 500\n  copy_round: 1ms\n";
  pg_->Exec(
      "INSERT INTO accounts (tenant_id, id, name, balance, active) "
      "SELECT 't1', 200000 + i, 'bulk ' || i, i, true FROM generate_series(1, 5000) i");
  StartDaemon();
  Workload(1);
  ExpectSinkEqualsSource("ch-t1", {"t1"});
  auto bulk_rows = [&] {
    auto n = ch_->TryRows(
        "SELECT count() FROM tenant_1.accounts FINAL WHERE pgfanout_is_deleted = 0 AND id > "
        "200000 AND id < 300000");
    return n && !n->empty() && (*n)[0][0] ? std::stoll(*(*n)[0][0]) : -1;
  };
  // The workload deleted some of the bulk rows; 50 more are lost from ch-t1 alone.
  const long long damaged =
      bulk_rows() - std::stoll(pg_->Scalar("SELECT count(*) FROM accounts WHERE id BETWEEN "
                                           "200001 AND 200050"));
  ch_->Exec("ALTER TABLE tenant_1.accounts DELETE WHERE id BETWEEN 200001 AND 200050");
  for (int i = 0; i < 100 && bulk_rows() != damaged; ++i) std::this_thread::sleep_for(100ms);
  ASSERT_EQ(bulk_rows(), damaged) << "the damage (a mutation) did not apply";
  ch_->Exec(
      "INSERT INTO tenant_1.accounts (tenant_id, id, name, pgfanout_version, "
      "pgfanout_is_deleted) VALUES ('t1', 999999, 'stray', 1, 0)");
  const std::string address = HttpAddress();
  ASSERT_FALSE(address.empty());
  StartBackground(10);
  auto asked = HttpSend(address, "POST", "/resnapshot?sink=ch-t1&table=public.accounts",
                        {{"Authorization", "Bearer " + token}});
  ASSERT_EQ(asked.status, 202) << asked.body;
  long long fewest = bulk_rows();
  bool done = false;
  for (auto deadline = std::chrono::steady_clock::now() + 120s;
       !done && std::chrono::steady_clock::now() < deadline;) {
    fewest = std::min(fewest, bulk_rows());
    auto st = HttpGet(address, "/status?sink=ch-t1", {{"Authorization", "Bearer " + token}});
    done = st.status == 200 && st.body.find("\"resnapshot\": null") != std::string::npos;
  }
  ASSERT_TRUE(done) << "the resnapshot did not finish";
  EXPECT_GE(fewest, damaged) << "rows went missing from ClickHouse while the copy ran";
  StopBackground();
  ExpectSinkEqualsSource("ch-t1", {"t1"});
  ExpectSinkEqualsSource("ch-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("ch-all", {});
  StopDaemon();
}

TEST_F(ClickHouseE2ETest, ANewColumnWithADefaultReachesTheRowsThatExistedBefore) {
  StartDaemon();
  Workload(1);
  ExpectSinkEqualsSource("ch-all", {});
  // The WAL never carries what the old rows read for the new column: the sink asks for
  // the table to be copied again before the column lands.
  pg_->Exec("ALTER TABLE accounts ADD COLUMN score int DEFAULT 7");
  pg_->Exec("INSERT INTO accounts (tenant_id, id, name, score) VALUES ('t2', 5000, 'new', 9)");
  const std::string want = pg_->Scalar(
      "SELECT string_agg(r, ',' ORDER BY r COLLATE \"C\") FROM "
      "(SELECT tenant_id || '/' || id || '=' || score AS r FROM accounts) s");
  const std::string query =
      "SELECT arrayStringConcat(arraySort(groupArray(concat(tenant_id, '/', toString(id), '=', "
      "toString(score)))), ',') FROM everyone.accounts FINAL WHERE pgfanout_is_deleted = 0";
  std::string got;
  for (auto deadline = std::chrono::steady_clock::now() + 60s;
       std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(250ms)) {
    auto rows = ch_->TryRows(query);
    got = rows && !rows->empty() && (*rows)[0][0] ? *(*rows)[0][0] : "";
    if (got == want) break;
  }
  EXPECT_EQ(got, want);
  ExpectSinkEqualsSource("ch-all", {});
  ExpectSinkEqualsSource("ch-t1", {"t1"});
  StopDaemon();
}

// The source tables partitioned (accounts by LIST of tenant, events by RANGE of id): the
// sinks see the roots, rows moving between partitions included, and the first copy reads
// through them.
class ClickHousePartitionedE2ETest : public ClickHouseE2ETest {
 protected:
  ClickHousePartitionedE2ETest() { partitioned_ = true; }
};

TEST_F(ClickHousePartitionedE2ETest, RowsOfEveryPartitionReachEachSinkUnderTheRootsName) {
  Workload(1);  // copied by the first snapshot
  StartDaemon();
  for (int round = 2; round <= 3; ++round) Workload(round);
  ExpectSinkEqualsSource("ch-t1", {"t1"});
  ExpectSinkEqualsSource("ch-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("ch-all", {});
  StopDaemon();
  for (const auto& s : kSinks) {
    EXPECT_EQ(RepeatedRows(s.database), 0) << s.id << ": a change inserted twice";
  }
}

// A truncated, a detached and an attached partition, none of which the stream carries:
// each ClickHouse sink of the table is repaired by a replacing copy (its rows older than
// the copy deleted at the end).
TEST_F(ClickHousePartitionedE2ETest, PartitionChangesTheStreamDoesNotCarryAreRepairedByACopy) {
  http_yaml_ = "  sample_interval: 200ms\n";
  Workload(1);
  StartDaemon();
  Workload(2);
  ExpectSinkEqualsSource("ch-t1", {"t1"});
  ExpectSinkEqualsSource("ch-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("ch-all", {});
  ASSERT_NO_FATAL_FAILURE(ChangePartitionsUnseenByTheStream());
  ExpectSinkEqualsSource("ch-t1", {"t1"});
  ExpectSinkEqualsSource("ch-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("ch-all", {});
  EXPECT_NE(DaemonLog().find("resnapshot of public.accounts asked (partition change)"),
            std::string::npos);
  StopDaemon();
}

}  // namespace
}  // namespace pgfanout::testing
