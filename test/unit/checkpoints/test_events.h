#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "checkpoints/event_log.h"
#include "test/support/temp_dir.h"

// Builders shared by the checkpoints tests: a users table, events and transactions on it,
// and a temporary state dir.
namespace pgfanout::checkpoints_test {

inline std::shared_ptr<const TableSchema> UsersSchema(int version = 1) {
  TableSchema s{
      .relation_id = RelationId{16384},
      .schema_name = "public",
      .table_name = "users",
      .replica_identity = 'd',
      .columns = {{.name = "id", .type_oid = 23, .part_of_key = true},
                  {.name = "tenant_id", .type_oid = 25},
                  {.name = "name", .type_oid = 25}},
  };
  if (version >= 2) s.columns.push_back({.name = "email", .type_oid = 1043, .type_modifier = 259});
  return std::make_shared<const TableSchema>(std::move(s));
}

inline Datum Text(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }

// An insert into `table`: one text Datum per column, derived from the id.
inline ChangeEvent Insert(const std::shared_ptr<const TableSchema>& table, EventId id) {
  ChangeEvent e{.id = id,
                .xid = Xid{static_cast<uint32_t>(id.commit_lsn.value() % 100000)},
                .commit_time_us = 1'700'000'000'000'000 + static_cast<int64_t>(id.ordinal),
                .op = Op::kInsert,
                .table = table,
                .tenant = "7"};
  for (size_t c = 0; c < table->columns.size(); ++c) {
    e.new_row.push_back(Text(id.ToString() + "/" + std::to_string(c)));
  }
  return e;
}

// Transaction `commit` with `n` inserts (ordinals 0..n-1); end_lsn = commit + 0x28.
inline TransactionRecord Tx(uint64_t commit, uint32_t n,
                            const std::shared_ptr<const TableSchema>& table = UsersSchema()) {
  TransactionRecord tx{.commit_lsn = Lsn(commit), .end_lsn = Lsn(commit + 0x28)};
  for (uint32_t i = 0; i < n; ++i) tx.events.push_back(Insert(table, EventId{Lsn(commit), i}));
  return tx;
}

// Every field, schemas by value.
inline void ExpectSameEvent(const ChangeEvent& got, const ChangeEvent& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.xid, want.xid);
  EXPECT_EQ(got.commit_time_us, want.commit_time_us);
  EXPECT_EQ(got.op, want.op);
  ASSERT_TRUE(got.table && want.table);
  EXPECT_EQ(*got.table, *want.table);
  EXPECT_EQ(got.tenant, want.tenant);
  EXPECT_EQ(got.old_tenant, want.old_tenant);
  EXPECT_EQ(got.new_row, want.new_row);
  EXPECT_EQ(got.old_row, want.old_row);
  EXPECT_EQ(got.old_is_key_only, want.old_is_key_only);
  EXPECT_EQ(got.truncate_flags, want.truncate_flags);
}

inline std::vector<EventId> Ids(const std::vector<ChangeEvent>& events) {
  std::vector<EventId> ids;
  for (const ChangeEvent& e : events) ids.push_back(e.id);
  return ids;
}

// Reads the whole visible log.
inline std::vector<ChangeEvent> ReadAll(const EventLog& log) {
  auto events = log.Read(EventId{}, SIZE_MAX);
  EXPECT_TRUE(events.has_value()) << (events ? "" : events.error().message);
  return events ? std::move(events).value() : std::vector<ChangeEvent>{};
}

using TempDir = ::pgfanout::testing::TempDir;

}  // namespace pgfanout::checkpoints_test
