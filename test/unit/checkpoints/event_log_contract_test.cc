// The EventLog contract (checkpoints/event_log.h), run against the RocksDB log and its
// in-memory twin alike, so the twin the pipeline tests use behaves as production does.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "checkpoints/log_identity.h"
#include "checkpoints/meta_records.h"
#include "test/unit/checkpoints/test_events.h"

namespace pgfanout::checkpoints_test {
namespace {

struct MemoryBackend {
  std::unique_ptr<EventLog> Open() { return NewMemoryEventLog(); }
};

struct RocksDbBackend {
  TempDir dir;
  std::unique_ptr<EventLog> Open() {
    auto log = OpenRocksDbEventLog(dir.path());
    EXPECT_TRUE(log.has_value()) << (log ? "" : log.error().message);
    return log ? std::move(log).value() : nullptr;
  }
};

template <class Backend>
class EventLogContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_ = backend_.Open();
    ASSERT_NE(log_, nullptr);
  }

  void Append(std::vector<TransactionRecord> txs) {
    auto r = log_->Append(txs);
    ASSERT_TRUE(r.has_value()) << r.error().message;
  }

  ChangeEvent Spilled(const std::string& name) {
    ChangeEvent e = Insert(users_, EventId{Lsn(0x99), 3});
    e.new_row[2] = Text(name);
    return e;
  }

  std::vector<std::string> SpilledNames(Xid xid) {
    std::vector<std::string> names;
    auto r = log_->SpillScan(xid, [&](const ChangeEvent& e) -> Result<void> {
      EXPECT_EQ(e.id, EventId{}) << "a spilled change has no final id";
      EXPECT_EQ(e.table, users_);
      names.push_back(e.new_row[2].text);
      return boost::outcome_v2::success();
    });
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return names;
  }

  Backend backend_;
  std::unique_ptr<EventLog> log_;
  std::shared_ptr<const TableSchema> users_ = UsersSchema();
};

using Backends = ::testing::Types<MemoryBackend, RocksDbBackend>;
TYPED_TEST_SUITE(EventLogContractTest, Backends);

TYPED_TEST(EventLogContractTest, StartsEmpty) {
  EXPECT_EQ(this->log_->DurableLsn(), Lsn());
  EXPECT_FALSE(this->log_->LastDurableEvent().has_value());
  EXPECT_FALSE(this->log_->FirstRetainedEvent().value().has_value());
  EXPECT_TRUE(ReadAll(*this->log_).empty());
}

TYPED_TEST(EventLogContractTest, ReadsEventsInIdOrderAcrossTransactions) {
  std::vector<TransactionRecord> txs = {Tx(0x100, 3, this->users_), Tx(0x200, 1, this->users_)};
  this->Append(txs);
  this->Append({Tx(0x1'0000'0000, 2, this->users_)});  // high LSN word: byte order = id order

  std::vector<ChangeEvent> events = ReadAll(*this->log_);
  ASSERT_EQ(events.size(), 6u);
  ExpectSameEvent(events[0], txs[0].events[0]);
  ExpectSameEvent(events[3], txs[1].events[0]);
  EXPECT_EQ(events[5].id, (EventId{Lsn(0x1'0000'0000), 1}));
  EXPECT_TRUE(std::is_sorted(events.begin(), events.end(),
                             [](const auto& a, const auto& b) { return a.id < b.id; }));
  EXPECT_EQ(this->log_->DurableLsn(), Lsn(0x1'0000'0028));
  EXPECT_EQ(this->log_->LastDurableEvent(), (EventId{Lsn(0x1'0000'0000), 1}));
}

TYPED_TEST(EventLogContractTest, ReadIsBoundedAndResumable) {
  this->Append({Tx(0x100, 4, this->users_), Tx(0x200, 3, this->users_)});
  std::vector<EventId> seen;
  EventId after{};
  for (int batches = 0; batches < 10; ++batches) {
    auto batch = this->log_->Read(after, 3);
    ASSERT_TRUE(batch.has_value());
    if (batch.value().empty()) break;
    EXPECT_LE(batch.value().size(), 3u);
    for (const ChangeEvent& e : batch.value()) seen.push_back(e.id);
    after = seen.back();
  }
  ASSERT_EQ(seen.size(), 7u);
  EXPECT_EQ(seen[3], (EventId{Lsn(0x100), 3}));
  EXPECT_EQ(seen[4], (EventId{Lsn(0x200), 0}));
  EXPECT_TRUE(this->log_->Read(EventId{Lsn(0x100), 1}, 0).value().empty());
  EXPECT_EQ(Ids(this->log_->Read(EventId{Lsn(0x100), 1}, 2).value()),
            (std::vector<EventId>{{Lsn(0x100), 2}, {Lsn(0x100), 3}}));
}

TYPED_TEST(EventLogContractTest, CountAfterCountsDurableEventsUpToTheLimit) {
  this->Append({Tx(0x100, 4, this->users_), Tx(0x200, 3, this->users_)});
  TransactionRecord ahead = Tx(0x300, 5, this->users_);
  ASSERT_TRUE(this->log_->AppendPartial(ahead.events).has_value());
  EXPECT_EQ(this->log_->CountAfter(EventId{}, 100).value(), 7u) << "written-ahead events are not durable";
  EXPECT_EQ(this->log_->CountAfter(EventId{Lsn(0x100), 1}, 100).value(), 5u);
  EXPECT_EQ(this->log_->CountAfter(EventId{Lsn(0x100), 1}, 2).value(), 2u) << "stops at the limit";
  EXPECT_EQ(this->log_->CountAfter(EventId{Lsn(0x200), 2}, 100).value(), 0u);
}

TYPED_TEST(EventLogContractTest, ReadFilteredPassesOverRefusedEventsAndSaysHowFarItLooked) {
  std::vector<TransactionRecord> txs = {Tx(0x100, 4, this->users_), Tx(0x200, 4, this->users_)};
  this->Append(txs);
  struct Seen {
    Op op;
    uint64_t fingerprint;
    std::optional<std::string> tenant;  // the peek's view is valid during the call only
  };
  std::vector<Seen> seen;
  auto odd = [&](const EventLog::EventPeek& p) {
    seen.push_back({p.op, p.table->Fingerprint(),
                    p.tenant ? std::optional<std::string>(*p.tenant) : std::nullopt});
    return seen.size() % 2 == 0;  // every second event
  };
  auto read = this->log_->ReadFiltered(EventId{}, {.max_events = 100, .max_scanned = 100}, odd);
  ASSERT_TRUE(read.has_value()) << read.error().message;
  ASSERT_EQ(read.value().events.size(), 4u);
  ExpectSameEvent(read.value().events[0], txs[0].events[1]);
  ExpectSameEvent(read.value().events[3], txs[1].events[3]);
  EXPECT_EQ(read.value().scanned_through, (EventId{Lsn(0x200), 3}));
  ASSERT_EQ(seen.size(), 8u);
  EXPECT_EQ(seen[0].op, txs[0].events[0].op);
  EXPECT_EQ(seen[0].fingerprint, this->users_->Fingerprint());
  EXPECT_EQ(seen[0].tenant, txs[0].events[0].tenant);

  seen.clear();
  auto limited =
      this->log_->ReadFiltered(EventId{}, {.max_events = 100, .max_scanned = 3}, odd).value();
  EXPECT_EQ(limited.scanned_through, (EventId{Lsn(0x100), 2})) << "stops after max_scanned";
  EXPECT_EQ(limited.events.size(), 1u);
  auto none = this->log_
                  ->ReadFiltered(EventId{Lsn(0x100), 1}, {.max_events = 100, .max_scanned = 100},
                                 [](const EventLog::EventPeek&) { return false; })
                  .value();
  EXPECT_TRUE(none.events.empty());
  EXPECT_EQ(none.scanned_through, (EventId{Lsn(0x200), 3})) << "a reader moves past refusals";
  EXPECT_FALSE(this->log_->ReadFiltered(EventId{Lsn(0x200), 3}, {}, odd).value()
                   .scanned_through.has_value())
      << "caught up";
  auto small = this->log_->ReadFiltered(EventId{}, {.max_bytes = 1},
                                        [](const EventLog::EventPeek&) { return true; })
                   .value();
  EXPECT_EQ(small.events.size(), 1u) << "the byte limit still lets one event through";
}

// The tenant index (ReadTenants): a sink of some tenants looks at the events of their
// buckets and the shared one (TRUNCATEs), however they were written (Append,
// AppendPartial, SpillCommit), each once, in id order, and after a trim only what is left.
TYPED_TEST(EventLogContractTest, ReadTenantsLooksAtItsTenantsBucketsAndTheSharedOne) {
  auto event = [&](uint64_t lsn, uint32_t ordinal, Op op, std::optional<std::string> tenant,
                   std::optional<std::string> old_tenant = std::nullopt) {
    ChangeEvent e = Insert(this->users_, EventId{Lsn(lsn), ordinal});
    e.op = op;
    e.tenant = std::move(tenant);
    e.old_tenant = std::move(old_tenant);
    if (op == Op::kTruncate) e.new_row.clear();
    if (op == Op::kUpdate) e.old_row = e.new_row;
    return e;
  };
  TransactionRecord plain{.commit_lsn = Lsn(0x100), .end_lsn = Lsn(0x128)};
  plain.events = {event(0x100, 0, Op::kInsert, "7"), event(0x100, 1, Op::kInsert, "8"),
                  event(0x100, 2, Op::kInsert, std::nullopt),
                  event(0x100, 3, Op::kUpdate, "8", "7"),  // moved from 7 to 8
                  event(0x100, 4, Op::kTruncate, std::nullopt),
                  event(0x100, 5, Op::kUpdate, std::nullopt, "8")};  // to a NULL tenant
  this->Append({plain});
  // Written ahead, then made visible.
  std::vector<ChangeEvent> ahead = {event(0x200, 0, Op::kDelete, "8"),
                                    event(0x200, 1, Op::kInsert, "9")};
  ASSERT_TRUE(this->log_->AppendPartial(ahead).has_value());
  this->Append({TransactionRecord{.commit_lsn = Lsn(0x200), .end_lsn = Lsn(0x228)}});
  // Streamed: spilled, moved at commit, made visible.
  ASSERT_TRUE(this->log_->SpillPut(Xid{5}, 0, Xid{5}, event(0, 0, Op::kInsert, "9")).has_value());
  ASSERT_TRUE(
      this->log_->SpillPut(Xid{5}, 1, Xid{5}, event(0, 0, Op::kUpdate, "7", "8")).has_value());
  ASSERT_TRUE(this->log_->SpillCommit(Xid{5}, Lsn(0x300), 1).has_value());
  this->Append({TransactionRecord{.commit_lsn = Lsn(0x300), .end_lsn = Lsn(0x328)}});
  const EventId head{Lsn(0x300), 1};
  ASSERT_EQ(this->log_->LastDurableEvent(), head);

  auto all = [](const EventLog::EventPeek&) { return true; };
  auto read = [&](EventId after, std::vector<std::string> tenants,
                  EventLog::ReadLimits limits = {}) {
    auto r = this->log_->ReadTenants(after, tenants, limits, all);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r.has_value() ? std::move(r).value() : EventLog::FilteredRead{};
  };
  using Ids_ = std::vector<EventId>;
  auto eight = read(EventId{}, {"8"});
  EXPECT_EQ(Ids(eight.events), (Ids_{{Lsn(0x100), 1}, {Lsn(0x100), 3}, {Lsn(0x100), 4},
                                     {Lsn(0x100), 5}, {Lsn(0x200), 0}, {Lsn(0x300), 1}}));
  EXPECT_EQ(eight.scanned_through, head) << "nothing more for 8: the reader moves to the head";
  ASSERT_EQ(eight.events.size(), 6u);
  ExpectSameEvent(eight.events[1], plain.events[3]);
  EXPECT_EQ(Ids(read(EventId{}, {"7", "8"}).events),
            (Ids_{{Lsn(0x100), 0}, {Lsn(0x100), 1}, {Lsn(0x100), 3}, {Lsn(0x100), 4},
                  {Lsn(0x100), 5}, {Lsn(0x200), 0}, {Lsn(0x300), 1}}))
      << "an event in two of the sink's buckets comes once";
  EXPECT_EQ(Ids(read(EventId{}, {"nobody"}).events), (Ids_{{Lsn(0x100), 4}}))
      << "a TRUNCATE reaches every tenant's reader";
  auto idle = read(EventId{Lsn(0x100), 4}, {"nobody"});
  EXPECT_TRUE(idle.events.empty());
  EXPECT_EQ(idle.scanned_through, head);
  EXPECT_EQ(Ids(read(EventId{Lsn(0x100), 3}, {"9"}).events),
            (Ids_{{Lsn(0x100), 4}, {Lsn(0x200), 1}, {Lsn(0x300), 0}}));

  // Limits: max_scanned counts the events looked at (the bucket's, not the log's).
  auto one = read(EventId{}, {"9"}, {.max_events = 100, .max_scanned = 1});
  EXPECT_EQ(Ids(one.events), (Ids_{{Lsn(0x100), 4}}));
  EXPECT_EQ(one.scanned_through, (EventId{Lsn(0x100), 4})) << "more of 9's events are left";
  auto capped = read(EventId{}, {"8"}, {.max_events = 2});
  EXPECT_EQ(capped.events.size(), 2u);
  EXPECT_EQ(capped.scanned_through, (EventId{Lsn(0x100), 3}));
  auto refused = this->log_->ReadTenants(EventId{}, std::vector<std::string>{"9"}, {},
                                         [](const EventLog::EventPeek& p) {
                                           return p.op != Op::kTruncate;
                                         });
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(Ids(refused.value().events), (Ids_{{Lsn(0x200), 1}, {Lsn(0x300), 0}}));

  // The peek names the old tenant of a move.
  std::vector<std::optional<std::string>> olds;
  ASSERT_TRUE(this->log_
                  ->ReadTenants(EventId{}, std::vector<std::string>{"7"}, {},
                                [&](const EventLog::EventPeek& p) {
                                  olds.push_back(p.old_tenant ? std::optional<std::string>(
                                                                    *p.old_tenant)
                                                              : std::nullopt);
                                  return false;
                                })
                  .has_value());
  EXPECT_EQ(olds, (std::vector<std::optional<std::string>>{std::nullopt, "7", std::nullopt, "8"}));

  // A trim takes its events out of every bucket.
  ASSERT_TRUE(this->log_->Trim(EventId{Lsn(0x200), 0}).has_value());
  EXPECT_EQ(Ids(read(EventId{}, {"8"}).events), (Ids_{{Lsn(0x300), 1}}));
  EXPECT_EQ(Ids(read(EventId{}, {"9"}).events), (Ids_{{Lsn(0x200), 1}, {Lsn(0x300), 0}}));
  EXPECT_EQ(this->log_->IndexedFrom(), EventId{}) << "a new log indexes every event";
}

TYPED_TEST(EventLogContractTest, SpillCommitMovesTheSpillInvisiblyUntilAppend) {
  this->Append({Tx(0x100, 1, this->users_)});
  TransactionRecord big = Tx(0x900, 3, this->users_);
  for (uint64_t seq = 0; seq < 3; ++seq) {
    ChangeEvent e = big.events[seq];
    e.xid = Xid{0};
    e.commit_time_us = 0;  // unknown while streaming
    ASSERT_TRUE(this->log_->SpillPut(Xid{77}, seq, Xid{77}, e).has_value());
  }
  EXPECT_FALSE(this->log_->SpillCommit(Xid{77}, Lsn(0x100), 5).has_value())
      << "not above the durable event";
  auto moved = this->log_->SpillCommit(Xid{77}, Lsn(0x900), 1'700'000'000'000'000);
  ASSERT_TRUE(moved.has_value()) << moved.error().message;
  EXPECT_EQ(moved.value(), 3u);
  EXPECT_EQ(ReadAll(*this->log_).size(), 1u) << "invisible until Append moves the position";
  int spilled = 0;
  ASSERT_TRUE(this->log_->SpillScan(Xid{77}, [&](const ChangeEvent&) -> Result<void> {
    ++spilled;
    return boost::outcome_v2::success();
  }).has_value());
  EXPECT_EQ(spilled, 0) << "the spill of the transaction is gone";
  this->Append({TransactionRecord{.commit_lsn = Lsn(0x900), .end_lsn = Lsn(0x928)}});
  auto events = ReadAll(*this->log_);
  ASSERT_EQ(events.size(), 4u);
  for (uint32_t i = 0; i < 3; ++i) {
    const ChangeEvent& e = events[1 + i];
    EXPECT_EQ(e.id, (EventId{Lsn(0x900), i}));
    EXPECT_EQ(e.xid.value, 77u);
    EXPECT_EQ(e.commit_time_us, 1'700'000'000'000'000);
    EXPECT_EQ(e.new_row, big.events[i].new_row) << "rows move unchanged";
    EXPECT_EQ(e.table->Fingerprint(), this->users_->Fingerprint());
  }
  EXPECT_EQ(this->log_->LastDurableEvent(), (EventId{Lsn(0x900), 2}));
}

TYPED_TEST(EventLogContractTest, AppendRejectsANonIncreasingCommitLsn) {
  this->Append({Tx(0x200, 2, this->users_)});
  std::vector<std::vector<TransactionRecord>> bad = {
      {Tx(0x200, 1, this->users_)},                              // same commit LSN again
      {Tx(0x100, 1, this->users_)},                              // going back
      {Tx(0x300, 1, this->users_), Tx(0x300, 1, this->users_)},  // not increasing in one call
      {Tx(0, 1, this->users_)},                                  // 0/0 is no transaction
  };
  for (const auto& txs : bad) {
    auto r = this->log_->Append(txs);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  }
  EXPECT_EQ(this->log_->DurableLsn(), Lsn(0x228));
  EXPECT_EQ(ReadAll(*this->log_).size(), 2u) << "a rejected call writes nothing";
  EXPECT_TRUE(this->log_->Append({}).has_value()) << "an empty span is a no-op";
  EXPECT_EQ(this->log_->DurableLsn(), Lsn(0x228));
}

TYPED_TEST(EventLogContractTest, TransactionWithoutEventsMovesOnlyTheDurableLsn) {
  this->Append({Tx(0x100, 1, this->users_)});
  this->Append({Tx(0x200, 0, this->users_)});
  EXPECT_EQ(this->log_->DurableLsn(), Lsn(0x228));
  EXPECT_EQ(this->log_->LastDurableEvent(), (EventId{Lsn(0x100), 0}));
}

TYPED_TEST(EventLogContractTest, PartialEventsStayInvisibleUntilAppend) {
  this->Append({Tx(0x100, 1, this->users_)});
  TransactionRecord big = Tx(0x200, 5, this->users_);
  ASSERT_TRUE(this->log_->AppendPartial(std::span(big.events).first(3)).has_value());
  ASSERT_TRUE(this->log_->AppendPartial(std::span(big.events).subspan(3)).has_value());

  EXPECT_EQ(ReadAll(*this->log_).size(), 1u);
  EXPECT_EQ(this->log_->LastDurableEvent(), (EventId{Lsn(0x100), 0}));
  EXPECT_EQ(this->log_->DurableLsn(), Lsn(0x128));
  ASSERT_TRUE(this->log_->Trim(EventId{Lsn(0x300), 0}).has_value());
  EXPECT_FALSE(this->log_->FirstRetainedEvent().value().has_value());

  TransactionRecord position_only{.commit_lsn = big.commit_lsn, .end_lsn = big.end_lsn};
  this->Append({position_only});
  std::vector<ChangeEvent> events = ReadAll(*this->log_);
  ASSERT_EQ(events.size(), 5u) << "the trim did not reach the written-ahead events";
  ExpectSameEvent(events[4], big.events[4]);
  EXPECT_EQ(this->log_->LastDurableEvent(), (EventId{Lsn(0x200), 4}));
  EXPECT_EQ(this->log_->DurableLsn(), Lsn(0x228));
}

TYPED_TEST(EventLogContractTest, PartialWriteCannotTouchDurableEvents) {
  this->Append({Tx(0x200, 2, this->users_)});
  TransactionRecord old = Tx(0x200, 2, this->users_);
  auto r = this->log_->AppendPartial(old.events);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
}

TYPED_TEST(EventLogContractTest, CursorsNeverMoveBackwardButRewindCan) {
  EventLog& log = *this->log_;
  EXPECT_FALSE(log.LoadCursor("pg").value().has_value());
  SinkCursor at_200{.applied = {Lsn(0x200), 4}, .token = "len=10"};
  ASSERT_TRUE(log.StoreCursor("pg", at_200).has_value());

  auto back = log.StoreCursor("pg", SinkCursor{.applied = {Lsn(0x200), 3}});
  ASSERT_FALSE(back.has_value());
  EXPECT_EQ(back.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(log.LoadCursor("pg").value(), at_200) << "a rejected move leaves the stored one";

  SinkCursor same_id{.applied = at_200.applied, .token = "len=11"};
  ASSERT_TRUE(log.StoreCursor("pg", same_id).has_value());
  EXPECT_EQ(log.LoadCursor("pg").value(), same_id);

  SinkCursor replay{.applied = {Lsn(0x100), 0}, .token = ""};
  ASSERT_TRUE(log.RewindCursor("pg", replay).has_value());
  ASSERT_TRUE(log.StoreCursor("nats", SinkCursor{.applied = {Lsn(0x300), 0}}).has_value());
  auto all = log.ListCursors();
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all.value().size(), 2u);
  EXPECT_EQ(all.value()[0].first, "nats");
  EXPECT_EQ(all.value()[1], (std::pair<std::string, SinkCursor>{"pg", replay}));
}

TYPED_TEST(EventLogContractTest, TrimDeletesThroughTheIdAndMovesFirstRetained) {
  this->Append({Tx(0x100, 3, this->users_), Tx(0x200, 3, this->users_)});
  ASSERT_TRUE(this->log_->StoreCursor("s", SinkCursor{.applied = {Lsn(0x100), 0}}).has_value());
  ASSERT_TRUE(this->log_->Trim(EventId{Lsn(0x100), 1}).has_value());
  EXPECT_EQ(this->log_->FirstRetainedEvent().value(), (EventId{Lsn(0x100), 2}));
  EXPECT_EQ(ReadAll(*this->log_).size(), 4u);
  EXPECT_EQ(this->log_->LoadCursor("s").value()->applied, (EventId{Lsn(0x100), 0}));

  ASSERT_TRUE(this->log_->Trim(EventId{Lsn(0x200), 2}).has_value());
  EXPECT_FALSE(this->log_->FirstRetainedEvent().value().has_value());
  EXPECT_EQ(this->log_->LastDurableEvent(), (EventId{Lsn(0x200), 2})) << "trim keeps position";
  this->Append({Tx(0x300, 1, this->users_)});
  EXPECT_EQ(Ids(ReadAll(*this->log_)), (std::vector<EventId>{{Lsn(0x300), 0}}));
}

TYPED_TEST(EventLogContractTest, MetaRoundTrips) {
  EXPECT_FALSE(this->log_->GetMeta("system_id").value().has_value());
  ASSERT_TRUE(this->log_->PutMeta("system_id", "7301234567890").has_value());
  ASSERT_TRUE(this->log_->PutMeta("slot", "").has_value());
  EXPECT_EQ(this->log_->GetMeta("system_id").value(), "7301234567890");
  EXPECT_EQ(this->log_->GetMeta("slot").value(), "");
}

// Positions stored outside the log (a sink's destination) name the log by this id.
TYPED_TEST(EventLogContractTest, ANewLogHasItsOwnRandomId) {
  auto id = meta::Load(*this->log_, meta::LogIdKey());
  ASSERT_TRUE(id.has_value() && id.value().has_value());
  EXPECT_EQ(id.value()->id.size(), 32u) << id.value()->id;
  EXPECT_EQ(id.value()->id.find_first_not_of("0123456789abcdef"), std::string::npos);
  TypeParam other_backend;
  auto other = other_backend.Open();
  ASSERT_NE(other, nullptr);
  EXPECT_NE(meta::Load(*other, meta::LogIdKey()).value(), id.value()) << "two logs, two ids";
}

TYPED_TEST(EventLogContractTest, SpillScansInSeqOrderPerXid) {
  EventLog& log = *this->log_;
  ASSERT_TRUE(log.SpillPut(Xid{700}, 2, Xid{700}, this->Spilled("c")).has_value());
  ASSERT_TRUE(log.SpillPut(Xid{700}, 0, Xid{700}, this->Spilled("a")).has_value());
  ASSERT_TRUE(log.SpillPut(Xid{701}, 1, Xid{701}, this->Spilled("other")).has_value());
  ASSERT_TRUE(log.SpillPut(Xid{700}, 256, Xid{702}, this->Spilled("d")).has_value());
  ASSERT_TRUE(log.SpillPut(Xid{700}, 1, Xid{700}, this->Spilled("b")).has_value());
  EXPECT_EQ(this->SpilledNames(Xid{700}), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(this->SpilledNames(Xid{701}), (std::vector<std::string>{"other"}));
  EXPECT_TRUE(this->SpilledNames(Xid{699}).empty());
  EXPECT_TRUE(ReadAll(log).empty()) << "spilled changes are not events";
}

TYPED_TEST(EventLogContractTest, SpillDropsOneSubtransactionOrAWholeXid) {
  EventLog& log = *this->log_;
  ASSERT_TRUE(log.SpillPut(Xid{700}, 0, Xid{700}, this->Spilled("top")).has_value());
  ASSERT_TRUE(log.SpillPut(Xid{700}, 1, Xid{705}, this->Spilled("sub")).has_value());
  ASSERT_TRUE(log.SpillPut(Xid{700}, 2, Xid{706}, this->Spilled("sub2")).has_value());
  ASSERT_TRUE(log.SpillPut(Xid{800}, 0, Xid{800}, this->Spilled("x")).has_value());

  ASSERT_TRUE(log.SpillDrop(Xid{700}, Xid{705}).has_value());
  EXPECT_EQ(this->SpilledNames(Xid{700}), (std::vector<std::string>{"top", "sub2"}));
  ASSERT_TRUE(log.SpillDrop(Xid{700}, Xid{700}).has_value());
  EXPECT_TRUE(this->SpilledNames(Xid{700}).empty());
  EXPECT_EQ(this->SpilledNames(Xid{800}), (std::vector<std::string>{"x"}));
}

TYPED_TEST(EventLogContractTest, SpillScanStopsAtTheFirstError) {
  for (uint64_t seq = 0; seq < 3; ++seq) {
    ASSERT_TRUE(this->log_->SpillPut(Xid{9}, seq, Xid{9}, this->Spilled("n")).has_value());
  }
  int calls = 0;
  auto r = this->log_->SpillScan(Xid{9}, [&](const ChangeEvent&) -> Result<void> {
    ++calls;
    return Error{ErrorKind::kSink, "stop"};
  });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kSink);
  EXPECT_EQ(calls, 1);
}

TYPED_TEST(EventLogContractTest, EventsOfOneTableShareOneSchema) {
  this->Append({Tx(0x100, 2, this->users_), Tx(0x200, 1, this->users_)});
  std::vector<ChangeEvent> events = ReadAll(*this->log_);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].table.get(), events[1].table.get());
  EXPECT_EQ(events[0].table.get(), events[2].table.get());
}

TYPED_TEST(EventLogContractTest, SchemaChangeMidLogKeepsEachEventsSchema) {
  auto v1 = UsersSchema(1);
  auto v2 = UsersSchema(2);  // ALTER TABLE users ADD COLUMN email
  this->Append({Tx(0x100, 1, v1), Tx(0x200, 1, v2)});
  this->Append({Tx(0x300, 1, v1)});
  std::vector<ChangeEvent> events = ReadAll(*this->log_);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(*events[0].table, *v1);
  EXPECT_EQ(*events[1].table, *v2);
  EXPECT_EQ(events[1].new_row.size(), 4u);
  EXPECT_EQ(events[0].table.get(), events[2].table.get());
  EXPECT_NE(events[0].table.get(), events[1].table.get());
}

// One writer appends while sink threads read and store cursors, as in the daemon.
TYPED_TEST(EventLogContractTest, ReadersSeeAPrefixWhileTheWriterAppends) {
  constexpr int kTxs = 200;
  std::atomic<bool> done{false};
  auto reader = [&](std::string sink) {
    EventId after{};
    size_t seen = 0;
    while (true) {
      bool finished = done.load();
      auto batch = this->log_->Read(after, 64);
      ASSERT_TRUE(batch.has_value()) << batch.error().message;
      for (const ChangeEvent& e : batch.value()) {
        ASSERT_EQ(e.id.commit_lsn.value(), 0x100 * (1 + seen / 3)) << "no gaps, in order";
        ASSERT_EQ(e.id.ordinal, seen % 3);
        after = e.id;
        ++seen;
      }
      if (!batch.value().empty()) {
        ASSERT_TRUE(this->log_->StoreCursor(sink, SinkCursor{.applied = after}).has_value());
      } else if (finished) {
        break;
      }
    }
    EXPECT_EQ(seen, size_t{3} * kTxs);
  };
  std::thread a(reader, "a");
  std::thread b(reader, "b");
  for (int i = 1; i <= kTxs; ++i) this->Append({Tx(0x100 * i, 3, this->users_)});
  done = true;
  a.join();
  b.join();
  EXPECT_EQ(this->log_->LoadCursor("a").value()->applied, (EventId{Lsn(0x100 * kTxs), 2}));
}

}  // namespace
}  // namespace pgfanout::checkpoints_test
