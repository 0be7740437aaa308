// What only the RocksDB log can promise: the state dir survives a restart and a kill -9,
// and only one process uses it at a time.
#include "checkpoints/rocksdb_event_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>

#include "checkpoints/log_identity.h"
#include "checkpoints/meta_records.h"
#include "test/unit/checkpoints/power_cut_fs.h"
#include "test/unit/checkpoints/test_events.h"

namespace pgfanout::checkpoints_test {
namespace {

class RocksDbEventLogTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // Closes the log (as a clean shutdown does) and opens the same dir again.
  void Reopen() {
    log_.reset();
    auto log = OpenRocksDbEventLog(dir_.path());
    ASSERT_TRUE(log.has_value()) << log.error().message;
    log_ = std::move(log).value();
  }

  void Append(std::vector<TransactionRecord> txs) {
    auto r = log_->Append(txs);
    ASSERT_TRUE(r.has_value()) << r.error().message;
  }

  TempDir dir_;
  std::unique_ptr<EventLog> log_;
  std::shared_ptr<const TableSchema> users_ = UsersSchema();
};

TEST_F(RocksDbEventLogTest, PositionEventsCursorsAndMetaSurviveReopen) {
  TransactionRecord tx = Tx(0x100, 2, users_);
  Append({tx, Tx(0x200, 0, users_)});
  ASSERT_TRUE(
      log_->StoreCursor("pg", SinkCursor{.applied = {Lsn(0x100), 1}, .token = "t"}).has_value());
  ASSERT_TRUE(log_->PutMeta("slot", "pgfanout").has_value());
  Reopen();
  EXPECT_EQ(log_->DurableLsn(), Lsn(0x228));
  EXPECT_EQ(log_->LastDurableEvent(), (EventId{Lsn(0x100), 1}));
  std::vector<ChangeEvent> events = ReadAll(*log_);
  ASSERT_EQ(events.size(), 2u);
  ExpectSameEvent(events[1], tx.events[1]);
  EXPECT_EQ(log_->LoadCursor("pg").value()->token, "t");
  EXPECT_EQ(log_->GetMeta("slot").value(), "pgfanout");
  const auto id = meta::Load(*log_, meta::LogIdKey()).value();
  Reopen();
  EXPECT_EQ(meta::Load(*log_, meta::LogIdKey()).value(), id) << "the log keeps its id";
  auto stale = log_->Append(std::vector{Tx(0x100, 1, users_)});
  EXPECT_FALSE(stale.has_value()) << "the commit LSN check uses the reopened position";
}

TEST_F(RocksDbEventLogTest, SchemasAreSharedAndKeptAcrossReopen) {
  auto v2 = UsersSchema(2);
  Append({Tx(0x100, 2, users_), Tx(0x200, 2, v2)});
  Reopen();
  std::vector<ChangeEvent> events = ReadAll(*log_);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].table.get(), events[1].table.get());
  EXPECT_EQ(events[2].table.get(), events[3].table.get());
  EXPECT_EQ(*events[0].table, *users_);
  EXPECT_EQ(*events[2].table, *v2);
  auto again = log_->Read(EventId{Lsn(0x100), 0}, 1);
  EXPECT_EQ(again.value()[0].table.get(), events[0].table.get()) << "one object per schema";
}

TEST_F(RocksDbEventLogTest, PartialEventsWithoutAppendAreDeletedOnReopen) {
  Append({Tx(0x100, 1, users_)});
  TransactionRecord lost = Tx(0x200, 3, users_);
  ASSERT_TRUE(log_->AppendPartial(lost.events).has_value());
  Reopen();
  EXPECT_EQ(log_->LastDurableEvent(), (EventId{Lsn(0x100), 0}));
  // The server re-sends the transaction; a later one moves the position past 0x200, which
  // would expose leftovers of the lost write had Open() kept them.
  Append({Tx(0x300, 1, users_)});
  EXPECT_EQ(Ids(ReadAll(*log_)), (std::vector<EventId>{{Lsn(0x100), 0}, {Lsn(0x300), 0}}));
}

TEST_F(RocksDbEventLogTest, PartialEventsOfANewLogAreDeletedOnReopen) {
  TransactionRecord lost = Tx(0x200, 2, users_);
  ASSERT_TRUE(log_->AppendPartial(lost.events).has_value());
  Reopen();
  EXPECT_FALSE(log_->LastDurableEvent().has_value());
  Append({Tx(0x300, 1, users_)});
  EXPECT_EQ(Ids(ReadAll(*log_)), (std::vector<EventId>{{Lsn(0x300), 0}}));
}

// The tenant index as RocksDB holds it, read with RocksDB itself (the log closed): the
// event ids of every key of the `tenants` column family, by bucket.
std::map<std::string, std::vector<EventId>> IndexKeys(const std::string& dir) {
  std::map<std::string, std::vector<EventId>> out;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  for (const auto& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir, families, &handles, &raw);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return out;
  std::unique_ptr<rocksdb::DB> db(raw);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != "tenants") continue;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string key = it->key().ToString();
      const std::string bucket = key.substr(0, key.size() - 12);
      const std::string name = bucket == std::string(1, '\0') ? "shared" : bucket.substr(5);
      const std::string id = key.substr(key.size() - 12);
      uint64_t lsn = 0, ordinal = 0;
      for (int b = 0; b < 8; ++b) lsn = (lsn << 8) | uint8_t(id[b]);
      for (int b = 8; b < 12; ++b) ordinal = (ordinal << 8) | uint8_t(id[b]);
      out[name].push_back(EventId{Lsn(lsn), uint32_t(ordinal)});
    }
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  return out;
}

TransactionRecord TenantTx(const std::shared_ptr<const TableSchema>& users, uint64_t lsn,
                           std::vector<std::string> tenants) {
  TransactionRecord tx = Tx(lsn, uint32_t(tenants.size()), users);
  for (size_t i = 0; i < tenants.size(); ++i) tx.events[i].tenant = tenants[i];
  return tx;
}

// Written-ahead events that never became durable leave with their index keys, and a trim
// takes the keys at or before its bound out of every bucket: no key outlives its event.
TEST_F(RocksDbEventLogTest, TheIndexHoldsAKeyForEveryRetainedEventAndNoOther) {
  Append({TenantTx(users_, 0x100, {"7", "8"}), TenantTx(users_, 0x200, {"8", "9"})});
  TransactionRecord lost = TenantTx(users_, 0x300, {"7", "10"});
  ASSERT_TRUE(log_->AppendPartial(lost.events).has_value());
  log_.reset();
  using Keys = std::map<std::string, std::vector<EventId>>;
  EXPECT_EQ(IndexKeys(dir_.path())["10"].size(), 1u) << "the written-ahead event is indexed";
  Reopen();
  log_.reset();
  EXPECT_EQ(IndexKeys(dir_.path()),
            (Keys{{"7", {{Lsn(0x100), 0}}},
                  {"8", {{Lsn(0x100), 1}, {Lsn(0x200), 0}}},
                  {"9", {{Lsn(0x200), 1}}}}));
  Reopen();
  ASSERT_TRUE(log_->Trim(EventId{Lsn(0x200), 0}).has_value());
  log_.reset();
  EXPECT_EQ(IndexKeys(dir_.path()), (Keys{{"9", {{Lsn(0x200), 1}}}}));
}

// A state dir written before the tenant index (format 1) is upgraded on open: what it
// holds is read by looking at the whole log, what comes after through the index.
TEST_F(RocksDbEventLogTest, ALogFromBeforeTheIndexIsIndexedFromItsLastEventOn) {
  Append({TenantTx(users_, 0x100, {"7", "8"})});
  log_.reset();
  {  // Make it a format-1 log: no `tenants` column family, the old format record.
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_.path(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir_.path(), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "tenants") {
        ASSERT_TRUE(db->DropColumnFamily(handles[i]).ok());
      }
      if (names[i] == "default") {
        ASSERT_TRUE(db->Put({}, handles[i], "format", "pgfanout-eventlog-1").ok());
      }
    }
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }
  {
    auto view = OpenRocksDbEventLogReadOnly(dir_.path());
    ASSERT_TRUE(view.has_value()) << view.error().message;
    auto read = view.value()->ReadTenants(EventId{}, std::vector<std::string>{"8"}, {},
                                          [](const EventLog::EventPeek& p) {
                                            return p.tenant == "8";
                                          });
    ASSERT_TRUE(read.has_value()) << read.error().message;
    EXPECT_EQ(Ids(read.value().events), (std::vector<EventId>{{Lsn(0x100), 1}}))
        << "a read-only view of a format-1 log reads by looking at every event";
  }
  Reopen();
  EXPECT_EQ(log_->IndexedFrom(), (EventId{Lsn(0x100), 1}));
  Append({TenantTx(users_, 0x200, {"8"})});
  auto eights = [](const EventLog::EventPeek& p) { return p.tenant == "8"; };
  auto before = log_->ReadTenants(EventId{}, std::vector<std::string>{"8"}, {}, eights);
  ASSERT_TRUE(before.has_value()) << before.error().message;
  EXPECT_EQ(Ids(before.value().events),
            (std::vector<EventId>{{Lsn(0x100), 1}, {Lsn(0x200), 0}}));
  auto after = log_->ReadTenants(EventId{Lsn(0x100), 1}, std::vector<std::string>{"8"}, {},
                                 [](const EventLog::EventPeek&) { return true; });
  ASSERT_TRUE(after.has_value()) << after.error().message;
  EXPECT_EQ(Ids(after.value().events), (std::vector<EventId>{{Lsn(0x200), 0}}));
  log_.reset();
  EXPECT_EQ(IndexKeys(dir_.path())["8"], (std::vector<EventId>{{Lsn(0x200), 0}}))
      << "only what came after the upgrade is indexed";
  Reopen();
  EXPECT_EQ(log_->IndexedFrom(), (EventId{Lsn(0x100), 1})) << "kept across reopens";
}

// Raw access to the state dir, as an older pgfanout left it.
void WriteRaw(const std::string& dir, const std::string& family,
              const std::vector<std::pair<std::string, std::string>>& puts) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const auto& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir, families, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != family) continue;
    for (const auto& [k, v] : puts) ASSERT_TRUE(db->Put({}, handles[i], k, v).ok());
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
}

std::string RawGet(const std::string& dir, const std::string& family, const std::string& key) {
  std::vector<std::string> names;
  rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const auto& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  std::string value = "(absent)";
  if (rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), dir, families, &handles, &raw).ok()) {
    std::unique_ptr<rocksdb::DB> db(raw);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == family) db->Get({}, handles[i], key, &value);
    }
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }
  return value;
}

// A log from before the meta codec (format 2, meta records as text) is read through the
// codec at once: a read-only view converts in memory, the first writable open rewrites the
// records and the format record in one batch.
TEST_F(RocksDbEventLogTest, MetaRecordsOfAFormat2LogAreUpgradedOnOpen) {
  Append({TenantTx(users_, 0x100, {"7"})});
  const auto log_id = meta::Load(*log_, meta::LogIdKey()).value();
  ASSERT_TRUE(log_id.has_value());
  log_.reset();
  WriteRaw(dir_.path(), "default", {{"format", "pgfanout-eventlog-2"}});
  WriteRaw(dir_.path(), "meta",
           {{"log.id", log_id->id},
            {"source.system_id", "7310000000000000001"},
            {"source.slot", "pgfanout"},
            {"source.timeline", "2"},
            {"sink.pg.trimmed_past", "0/100#0"},
            {"sink.pg.refill", std::string("public.users\0", 13)},
            {"sink.pg.state", ""}});
  const meta::Source source{.system_id = "7310000000000000001", .slot = "pgfanout", .timeline = 2};
  {
    auto view = OpenRocksDbEventLogReadOnly(dir_.path());
    ASSERT_TRUE(view.has_value()) << view.error().message;
    EXPECT_EQ(meta::Load(*view.value(), meta::SourceKey()).value(), source);
    auto lineage = LoadLineage(*view.value());
    ASSERT_TRUE(lineage.has_value() && lineage.value().has_value());
    EXPECT_EQ(lineage.value()->log_id, log_id->id);
    EXPECT_EQ(lineage.value()->timeline, 2u);
  }
  EXPECT_EQ(RawGet(dir_.path(), "default", "format"), "pgfanout-eventlog-2")
      << "a read-only view writes nothing";
  Reopen();
  EXPECT_EQ(RawGet(dir_.path(), "default", "format"), "pgfanout-eventlog-3");
  EXPECT_EQ(RawGet(dir_.path(), "meta", "source.slot"), "(absent)");
  EXPECT_EQ(meta::Load(*log_, meta::SourceKey()).value(), source);
  EXPECT_EQ(meta::Load(*log_, meta::LogIdKey()).value(), log_id) << "the log keeps its id";
  EXPECT_EQ(meta::Load(*log_, meta::TrimmedPastKey("pg")).value(),
            meta::TrimMark{(EventId{Lsn(0x100), 0})});
  EXPECT_EQ(meta::Load(*log_, meta::RefillKey("pg")).value(), meta::Refill{{"public.users"}});
  EXPECT_FALSE(meta::Load(*log_, meta::SinkStateKey("pg")).value().has_value());
  Reopen();
  EXPECT_EQ(meta::Load(*log_, meta::SourceKey()).value(), source) << "upgraded once, kept";
}

TEST_F(RocksDbEventLogTest, AnUnreadableOldRecordThatMattersRefusesTheOpenNamingIt) {
  log_.reset();
  WriteRaw(dir_.path(), "default", {{"format", "pgfanout-eventlog-2"}});
  WriteRaw(dir_.path(), "meta", {{"sink.pg.backfill", "garbage"}});
  auto opened = OpenRocksDbEventLog(dir_.path());
  ASSERT_FALSE(opened.has_value());
  EXPECT_NE(opened.error().message.find("sink.pg.backfill"), std::string::npos)
      << opened.error().message;
  EXPECT_EQ(RawGet(dir_.path(), "default", "format"), "pgfanout-eventlog-2")
      << "nothing half-upgraded";
}

TEST_F(RocksDbEventLogTest, SpillIsClearedOnReopen) {
  ChangeEvent e = Insert(users_, EventId{});
  for (uint64_t seq = 0; seq < 100; ++seq) {
    ASSERT_TRUE(log_->SpillPut(Xid{700}, seq, Xid{700}, e).has_value());
  }
  Reopen();
  int seen = 0;
  auto r = log_->SpillScan(Xid{700}, [&](const ChangeEvent&) -> Result<void> {
    ++seen;
    return boost::outcome_v2::success();
  });
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(seen, 0);
  ASSERT_TRUE(log_->SpillPut(Xid{700}, 0, Xid{700}, e).has_value()) << "spill usable again";
}

TEST_F(RocksDbEventLogTest, SecondOpenOfTheSameDirFailsClearly) {
  auto second = OpenRocksDbEventLog(dir_.path());
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().kind, ErrorKind::kStorage);
  EXPECT_NE(second.error().message.find("another pgfanout process is probably using the state dir"),
            std::string::npos)
      << second.error().message;
  EXPECT_NE(second.error().message.find(dir_.path()), std::string::npos);
}

// `pgfanout status` and `checkpoint` read the log while the daemon holds it.
TEST_F(RocksDbEventLogTest, ReadOnlyViewWorksBesideTheWriter) {
  Append({Tx(0x100, 2, users_)});
  TransactionRecord ahead = Tx(0x200, 2, users_);
  ASSERT_TRUE(log_->AppendPartial(ahead.events).has_value());
  ASSERT_TRUE(log_->StoreCursor("pg", SinkCursor{.applied = {Lsn(0x100), 0}}).has_value());

  auto view = OpenRocksDbEventLogReadOnly(dir_.path());
  ASSERT_TRUE(view.has_value()) << view.error().message;
  EventLog& ro = *view.value();
  EXPECT_EQ(ro.DurableLsn(), Lsn(0x128));
  EXPECT_EQ(Ids(ReadAll(ro)), (std::vector<EventId>{{Lsn(0x100), 0}, {Lsn(0x100), 1}}));
  EXPECT_EQ(ro.LoadCursor("pg").value()->applied, (EventId{Lsn(0x100), 0}));
  auto write = ro.PutMeta("x", "y");
  ASSERT_FALSE(write.has_value());
  EXPECT_EQ(write.error().kind, ErrorKind::kStorage);
  EXPECT_TRUE(log_->PutMeta("x", "y").has_value()) << "the writer is unaffected";

  TempDir empty;
  auto none = OpenRocksDbEventLogReadOnly(empty.path() + "/log");
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().kind, ErrorKind::kNotFound);
}

TEST_F(RocksDbEventLogTest, UnusableStateDirIsAStorageError) {
  std::string file = dir_.path() + "/not-a-dir";
  ASSERT_TRUE(log_->PutMeta("x", "y").has_value());
  FILE* f = fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  auto log = OpenRocksDbEventLog(file + "/state");
  ASSERT_FALSE(log.has_value());
  EXPECT_EQ(log.error().kind, ErrorKind::kStorage);
}

// --- kill -9 -----------------------------------------------------------------------------

constexpr uint32_t kKillEventsPerTx = 20;
constexpr uint32_t kChildFailed = UINT32_MAX;

// Transaction i of the kill test: odd ones are written ahead, then appended positions-only.
TransactionRecord KillTx(uint32_t i) { return Tx(0x1000 * (uint64_t{i} + 1), kKillEventsPerTx); }

// The child side, run by the parent in a fresh process (fork + exec of this binary, so the
// child does not inherit a copy of RocksDB's thread pools mid-flight): appends until killed,
// writing each acknowledged transaction's index to the pipe. With PGF_KILL_CHILD_JOURNAL,
// its files go through PowerCutFs, which notes what each sync covered.
TEST(RocksDbKillChild, DISABLED_AppendsUntilKilled) {
  const char* dir = std::getenv("PGF_KILL_CHILD_DIR");
  const char* fd_text = std::getenv("PGF_KILL_CHILD_FD");
  const char* journal = std::getenv("PGF_KILL_CHILD_JOURNAL");
  ASSERT_TRUE(dir && fd_text) << "run by RocksDbEventLogTest.EveryAcknowledgedAppendSurvives*";
  int fd = std::atoi(fd_text);
  std::unique_ptr<rocksdb::Env> env;
  if (journal != nullptr) {
    env = rocksdb::NewCompositeEnv(
        std::make_shared<testing::PowerCutFs>(rocksdb::FileSystem::Default(), journal));
  }
  auto log = RocksDbEventLog::Open(dir, /*read_only=*/false, env.get());
  for (uint32_t i = 0; log && i < 1'000'000; ++i) {
    TransactionRecord tx = KillTx(i);
    Result<void> r = boost::outcome_v2::success();
    if (i % 2 == 1) {
      r = log.value()->AppendPartial(tx.events);
      tx.events.clear();
    }
    if (r) r = log.value()->Append(std::span(&tx, 1));
    uint32_t ack = r ? i : kChildFailed;
    if (write(fd, &ack, sizeof(ack)) != sizeof(ack) || !r) _exit(1);
  }
  _exit(1);
}

class RocksDbCrashTest : public RocksDbEventLogTest {
 protected:
  // Runs the child until it acknowledged about 80 transactions, kills it and returns what
  // it acknowledged (in order; a failure is an assertion). `journal`: through PowerCutFs.
  std::vector<uint32_t> AppendUntilKilled(const std::string& journal) {
    log_.reset();
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    std::string env_dir = "PGF_KILL_CHILD_DIR=" + dir_.path();
    std::string env_fd = "PGF_KILL_CHILD_FD=" + std::to_string(fds[1]);
    std::string env_journal = "PGF_KILL_CHILD_JOURNAL=" + journal;
    std::vector<char*> env = {env_dir.data(), env_fd.data()};
    if (!journal.empty()) env.push_back(env_journal.data());
    for (char** e = environ; *e; ++e) env.push_back(*e);
    env.push_back(nullptr);
    std::string filter = "--gtest_filter=RocksDbKillChild.DISABLED_AppendsUntilKilled";
    std::string disabled = "--gtest_also_run_disabled_tests";
    std::string self = "/proc/self/exe";
    char* argv[] = {self.data(), filter.data(), disabled.data(), nullptr};
    pid_t pid = fork();
    EXPECT_GE(pid, 0);
    if (pid == 0) {  // only async-signal-safe calls until exec
      close(fds[0]);
      int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) dup2(devnull, STDOUT_FILENO);  // keep the child's gtest banner quiet
      execve("/proc/self/exe", argv, env.data());
      _exit(127);
    }
    close(fds[1]);

    std::vector<uint32_t> acks;
    auto read_acks = [&](size_t until) {
      uint32_t ack;
      while (acks.size() < until) {
        pollfd p{.fd = fds[0], .events = POLLIN, .revents = 0};
        if (poll(&p, 1, 60'000) != 1) break;          // timed out: the asserts below will say so
        ssize_t n = read(fds[0], &ack, sizeof(ack));  // 4-byte writes to a pipe are atomic
        if (n != sizeof(ack)) break;                  // EOF: the child is gone
        acks.push_back(ack);
      }
    };
    read_acks(40);
    EXPECT_EQ(acks.size(), 40u) << "the child stopped early";
    auto busy = OpenRocksDbEventLog(dir_.path());  // while the child holds the dir
    EXPECT_FALSE(busy.has_value());
    if (!busy) {
      EXPECT_NE(busy.error().message.find("another pgfanout process"), std::string::npos);
    }
    read_acks(80);
    // A varying delay, so that runs kill the child at different points of its loop (inside
    // the fsync, between a write-ahead and its Append, between Append and ack).
    usleep(std::random_device()() % 5000);
    kill(pid, SIGKILL);
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status)) << "the child must die by the kill, not before";
    read_acks(SIZE_MAX);  // what the child acknowledged before it died
    close(fds[0]);
    for (size_t i = 0; i < acks.size(); ++i) EXPECT_EQ(acks[i], i) << "child error";
    return acks;
  }

  // Every acknowledged transaction is in the reopened log, and nothing past its position.
  void ExpectAcknowledgedSurvive(const std::vector<uint32_t>& acks) {
    ASSERT_FALSE(acks.empty());
    Reopen();
    const uint32_t acked = acks.back();
    ASSERT_GE(log_->DurableLsn(), KillTx(acked).end_lsn) << "lost acknowledged transactions";
    const uint64_t durable_txs = log_->DurableLsn().value() / 0x1000;
    EXPECT_EQ(log_->DurableLsn(), KillTx(durable_txs - 1).end_lsn);
    // Move the position well past anything the child may have written ahead.
    Append({Tx(uint64_t{1} << 40, 1, users_)});
    std::vector<ChangeEvent> events = ReadAll(*log_);
    ASSERT_EQ(events.size(), durable_txs * kKillEventsPerTx + 1);
    for (uint32_t i = 0; i < durable_txs; ++i) {
      TransactionRecord want = KillTx(i);
      for (uint32_t k = 0; k < kKillEventsPerTx; ++k) {
        ExpectSameEvent(events[i * kKillEventsPerTx + k], want.events[k]);
      }
    }
    EXPECT_EQ(events.back().id.commit_lsn, Lsn(uint64_t{1} << 40));
    RecordProperty("acknowledged", static_cast<int>(acks.size()));
    RecordProperty("durable", static_cast<int>(durable_txs));
  }
};

// kill -9: the page cache survives, so this checks recovery, not the fsync.
TEST_F(RocksDbCrashTest, EveryAcknowledgedAppendSurvivesKill) {
  auto acks = AppendUntilKilled("");
  ExpectAcknowledgedSurvive(acks);
}

// A power cut: on top of the kill, every file loses what its last sync did not cover. An
// Append that returned without syncing (the sync option off) loses acknowledged
// transactions here, and the slot would have been confirmed past them.
TEST_F(RocksDbCrashTest, EveryAcknowledgedAppendSurvivesAPowerCut) {
  const std::string journal = dir_.path() + ".journal";
  auto acks = AppendUntilKilled(journal);
  const uint64_t dropped = testing::CutPower(journal);
  RecordProperty("bytes_dropped", static_cast<int>(dropped));
  ExpectAcknowledgedSurvive(acks);
  std::filesystem::remove(journal);
}

}  // namespace
}  // namespace pgfanout::checkpoints_test
