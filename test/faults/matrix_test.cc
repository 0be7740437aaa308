// Row shapes under crashes: TOAST across replica identities, schema changes under load,
// TRUNCATE with CASCADE, replication origins and logical messages. The ledger workload
// runs alongside, so each test also ends with the checker's report.

#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <random>

#include "test/faults/fault_fixture.h"

namespace pgfanout::faults {
namespace {

using namespace std::chrono_literals;

// A random, incompressible value of about 200 kB: stored out of line (TOAST).
constexpr const char* kBigValue =
    "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 6000))";

class MatrixTest : public FaultTest {
 protected:
  std::vector<std::string> ExtraTables() const override { return tables_; }

  // kill -9 and restart at once.
  void Crash() {
    KillDaemon();
    NoteFault();
    ASSERT_NO_FATAL_FAILURE(StartDaemon({}, /*wait=*/false));
  }

  // `select` over `table`, rows of `tenants` only (all when empty), ordered, as text.
  static std::string Rows(const PgServer& server, const std::string& db, const std::string& table,
                          const std::string& select, const std::set<std::string>& tenants) {
    std::string where;
    for (const auto& t : tenants) where += (where.empty() ? "'" : ", '") + t + "'";
    auto rows = server.TryQuery(
        fmt::format("SELECT {} FROM {} {} ORDER BY 1, 2", select, table,
                    where.empty() ? "" : "WHERE tenant_id IN (" + where + ")"),
        db);
    if (!rows) return "(cannot read)";
    std::string out;
    for (const auto& r : *rows) {
      for (const auto& v : r) out += (v ? *v : "NULL") + "|";
      out += "\n";
    }
    return out;
  }

  // Polls until each Postgres target holds exactly its tenants' rows of `table`.
  void ExpectTargetsMatch(const std::string& table, const std::string& select) {
    for (const auto& t : Targets()) {
      auto deadline = std::chrono::steady_clock::now() + 120s;
      std::string want, got;
      do {
        want = Rows(*pg_, "postgres", table, select, t.tenants);
        got = Rows(*sink_pg_, t.db, table, select, {});
        if (want == got) break;
        std::this_thread::sleep_for(250ms);
      } while (std::chrono::steady_clock::now() < deadline);
      EXPECT_EQ(want, got) << table << " in " << t.db << " differs from the source";
    }
  }

  std::vector<std::string> tables_;
};

class ToastMatrixTest : public MatrixTest {
 protected:
  ToastMatrixTest() { tables_ = {"toast_default", "toast_full", "toast_index"}; }
};

// DEFAULT (primary key with the tenant), FULL, and USING INDEX: big values inserted,
// left unchanged by updates, changed, moved to another tenant, deleted; two crashes.
// NOTHING is refused before anything is published.
TEST_F(ToastMatrixTest, ToastAcrossReplicaIdentities) {
  pg_->Exec(R"sql(
    CREATE TABLE toast_default (tenant_id text NOT NULL, id int NOT NULL, small text, big text,
                                PRIMARY KEY (tenant_id, id));
    CREATE TABLE toast_full (id int PRIMARY KEY, tenant_id text NOT NULL, small text, big text);
    ALTER TABLE toast_full REPLICA IDENTITY FULL;
    CREATE TABLE toast_index (tenant_id text NOT NULL, id int NOT NULL, small text, big text);
    CREATE UNIQUE INDEX toast_index_key ON toast_index (tenant_id, id);
    ALTER TABLE toast_index REPLICA IDENTITY USING INDEX toast_index_key;
  )sql");
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(200);
  const int rows = Full() ? 60 : 16;
  for (const auto& t : tables_) {
    pg_->Exec(fmt::format(
        "INSERT INTO {} (tenant_id, id, small, big) SELECT (ARRAY['a','b','c','d'])[1 + g % 4], "
        "g, 'v0', {} FROM generate_series(1, {}) g",
        t, kBigValue, rows));
  }
  ASSERT_NO_FATAL_FAILURE(Crash());
  for (const auto& t : tables_) {
    pg_->Exec(fmt::format("UPDATE {} SET small = 'v1'", t));  // big: unchanged TOAST
    pg_->Exec(fmt::format("UPDATE {} SET big = {} WHERE id % 3 = 0", t, kBigValue));
  }
  ASSERT_NO_FATAL_FAILURE(Crash());
  for (const auto& t : tables_) {
    // Moves to another tenant that leave the big value alone: a -> b and c -> a cross from
    // one sink to the other, b -> c stays within tenant-bc. Then deletes.
    pg_->Exec(fmt::format(
        "UPDATE {} SET tenant_id = CASE tenant_id WHEN 'a' THEN 'b' WHEN 'b' THEN 'c' "
        "WHEN 'c' THEN 'a' ELSE 'd' END, small = 'moved' WHERE id % 4 <> 3",
        t));
    pg_->Exec(fmt::format("DELETE FROM {} WHERE id % 5 = 0", t));
  }
  for (const auto& t : tables_) ExpectTargetsMatch(t, "tenant_id, id, small, md5(big)");
  auto report = Finish(std::string("TOAST x replica identity (DEFAULT, FULL, USING INDEX)") +
                       (Full() ? "" : " (short)"));
  EXPECT_TRUE(report.Valid()) << report.ToText();

  // NOTHING: refused at start, with the fix in the message.
  KillDaemon(SIGTERM);
  pg_->Exec("ALTER TABLE toast_default REPLICA IDENTITY NOTHING");
  std::string out;
  EXPECT_EQ(testing::RunPgfanout({"run", "--config", config_path_}, &out), 1);
  EXPECT_NE(out.find("toast_default"), std::string::npos) << out;
  EXPECT_NE(out.find("REPLICA IDENTITY"), std::string::npos) << out;
}

class SchemaChangeTest : public MatrixTest {
 protected:
  SchemaChangeTest() { tables_ = {"evolving"}; }
};

// ADD COLUMN, DROP COLUMN, ALTER TYPE, and DDL with DML in one transaction, while a writer
// keeps inserting and deleting rows of the table and the daemon is killed in between.
TEST_F(SchemaChangeTest, SchemaChangesUnderLoad) {
  pg_->Exec(R"sql(
    CREATE TABLE evolving (tenant_id text NOT NULL, id int NOT NULL, a int DEFAULT 1,
                           PRIMARY KEY (tenant_id, id));
  )sql");
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(200);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    PGconn* c = PQconnectdb(pg_->Dsn().c_str());
    for (int i = 1; !stop; ++i) {
      const char* tenant = i % 2 == 0 ? "a" : "b";
      PQclear(PQexec(c, fmt::format("INSERT INTO evolving (tenant_id, id) VALUES ('{}', {})",
                                    tenant, i)
                            .c_str()));
      if (i % 7 == 0) {
        PQclear(PQexec(c, fmt::format("DELETE FROM evolving WHERE id = {}", i - 3).c_str()));
      }
      std::this_thread::sleep_for(5ms);
    }
    PQfinish(c);
  });
  std::this_thread::sleep_for(1s);
  pg_->Exec("ALTER TABLE evolving ADD COLUMN b text DEFAULT 'x'");
  std::this_thread::sleep_for(1s);
  ASSERT_NO_FATAL_FAILURE(Crash());
  pg_->Exec("ALTER TABLE evolving DROP COLUMN a");
  std::this_thread::sleep_for(1s);
  pg_->Exec("ALTER TABLE evolving ALTER COLUMN b TYPE varchar(200)");
  std::this_thread::sleep_for(1s);
  ASSERT_NO_FATAL_FAILURE(Crash());
  pg_->Exec(R"sql(
    BEGIN;
    ALTER TABLE evolving ADD COLUMN c bigint;
    UPDATE evolving SET c = id * 10, b = 'y' WHERE id % 3 = 0;
    INSERT INTO evolving (tenant_id, id, b, c) VALUES ('c', -1, 'in the DDL transaction', 7);
    COMMIT;
  )sql");
  std::this_thread::sleep_for(1s);
  stop = true;
  writer.join();
  ExpectTargetsMatch("evolving", "tenant_id, id, b, c");
  auto report = Finish("schema changes under load (ADD, DROP, ALTER TYPE, DDL+DML)");
  EXPECT_TRUE(report.Valid()) << report.ToText();
}

class TruncateTest : public MatrixTest {
 protected:
  TruncateTest() { tables_ = {"parent", "child"}; }
};

// TRUNCATE of one table with CASCADE and of two tables at once, a transaction replayed
// through a replication origin, and logical messages, with a crash in between.
TEST_F(TruncateTest, TruncateCascadeOriginsAndMessages) {
  pg_->Exec(R"sql(
    CREATE TABLE parent (tenant_id text NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
    CREATE TABLE child (tenant_id text NOT NULL, id int NOT NULL, parent_id int NOT NULL,
                        PRIMARY KEY (tenant_id, id),
                        FOREIGN KEY (tenant_id, parent_id) REFERENCES parent);
    SELECT pg_replication_origin_create('upstream');
  )sql");
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  StartWorkload(200);
  auto fill = [&](int base) {
    pg_->Exec(fmt::format(
        "INSERT INTO parent SELECT (ARRAY['a','b','c','d'])[1 + g % 4], g "
        "FROM generate_series({0}, {0} + 39) g;"
        "INSERT INTO child SELECT tenant_id, id, id FROM parent WHERE id >= {0}",
        base));
  };
  fill(1);
  pg_->Exec("TRUNCATE parent CASCADE");
  fill(100);
  ASSERT_NO_FATAL_FAILURE(Crash());
  pg_->Exec("TRUNCATE parent, child");
  fill(200);
  // A transaction applied on behalf of an upstream (as a subscriber would), and messages.
  pg_->Exec(R"sql(
    SELECT pg_replication_origin_session_setup('upstream');
    BEGIN;
    SELECT pg_replication_origin_xact_setup('0/1000', now());
    INSERT INTO parent VALUES ('a', 1000), ('b', 1001);
    COMMIT;
    SELECT pg_replication_origin_session_reset();
    BEGIN;
    SELECT pg_logical_emit_message(true, 'app', 'inside a transaction');
    INSERT INTO parent VALUES ('c', 1002);
    COMMIT;
    SELECT pg_logical_emit_message(false, 'app', 'outside any transaction');
  )sql");
  ASSERT_NO_FATAL_FAILURE(Crash());
  fill(300);
  ExpectTargetsMatch("parent", "tenant_id, id");
  ExpectTargetsMatch("child", "tenant_id, id, parent_id");
  auto report = Finish("TRUNCATE CASCADE, multi-table TRUNCATE, origin, messages");
  EXPECT_TRUE(report.Valid()) << report.ToText();
}

}  // namespace
}  // namespace pgfanout::faults
