// The Postgres sink against a real server: a scratch "source" database gives realistic
// schemas and text forms, a "target" database receives the rows. Events are built by
// hand, so each test controls batches, ids and TOAST markers exactly.
#include "src/sinks/postgres/postgres_sink.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <string>
#include <vector>

#include "src/sinks/postgres/copy_text.h"
#include "src/sinks/postgres/target_sql.h"
#include "test/support/pg_server.h"

namespace pgfanout::testing {
namespace {

Datum T(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }
Datum Null() { return Datum{}; }
Datum Toast() { return Datum{ValueKind::kUnchangedToast}; }
PostgresSinkOptions& Pg(SinkConfig& config) {
  return std::get<PostgresSinkOptions>(config.options);
}
// The sink `config` describes, as the daemon makes it; `tables`: the tracked tables.
std::unique_ptr<PostgresSink> MakePostgresSink(const SinkConfig& config,
                                               std::vector<TableConfig> tables = {}) {
  return std::make_unique<PostgresSink>(SinkBasics::Of(config, std::move(tables)),
                                        std::get<PostgresSinkOptions>(config.options));
}

class PostgresSinkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = PgServer::Start().release(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    static int serial = 0;
    ++serial;
    src_ = "src_" + std::to_string(serial);
    tgt_ = "tgt_" + std::to_string(serial);
    server_->Exec("CREATE DATABASE " + src_);
    server_->Exec("CREATE DATABASE " + tgt_);
  }

  SinkConfig Config(std::vector<std::string> tenants = {"*"}) const {
    return SinkConfig{
        .id = "tenant-sink",
        .tenants = std::move(tenants),
        .options = PostgresSinkOptions{.dsn = server_->Dsn(tgt_), .create_tables = true}};
  }

  std::unique_ptr<PostgresSink> OpenSink(const SinkConfig& config,
                                         std::vector<TableConfig> tables = {},
                                         std::optional<SinkCursor> stored = std::nullopt) {
    auto sink = MakePostgresSink(config, std::move(tables));
    auto opened = sink->Open(stored, {});
    EXPECT_TRUE(opened.has_value()) << opened.error().message;
    return sink;
  }

  // The shape pgoutput would describe for a source table: names, type OIDs and modifiers
  // from the catalog, the primary key flagged.
  std::shared_ptr<const TableSchema> Schema(const std::string& schema, const std::string& table) {
    const std::string rel = "'" + Quoted(schema) + "." + Quoted(table) + "'::regclass";
    auto rows = server_->Query(
        "SELECT a.attname, a.atttypid, a.atttypmod, coalesce(a.attnum = ANY(i.indkey), false) "
        "FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
        "WHERE a.attrelid = " +
            rel + " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        src_);
    TableSchema t{.relation_id = RelationId{static_cast<uint32_t>(
                      std::stoul(server_->Scalar("SELECT " + rel + "::oid", src_)))},
                  .schema_name = schema,
                  .table_name = table};
    for (const auto& r : rows) {
      t.columns.push_back({.name = *r[0],
                           .type_oid = static_cast<uint32_t>(std::stoul(*r[1])),
                           .type_modifier = std::stoi(*r[2]),
                           .part_of_key = *r[3] == "t"});
    }
    return std::make_shared<const TableSchema>(std::move(t));
  }
  std::shared_ptr<const TableSchema> Schema(const std::string& table) {
    return Schema("public", table);
  }

  // The source rows' text forms, as pgoutput sends them (`select` lists columns ::text).
  std::vector<std::vector<Datum>> SourceRows(const std::string& select) {
    std::vector<std::vector<Datum>> out;
    for (const auto& row : server_->Query(select, src_)) {
      auto& r = out.emplace_back();
      for (const auto& v : row) r.push_back(v ? T(*v) : Null());
    }
    return out;
  }

  ChangeEvent Event(Op op, std::shared_ptr<const TableSchema> table, std::vector<Datum> new_row,
                    std::vector<Datum> old_row = {}) {
    ++lsn_;
    return ChangeEvent{.id = EventId{Lsn(lsn_ * 0x100), 0},
                       .xid = Xid{static_cast<uint32_t>(lsn_)},
                       .commit_time_us = 1'700'000'000'000'000 + static_cast<int64_t>(lsn_),
                       .op = op,
                       .table = std::move(table),
                       .new_row = std::move(new_row),
                       .old_row = std::move(old_row),
                       .old_is_key_only = true};
  }
  ChangeEvent Insert(std::shared_ptr<const TableSchema> t, std::vector<Datum> row) {
    return Event(Op::kInsert, std::move(t), std::move(row));
  }
  ChangeEvent Update(std::shared_ptr<const TableSchema> t, std::vector<Datum> row,
                     std::vector<Datum> old_key = {}) {
    return Event(Op::kUpdate, std::move(t), std::move(row), std::move(old_key));
  }
  ChangeEvent Delete(std::shared_ptr<const TableSchema> t, std::vector<Datum> old_key) {
    return Event(Op::kDelete, std::move(t), {}, std::move(old_key));
  }

  static void Deliver(PostgresSink& sink, const std::vector<ChangeEvent>& events) {
    auto r = sink.Write(events);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_FALSE(r.value().empty()) << "a token is stored with the cursor";
  }

  std::vector<Row> Target(const std::string& sql) { return server_->Query(sql, tgt_); }
  std::string TargetScalar(const std::string& sql) { return server_->Scalar(sql, tgt_); }

  static std::string Quoted(const std::string& name) {
    std::string out = "\"";
    for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  }

  // users(id, tenant_id, name, bio) on the source and its row for `id`.
  std::shared_ptr<const TableSchema> Users() {
    server_->Exec("CREATE TABLE users (id int PRIMARY KEY, tenant_id text, name text, bio text)",
                  src_);
    return Schema("users");
  }
  static std::vector<Datum> User(std::string id, std::string name, Datum bio = T("bio"),
                                 std::string tenant = "7") {
    return {T(std::move(id)), T(std::move(tenant)), T(std::move(name)), std::move(bio)};
  }
  static std::vector<Datum> Key(std::string id) {
    return {T(std::move(id)), Null(), Null(), Null()};
  }

  static PgServer* server_;
  std::string src_, tgt_;
  uint64_t lsn_ = 0x10000;
};

PgServer* PostgresSinkTest::server_ = nullptr;

// Every kind of value, compared in text form between source and target.
constexpr const char* kKindsDdl = R"sql(
CREATE TYPE mood AS ENUM ('happy', 'sad', 'it''s complicated');
CREATE TABLE kinds (
  id int PRIMARY KEY, i8 bigint, n numeric, n2 numeric(12,3), f8 double precision, t text,
  vc varchar(20), ch char(5), b bytea, flag boolean, ts timestamptz, tsl timestamp, d date,
  iv interval, j json, jb jsonb, ia int[], ta text[], u uuid, m mood, ma mood[], nul text);
)sql";
constexpr const char* kKindsRows = R"sql(
INSERT INTO kinds VALUES
 (1, 9223372036854775807, 123456789012345678901234567890.000000001, 3.5, 1.5e-300,
  E'quote '' dq " back \\ nl \n cr \r tab \t naïve 日本 😀 \\N', 'short', 'ab',
  '\x00ff5c0a0d09'::bytea, true, '2024-02-29 23:59:59.999999+05:30', '2024-01-01 00:00:00',
  '2024-02-29', '1 year 2 mons 3 days 04:05:06.789', '{"a": [1, "x\"y"],  "b": null}',
  '{"k": "v\n", "n": 1.50}', '{1,NULL,3}', '{"a b","c\"d",NULL,"\\\\","{}"}',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'it''s complicated', '{happy,"it''s complicated"}',
  NULL),
 (2, -1, 'NaN', -0.001, '-0', '', '', '', '', false, 'infinity', '-infinity', '0044-03-15 BC',
  '-1 days +00:00:01', 'null', '[]', '{}', '{}', '00000000-0000-0000-0000-000000000000', 'sad',
  '{}', NULL),
 (3, NULL, NULL, NULL, 'Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL);
)sql";
constexpr const char* kKindsText =
    "SELECT id::text, i8::text, n::text, n2::text, f8::text, t::text, vc::text, ch::text, "
    "b::text, flag::text, ts::text, tsl::text, d::text, iv::text, j::text, jb::text, ia::text, "
    "ta::text, u::text, m::text, ma::text, nul::text FROM kinds ORDER BY id";

TEST_F(PostgresSinkTest, ValuesRoundTripExactlyIntoAnExistingTable) {
  server_->Exec(std::string(kKindsDdl) + kKindsRows, src_);
  server_->Exec(
      std::string(kKindsDdl) + "ALTER TABLE kinds ADD COLUMN pgfanout_version bigint NOT NULL",
      tgt_);
  auto kinds = Schema("kinds");
  std::vector<ChangeEvent> events;
  for (auto& row : SourceRows(kKindsText)) events.push_back(Insert(kinds, row));
  SinkConfig config = Config();
  Pg(config).create_tables = false;
  auto sink = OpenSink(config);
  Deliver(*sink, events);
  auto source = server_->Query(kKindsText, src_);
  ASSERT_EQ(source.size(), 3u);
  EXPECT_EQ(Target(kKindsText), source);
  EXPECT_EQ(TargetScalar("SELECT pg_typeof(m)::text FROM kinds LIMIT 1"), "mood")
      << "enums are staged as text and cast to the target's type";
}

TEST_F(PostgresSinkTest, ValuesRoundTripExactlyIntoACreatedTable) {
  server_->Exec(std::string(kKindsDdl) + kKindsRows, src_);
  auto kinds = Schema("kinds");
  std::vector<ChangeEvent> events;
  for (auto& row : SourceRows(kKindsText)) events.push_back(Insert(kinds, row));
  auto sink = OpenSink(Config());
  Deliver(*sink, events);
  EXPECT_EQ(Target(kKindsText), server_->Query(kKindsText, src_));
  EXPECT_EQ(TargetScalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                         "WHERE attrelid = 'kinds'::regclass AND attname = 'n2'"),
            "numeric(12,3)")
      << "builtin types keep their modifiers";
  EXPECT_EQ(TargetScalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                         "WHERE attrelid = 'kinds'::regclass AND attname = 'm'"),
            "text")
      << "a type the source defined itself lands as text";
  EXPECT_EQ(TargetScalar("SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a "
                         "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                         "WHERE i.indrelid = 'kinds'::regclass AND i.indisprimary"),
            "id");
}

TEST_F(PostgresSinkTest, UnchangedToastKeepsTheTargetValue) {
  auto users = Users();
  auto sink = OpenSink(Config());
  Deliver(*sink, {Insert(users, User("1", "ada", T("long bio"))),
                  Insert(users, User("2", "bob", T("bob's bio")))});
  Deliver(*sink, {Update(users, User("1", "ada lovelace", Toast())),
                  Update(users, User("2", "bob", Toast()), Key("2")),
                  Update(users, User("2", "bobby", Toast()))});
  EXPECT_EQ(Target("SELECT id::text, name, bio FROM users ORDER BY id"),
            (std::vector<Row>{{"1", "ada lovelace", "long bio"}, {"2", "bobby", "bob's bio"}}));
  // The key changes and the TOASTed value is not resent: it moves with the row.
  Deliver(*sink, {Update(users, User("3", "ada", Toast()), Key("1"))});
  EXPECT_EQ(Target("SELECT id::text, name, bio FROM users ORDER BY id"),
            (std::vector<Row>{{"2", "bobby", "bob's bio"}, {"3", "ada", "long bio"}}));
}

TEST_F(PostgresSinkTest, KeyUpdateMovesTheRow) {
  auto users = Users();
  auto sink = OpenSink(Config());
  Deliver(*sink, {Insert(users, User("1", "ada")), Insert(users, User("2", "bob"))});
  Deliver(*sink, {Update(users, User("10", "ada"), Key("1"))});
  EXPECT_EQ(Target("SELECT id::text, name FROM users ORDER BY users.id"),
            (std::vector<Row>{{"2", "bob"}, {"10", "ada"}}));
  // Swap two keys inside one batch.
  Deliver(*sink,
          {Update(users, User("99", "bob"), Key("2")), Update(users, User("2", "ada"), Key("10")),
           Update(users, User("10", "bob"), Key("99"))});
  EXPECT_EQ(Target("SELECT id::text, name FROM users ORDER BY users.id"),
            (std::vector<Row>{{"2", "ada"}, {"10", "bob"}}));
}

TEST_F(PostgresSinkTest, ABatchLargerThanOneCopyChunkArrivesWhole) {
  auto users = Users();
  auto sink = OpenSink(Config());
  std::vector<ChangeEvent> events;
  const std::string bio(700, 'x');
  for (int i = 1; i <= 3000; ++i) {
    events.push_back(Insert(users, User(std::to_string(i), "n\t" + std::to_string(i),
                                        T(bio + "\n" + std::to_string(i)))));
  }
  events.push_back(Delete(users, Key("7")));
  Deliver(*sink, events);
  EXPECT_EQ(Target("SELECT count(*)::text, sum(id)::text, count(DISTINCT name)::text FROM users "
                   "WHERE bio = repeat('x', 700) || E'\\n' || id AND name = E'n\\t' || id"),
            (std::vector<Row>{{"2999", std::to_string(3000 * 3001 / 2 - 7), "2999"}}));
}

TEST_F(PostgresSinkTest, HardDeleteRemovesTheRow) {
  auto users = Users();
  auto sink = OpenSink(Config());
  Deliver(*sink, {Insert(users, User("1", "ada")), Insert(users, User("2", "bob"))});
  Deliver(*sink,
          {Delete(users, Key("1")), Insert(users, User("3", "cid")), Delete(users, Key("3"))});
  EXPECT_EQ(Target("SELECT id::text FROM users ORDER BY id"), (std::vector<Row>{{"2"}}));
}

TEST_F(PostgresSinkTest, SoftDeleteMarksTheRowAndAReinsertRevivesIt) {
  auto users = Users();
  server_->Exec(
      "CREATE TABLE flagged (id int PRIMARY KEY, tenant_id text, name text, bio text, "
      "is_deleted boolean, pgfanout_version bigint NOT NULL)",
      tgt_);
  SinkConfig config = Config();
  config.tables = {SinkTableConfig{.source = "public.users",
                                   .target = "flagged",
                                   .delete_mode = DeleteMode::kSoft,
                                   .soft_delete_column = "is_deleted"}};
  auto flagged = OpenSink(config);
  config.id = "stamped-sink";
  config.tables = {SinkTableConfig{.source = "public.users",
                                   .target = "stamped",
                                   .delete_mode = DeleteMode::kSoft,
                                   .soft_delete_column = "deleted_at"}};
  auto stamped = OpenSink(config);  // creates its table, with deleted_at a timestamptz
  std::vector<ChangeEvent> inserts = {Insert(users, User("1", "ada")),
                                      Insert(users, User("2", "bob"))};
  std::vector<ChangeEvent> deletes = {Delete(users, Key("1"))};
  for (auto* sink : {flagged.get(), stamped.get()}) {
    Deliver(*sink, inserts);
    Deliver(*sink, deletes);
  }
  EXPECT_EQ(Target("SELECT id::text, is_deleted::text FROM flagged ORDER BY id"),
            (std::vector<Row>{{"1", "true"}, {"2", "false"}}));
  EXPECT_EQ(
      Target("SELECT id::text, (deleted_at = '" + FormatTimestampUtc(deletes[0].commit_time_us) +
             "'::timestamptz)::text FROM stamped ORDER BY id"),
      (std::vector<Row>{{"1", "true"}, {"2", std::nullopt}}))
      << "a non-boolean column gets the commit time";
  std::vector<ChangeEvent> again = {Insert(users, User("1", "ada again"))};
  Deliver(*flagged, again);
  Deliver(*stamped, again);
  EXPECT_EQ(TargetScalar("SELECT is_deleted::text || name FROM flagged WHERE id = 1"),
            "falseada again");
  EXPECT_EQ(TargetScalar("SELECT coalesce(deleted_at::text, 'null') FROM stamped WHERE id = 1"),
            "null");
}

TEST_F(PostgresSinkTest, RenameSubsetAndComputedColumn) {
  server_->Exec(
      "CREATE TABLE accounts (id int PRIMARY KEY, tenant_id text, email text, "
      "email_confirmed_at timestamptz, secret text)",
      src_);
  auto accounts = Schema("accounts");
  SinkConfig config = Config({"7"});
  config.tables = {SinkTableConfig{.source = "public.accounts",
                                   .target_schema = "tenant_7",
                                   .target = "people",
                                   .columns = {"id", "tenant_id", "email"},
                                   .rename = {{"email", "contact"}},
                                   .computed = {{"confirmed", "email_confirmed_at IS NOT NULL"}}}};
  auto sink = OpenSink(
      config, {TableConfig{.schema = "public", .name = "accounts", .tenant_column = "tenant_id"}});
  Deliver(*sink,
          {Insert(accounts, {T("1"), T("7"), T("a@x.org"), T("2024-01-01 00:00:00+00"), T("pw")}),
           Insert(accounts, {T("2"), T("7"), T("b@x.org"), Null(), T("pw")})});
  EXPECT_EQ(Target("SELECT id::text, tenant_id, contact, confirmed::text FROM tenant_7.people "
                   "ORDER BY id"),
            (std::vector<Row>{{"1", "7", "a@x.org", "true"}, {"2", "7", "b@x.org", "false"}}));
  EXPECT_EQ(TargetScalar("SELECT count(*) FROM information_schema.columns WHERE table_name = "
                         "'people' AND column_name IN ('secret', 'email', "
                         "'email_confirmed_at')"),
            "0")
      << "only the listed columns are copied";
  EXPECT_EQ(TargetScalar("SELECT data_type FROM information_schema.columns WHERE table_name = "
                         "'people' AND column_name = 'confirmed'"),
            "boolean")
      << "a computed column is typed by what the target makes of its expression";
}

// A computed column's SQL is one expression. Written to close the statement and start
// others (a DROP TABLE, then a valid upsert so the batch would commit), it is refused: the
// sink runs its SQL with the extended protocol, which takes one statement only.
TEST_F(PostgresSinkTest, AComputedExpressionCannotCarryAnotherStatement) {
  server_->Exec("CREATE TABLE accounts (id int PRIMARY KEY, tenant_id text, email text)", src_);
  server_->Exec(
      "CREATE TABLE people (id int PRIMARY KEY, tenant_id text, email text, confirmed boolean, "
      "pgfanout_version bigint NOT NULL); CREATE TABLE victims (id int)",
      tgt_);
  auto accounts = Schema("accounts");
  SinkConfig config = Config();
  Pg(config).create_tables = false;
  const std::string stage = QuoteIdent(StageName(0));
  config.tables = {SinkTableConfig{
      .source = "public.accounts",
      .target = "people",
      .computed = {{"confirmed",
                    "true) AS boolean), 1 FROM pg_temp." + stage +
                        " AS _pgf_s WHERE false; DROP TABLE victims; INSERT INTO people AS "
                        "_pgf_t (id, tenant_id, email, confirmed, pgfanout_version) SELECT "
                        "CAST(_pgf_s.id AS integer), _pgf_s.tenant_id, _pgf_s.email, CAST((true"}}}};
  auto sink = OpenSink(config);
  auto r = sink->Write(std::vector<ChangeEvent>{Insert(accounts, {T("1"), T("7"), T("a@x")})});
  ASSERT_FALSE(r.has_value()) << "the batch went through";
  EXPECT_EQ(r.error().kind, ErrorKind::kMismatch) << r.error().message;
  EXPECT_EQ(TargetScalar("SELECT to_regclass('victims') IS NOT NULL"), "t") << "victims dropped";
}

TEST_F(PostgresSinkTest, CreatesTheTableAndFollowsAddAndDropColumn) {
  auto v1 = Users();
  auto sink = OpenSink(Config());
  Deliver(*sink, {Insert(v1, User("1", "ada"))});
  server_->Exec("ALTER TABLE users ADD COLUMN email varchar(80)", src_);
  auto v2 = Schema("users");
  std::vector<Datum> with_email = User("2", "bob");
  with_email.push_back(T("bob@x.org"));
  // One batch with both shapes: the rows before the ALTER apply before it.
  Deliver(*sink, {Insert(v1, User("3", "cid")), Insert(v2, with_email)});
  EXPECT_EQ(
      Target("SELECT id::text, name, email FROM users ORDER BY id"),
      (std::vector<Row>{
          {"1", "ada", std::nullopt}, {"2", "bob", "bob@x.org"}, {"3", "cid", std::nullopt}}));
  EXPECT_EQ(TargetScalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                         "attrelid = 'users'::regclass AND attname = 'email'"),
            "character varying(80)");
  server_->Exec("ALTER TABLE users DROP COLUMN bio", src_);
  auto v3 = Schema("users");
  Deliver(*sink, {Insert(v3, {T("4"), T("7"), T("dan"), T("dan@x.org")})});
  EXPECT_EQ(Target("SELECT string_agg(column_name::text, ',' ORDER BY ordinal_position) FROM "
                   "information_schema.columns WHERE table_name = 'users'"),
            (std::vector<Row>{{"id,tenant_id,name,pgfanout_version,email"}}));
  EXPECT_EQ(TargetScalar("SELECT count(*) FROM users"), "4");
}

// A column added and dropped again brings the table's first shape back. The sink had that
// shape ready on its connection from before the ADD COLUMN; it must sync the target to it
// again (drop the column), not write on as if the column were still wanted.
TEST_F(PostgresSinkTest, AColumnAddedAndDroppedAgainIsDroppedFromTheTarget) {
  auto v1 = Users();
  auto sink = OpenSink(Config());
  Deliver(*sink, {Insert(v1, User("1", "ada"))});
  server_->Exec("ALTER TABLE users ADD COLUMN nickname text", src_);
  auto v2 = Schema("users");
  std::vector<Datum> with_nickname = User("2", "bob");
  with_nickname.push_back(T("bobby"));
  Deliver(*sink, {Insert(v2, with_nickname)});
  server_->Exec("ALTER TABLE users DROP COLUMN nickname", src_);
  auto v3 = Schema("users");
  ASSERT_EQ(v3->Fingerprint(), v1->Fingerprint()) << "the first shape is back";
  Deliver(*sink, {Update(v3, User("1", "ada2"))});
  EXPECT_EQ(TargetScalar("SELECT count(*) FROM information_schema.columns WHERE table_name = "
                         "'users' AND column_name = 'nickname'"),
            "0");
  EXPECT_EQ(Target("SELECT id::text, name FROM users ORDER BY id"),
            (std::vector<Row>{{"1", "ada2"}, {"2", "bob"}}));
}

TEST_F(PostgresSinkTest, FollowsATypeChangeTheTargetCanTake) {
  server_->Exec("CREATE TABLE items (id int PRIMARY KEY, qty int)", src_);
  auto v1 = Schema("items");
  auto sink = OpenSink(Config());
  Deliver(*sink, {Insert(v1, {T("1"), T("5")})});
  server_->Exec("ALTER TABLE items ALTER COLUMN qty TYPE numeric(10,2)", src_);
  Deliver(*sink, {Insert(Schema("items"), {T("2"), T("2.50")})});
  EXPECT_EQ(Target("SELECT id::text, qty::text FROM items ORDER BY id"),
            (std::vector<Row>{{"1", "5.00"}, {"2", "2.50"}}));
}

TEST_F(PostgresSinkTest, ATypeChangeTheTargetCannotFollowStopsTheSink) {
  server_->Exec("CREATE TABLE items (id int PRIMARY KEY, code text)", src_);
  auto v1 = Schema("items");
  auto sink = OpenSink(Config());
  Deliver(*sink, {Insert(v1, {T("1"), T("abc")})});
  server_->Exec("DELETE FROM items; ALTER TABLE items ALTER COLUMN code TYPE int USING 0", src_);
  auto r = sink->Write(std::vector<ChangeEvent>{Insert(Schema("items"), {T("2"), T("7")})});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kMismatch) << r.error().message;
  EXPECT_NE(r.error().message.find("sink tenant-sink: table public.items column code changed type "
                                   "from text to integer and the target cannot follow"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(Target("SELECT id::text, code FROM items"), (std::vector<Row>{{"1", "abc"}}))
      << "nothing of the failed batch is applied";
}

TEST_F(PostgresSinkTest, PerTenantTruncateDeletesOnlyThatSinksTenants) {
  auto users = Users();
  const std::vector<TableConfig> tables = {
      TableConfig{.schema = "public", .name = "users", .tenant_column = "tenant_id"}};
  // Two tenants' sinks share one target database (and table).
  auto seven = OpenSink(Config({"7"}), tables);
  SinkConfig eight_config = Config({"8", "9"});
  eight_config.id = "tenant-8";
  auto eight = OpenSink(eight_config, tables);
  Deliver(*seven, {Insert(users, User("1", "ada", T("b"), "7"))});
  Deliver(*eight, {Insert(users, User("2", "bob", T("b"), "8")),
                   Insert(users, User("3", "cid", T("b"), "9"))});
  Deliver(*seven, {Event(Op::kTruncate, users, {}), Insert(users, User("4", "dan", T("b"), "7"))});
  EXPECT_EQ(Target("SELECT id::text, tenant_id FROM users ORDER BY id"),
            (std::vector<Row>{{"2", "8"}, {"3", "9"}, {"4", "7"}}));
  // A sink for every tenant truncates the table.
  SinkConfig all = Config();
  all.id = "all";
  auto everyone = OpenSink(all, tables);
  Deliver(*everyone, {Event(Op::kTruncate, users, {})});
  EXPECT_EQ(TargetScalar("SELECT count(*) FROM users"), "0");
}

TEST_F(PostgresSinkTest, NamesWithCaseSpacesAndQuotes) {
  server_->Exec(
      "CREATE SCHEMA \"My App\"; CREATE TABLE \"My App\".\"Order \"\"Items\"\"\" ("
      "\"Id\" int PRIMARY KEY, \"Unit \"\"Price\"\"\" numeric, \"select\" text)",
      src_);
  auto items = Schema("My App", "Order \"Items\"");
  ASSERT_EQ(items->columns.size(), 3u);
  SinkConfig config = Config();
  Pg(config).schema = "Target Schema";
  auto sink = OpenSink(config);
  Deliver(*sink,
          {Insert(items, {T("1"), T("9.99"), T("a")}), Insert(items, {T("2"), T("1"), T("b")})});
  Deliver(*sink,
          {Update(items, {T("1"), T("10.00"), T("a")}), Delete(items, {T("2"), Null(), Null()})});
  EXPECT_EQ(Target("SELECT \"Id\"::text, \"Unit \"\"Price\"\"\"::text, \"select\" FROM "
                   "\"Target Schema\".\"Order \"\"Items\"\"\""),
            (std::vector<Row>{{"1", "10.00", "a"}}))
      << "a default mapping lands in the sink's schema, under the source table's name";
  EXPECT_EQ(TargetScalar("SELECT count(*) FROM \"Target Schema\".pgfanout_sink_state"), "1");
}

TEST_F(PostgresSinkTest, OpenReturnsThePositionTheTargetHoldsWithItsLineage) {
  auto users = Users();
  const Lineage ours{.system_id = "7310000000000000001",
                     .slot = "pgfanout",
                     .timeline = 3,
                     .log_id = "0123456789abcdef0123456789abcdef"};
  auto sink = MakePostgresSink(Config());
  ASSERT_TRUE(sink->Open(std::nullopt, ours).has_value());
  std::vector<ChangeEvent> first = {Insert(users, User("1", "ada"))};
  std::vector<ChangeEvent> second = {Update(users, User("1", "bea"))};
  Deliver(*sink, first);
  Deliver(*sink, second);
  sink->Stop();
  // The runner stored only the first batch's cursor (a crash before the second's store):
  // the target's position is the second batch's, written under the lineage it was given.
  SinkCursor stored{.applied = first.back().id, .token = first.back().id.ToString()};
  auto reopened = sink->Open(stored, Lineage{.log_id = "another"});
  ASSERT_TRUE(reopened.has_value()) << reopened.error().message;
  ASSERT_TRUE(reopened.value().has_value());
  EXPECT_EQ(reopened.value()->applied, second.back().id);
  ASSERT_TRUE(reopened.value()->lineage.has_value());
  EXPECT_EQ(*reopened.value()->lineage, ours);
  // A position written before positions named their log reads without a lineage.
  sink->Stop();
  server_->Exec("UPDATE pgfanout_sink_state SET log_id = NULL", tgt_);
  auto legacy = sink->Open(stored, ours);
  ASSERT_TRUE(legacy.has_value() && legacy.value().has_value());
  EXPECT_FALSE(legacy.value()->lineage.has_value());
  // A new target knows nothing.
  SinkConfig fresh = Config();
  fresh.id = "fresh";
  auto other = MakePostgresSink(fresh);
  auto none = other->Open(std::nullopt, ours);
  ASSERT_TRUE(none.has_value()) << none.error().message;
  EXPECT_FALSE(none.value().has_value());
}

// Fencing (issue 21): a pgfanout paused past wal_sender_timeout lost the slot to a standby
// that wrote this destination since; when it wakes, a batch it had in hand must change
// nothing. The sink locks its position row in the batch's transaction and applies only when
// the row is as it last saw it; reopened, it reads the new position.
TEST_F(PostgresSinkTest, ABatchFromAWriterSupersededByAnotherChangesNothing) {
  auto users = Users();
  const Lineage old_leader{
      .system_id = "7310000000000000001", .slot = "pgfanout", .log_id = "slot/a"};
  const Lineage new_leader{
      .system_id = "7310000000000000001", .slot = "pgfanout", .log_id = "slot/b"};
  auto paused = MakePostgresSink(Config());
  ASSERT_TRUE(paused->Open(std::nullopt, old_leader).has_value());
  const ChangeEvent first = Insert(users, User("1", "ada"));
  Deliver(*paused, {first});
  // The standby takes over from the destination's position and writes on.
  auto standby = MakePostgresSink(Config());
  auto opened = standby->Open(std::nullopt, new_leader);
  ASSERT_TRUE(opened.has_value() && opened.value().has_value());
  EXPECT_EQ(opened.value()->applied, first.id);
  const ChangeEvent second = Update(users, User("1", "bea"));
  const ChangeEvent third = Insert(users, User("2", "cy"));
  Deliver(*standby, {second, third});
  const auto before = Target("SELECT id::text, name, xmin::text FROM users ORDER BY id");
  // The old one wakes with `second` (and an event of its own view) in hand.
  auto late = paused->Write(std::vector<ChangeEvent>{second, third});
  ASSERT_FALSE(late.has_value()) << "a superseded writer's batch was applied";
  EXPECT_NE(late.error().message.find("another writer moved this sink's position"),
            std::string::npos)
      << late.error().message;
  EXPECT_EQ(Target("SELECT id::text, name, xmin::text FROM users ORDER BY id"), before)
      << "no row rewritten";
  EXPECT_EQ(TargetScalar("SELECT commit_lsn::text || '#' || ordinal || ' ' || log_id "
                         "FROM pgfanout_sink_state"),
            third.id.ToString() + " slot/b")
      << "the position is the standby's";
  // Reopened, it sees where the destination is; the standby, superseded in turn, stops.
  paused->Stop();
  auto reopened = paused->Open(std::nullopt, old_leader);
  ASSERT_TRUE(reopened.has_value() && reopened.value().has_value());
  EXPECT_EQ(reopened.value()->applied, third.id);
  const ChangeEvent fourth = Update(users, User("2", "di"));
  Deliver(*paused, {fourth});
  EXPECT_FALSE(standby->Write(std::vector<ChangeEvent>{fourth}).has_value());
  EXPECT_EQ(TargetScalar("SELECT name FROM users WHERE id = 2"), "di");
}

TEST_F(PostgresSinkTest, AStateTableWithoutLineageColumnsGetsThem) {
  // The table as pgfanout 0.1 made it (001 only), with a position in it.
  server_->Exec(
      "CREATE TABLE pgfanout_sink_state (sink_id text PRIMARY KEY, commit_lsn pg_lsn NOT NULL, "
      "ordinal bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now()); "
      "INSERT INTO pgfanout_sink_state (sink_id, commit_lsn, ordinal) "
      "VALUES ('tenant-sink', '0/1000', 2)",
      tgt_);
  auto sink = MakePostgresSink(Config());
  auto opened = sink->Open(std::nullopt, Lineage{.log_id = "x"});
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  ASSERT_TRUE(opened.value().has_value());
  EXPECT_EQ(opened.value()->applied, (EventId{Lsn(0x1000), 2}));
  EXPECT_FALSE(opened.value()->lineage.has_value()) << "an old row names no log";
  EXPECT_EQ(TargetScalar("SELECT count(*) FROM pg_attribute WHERE attrelid = "
                         "'pgfanout_sink_state'::regclass AND attname IN ('source_system_id', "
                         "'slot_name', 'timeline', 'log_id')"),
            "4");
}

TEST_F(PostgresSinkTest, RewindMovesTheTargetPositionBack) {
  auto users = Users();
  auto sink = OpenSink(Config());
  std::vector<ChangeEvent> batch = {Insert(users, User("1", "ada"))};
  Deliver(*sink, batch);
  sink->Stop();
  SinkCursor to{.applied = EventId{Lsn(batch[0].id.commit_lsn.value() - 1), UINT32_MAX},
                .token = "x"};
  auto rewound = MakePostgresSink(Config())->Rewind(to, Lineage{.log_id = "rewinder"});
  ASSERT_TRUE(rewound.has_value()) << rewound.error().message;
  auto reopened = sink->Open(to, {});
  ASSERT_TRUE(reopened.has_value() && reopened.value().has_value());
  EXPECT_EQ(reopened.value()->applied, to.applied) << "Open must not report past the replay start";
  EXPECT_EQ(reopened.value()->lineage.value_or(Lineage{}).log_id, "rewinder");
  EXPECT_EQ(TargetScalar("SELECT ordinal::text FROM pgfanout_sink_state"),
            std::to_string(UINT32_MAX));
}

TEST_F(PostgresSinkTest, RedeliveryLeavesTheSameEndState) {
  auto users = Users();
  auto sink = OpenSink(Config());
  // One source transaction split over two batches: both halves share a commit LSN.
  ChangeEvent a = Insert(users, User("1", "ada"));
  ChangeEvent b = Update(users, User("1", "ada, later in the same transaction"));
  b.id = EventId{a.id.commit_lsn, 1};
  ChangeEvent c = Insert(users, User("2", "bob"));
  ChangeEvent d = Delete(users, Key("2"));
  ChangeEvent e = Update(users, User("1", "ada, next transaction"));
  Deliver(*sink, {a});
  Deliver(*sink, {b});
  EXPECT_EQ(TargetScalar("SELECT name FROM users WHERE id = 1"),
            "ada, later in the same transaction")
      << "<= lets an event with the row's own version apply";
  Deliver(*sink, {c, d, e});
  const auto end = Target("SELECT id::text, name, pgfanout_version::text FROM users ORDER BY id");
  // At-least-once input: the runner may hand over all of it again (a replay).
  Deliver(*sink, {a, b, c, d, e});
  Deliver(*sink, {c, d, e});
  EXPECT_EQ(Target("SELECT id::text, name, pgfanout_version::text FROM users ORDER BY id"), end);
  EXPECT_EQ(
      end,
      (std::vector<Row>{{"1", "ada, next transaction", std::to_string(e.id.commit_lsn.value())}}));
}

TEST_F(PostgresSinkTest, MismatchesNameTheSinkTableAndColumn) {
  auto users = Users();
  SinkConfig config = Config();
  Pg(config).create_tables = false;
  auto sink = OpenSink(config);
  auto missing = sink->Write(std::vector<ChangeEvent>{Insert(users, User("1", "ada"))});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(missing.error().message.find("sink tenant-sink: table public.users -> public.users: "
                                         "the target table does not exist"),
            std::string::npos)
      << missing.error().message;

  server_->Exec(
      "CREATE TABLE users (id int PRIMARY KEY, tenant_id text, name text, "
      "pgfanout_version bigint NOT NULL)",
      tgt_);
  auto no_column = sink->Write(std::vector<ChangeEvent>{Insert(users, User("1", "ada"))});
  ASSERT_FALSE(no_column.has_value());
  EXPECT_EQ(no_column.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(no_column.error().message.find("no column \"bio\""), std::string::npos)
      << no_column.error().message;

  server_->Exec("ALTER TABLE users ADD COLUMN bio varchar(3)", tgt_);
  auto too_long = sink->Write(std::vector<ChangeEvent>{Insert(users, User("1", "ada", T("long")))});
  ASSERT_FALSE(too_long.has_value());
  EXPECT_EQ(too_long.error().kind, ErrorKind::kMismatch) << "22001 is a data error";
  EXPECT_NE(too_long.error().message.find("sink tenant-sink: table public.users"),
            std::string::npos)
      << too_long.error().message;
  EXPECT_NE(too_long.error().message.find("22001"), std::string::npos) << too_long.error().message;

  // The sink still works once the target is fixed.
  server_->Exec("ALTER TABLE users ALTER COLUMN bio TYPE text", tgt_);
  Deliver(*sink, {Insert(users, User("1", "ada", T("long")))});
  EXPECT_EQ(TargetScalar("SELECT bio FROM users"), "long");
}

TEST_F(PostgresSinkTest, AnUnreachableTargetIsAConnectionErrorWithoutThePassword) {
  SinkConfig config = Config();
  Pg(config).dsn = "host=127.0.0.1 port=" + std::to_string(FreePort()) +
                   " user=postgres password=hunter2 dbname=x connect_timeout=2";
  auto sink = MakePostgresSink(config);
  auto r = sink->Open(std::nullopt, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kConnection);
  EXPECT_NE(r.error().message.find("tenant-sink"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("hunter2"), std::string::npos) << r.error().message;
}

// Per-tenant sinks of tenants 7 and 8 writing into one target table (a shared target
// database with the tenant as a column). The review's repro: a row moves from 7 to 8 and
// 8's sink applies first; 7's delete of the row's old tenant has the same version and used
// to remove 8's row for good. Deletes now touch only the sink's tenants' rows, and an
// upsert takes over another tenant's row only when newer, so every order ends with the
// row at tenant 8.
TEST_F(PostgresSinkTest, TenantSinksSharingATableNeverRemoveEachOthersRows) {
  auto users = Users();
  const std::vector<TableConfig> tracked = {
      {.schema = "public", .name = "users", .tenant_column = "tenant_id"}};
  SinkConfig c7 = Config({"7"}), c8 = Config({"8"});
  c7.id = "tenant-7";
  c8.id = "tenant-8";
  auto s7 = OpenSink(c7, tracked);
  auto s8 = OpenSink(c8, tracked);
  auto at = [](ChangeEvent e, uint64_t version, uint32_t ordinal, std::string tenant) {
    e.id = EventId{Lsn(version), ordinal};
    e.tenant = std::move(tenant);
    return e;
  };
  // Rows 1 and 2 start at tenant 7 (version 0x100); at 0x200 each moves to tenant 8: 7's
  // sink gets a delete, 8's sink an insert, of the same version.
  Deliver(*s7, {at(Insert(users, User("1", "a")), 0x100, 0, "7"),
                at(Insert(users, User("2", "b")), 0x100, 1, "7")});
  auto out7 = [&](std::string id) { return at(Delete(users, Key(id)), 0x200, 0, "7"); };
  auto in8 = [&](std::string id) {
    return at(Insert(users, User(id, "moved", T("bio"), "8")), 0x200, 1, "8");
  };
  // Row 1: the old tenant's sink first. Row 2: the new tenant's sink first.
  Deliver(*s7, {out7("1")});
  Deliver(*s8, {in8("1")});
  Deliver(*s8, {in8("2")});
  Deliver(*s7, {out7("2")});
  // Row 3: one transaction (0x300) inserts it for 7 and moves it to 8, and 7's sink gets
  // that transaction in two batches, the second after 8's sink wrote the row: 7's insert of
  // the same version must not take the row back, and its delete must not remove it.
  Deliver(*s8, {at(Insert(users, User("3", "moved", T("bio"), "8")), 0x300, 1, "8")});
  Deliver(*s7, {at(Insert(users, User("3", "c")), 0x300, 0, "7")});
  Deliver(*s7, {at(Delete(users, Key("3")), 0x300, 1, "7")});
  EXPECT_EQ(Target("SELECT id::text, tenant_id, name FROM users ORDER BY id"),
            (std::vector<Row>{{"1", "8", "moved"}, {"2", "8", "moved"}, {"3", "8", "moved"}}));
  // A TRUNCATE of a per-tenant sink removes its tenants' rows only.
  Deliver(*s7, {at(Insert(users, User("4", "d")), 0x400, 0, "7")});
  ChangeEvent truncate{.id = EventId{Lsn(0x500), 0}, .op = Op::kTruncate, .table = users};
  Deliver(*s7, {truncate});
  EXPECT_EQ(TargetScalar("SELECT string_agg(id::text || tenant_id, ',' ORDER BY id) FROM users"),
            "18,28,38");
}

// Sinks that share a target database start together (a thousand tenant sinks share a few
// target servers): each prepares the state table, and CREATE TABLE IF NOT EXISTS run at
// once can fail on pg_type's unique index. They take turns, and none fails.
TEST_F(PostgresSinkTest, TwentySinksPreparingOneTargetAtOnceAllSucceed) {
  constexpr int kSinks = 20;
  std::vector<std::string> errors(kSinks);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kSinks; ++i) {
    threads.emplace_back([&, i] {
      SinkConfig config = Config({std::to_string(i)});
      config.id = fmt::format("tenant-{}", i);
      auto sink = MakePostgresSink(config);
      ready.fetch_add(1);
      while (ready.load() < kSinks) std::this_thread::yield();
      auto r = sink->Open(std::nullopt, Lineage{.log_id = "l"});
      if (!r) errors[i] = r.error().message;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kSinks; ++i) EXPECT_EQ(errors[i], "") << "sink tenant-" << i;
  EXPECT_EQ(TargetScalar("SELECT count(*) FROM pg_attribute WHERE attrelid = "
                         "'pgfanout_sink_state'::regclass AND attname = 'log_id'"),
            "1");
}

// A copy that replaces (a new sink, a position no log vouches for, pgfanout backfill):
// every row of the sink's tenants that the copy does not write is gone afterwards, also
// one with a version from another history; other tenants' rows in the table stay.
TEST_F(PostgresSinkTest, ACopyThatReplacesLeavesExactlyTheCopiedRowsOfItsTenants) {
  auto users = Users();
  const std::vector<TableConfig> tracked = {
      {.schema = "public", .name = "users", .tenant_column = "tenant_id"}};
  SinkConfig c8 = Config({"8"});
  c8.id = "tenant-8";
  auto s8 = OpenSink(c8, tracked);
  Deliver(*s8, {Insert(users, User("80", "eight", T("bio"), "8"))});
  auto s7 = OpenSink(Config({"7"}), tracked);
  Deliver(*s7, {Insert(users, User("1", "stale")), Insert(users, User("2", "gone"))});
  server_->Exec("UPDATE users SET pgfanout_version = 999999999 WHERE id = 1", tgt_);
  const std::vector<std::shared_ptr<const TableSchema>> tables = {users};
  ASSERT_TRUE(s7->BeginReplace(tables).has_value());
  ChangeEvent copied = Insert(users, User("1", "fresh"));
  copied.id = EventId{Lsn(0x5000), 0};
  Deliver(*s7, {copied, [&] {
                  ChangeEvent e = Insert(users, User("3", "new"));
                  e.id = EventId{Lsn(0x5000), 1};
                  return e;
                }()});
  auto done = s7->FinishReplace(tables, Lsn(0x5000));
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(Target("SELECT id::text, tenant_id, name FROM users ORDER BY id"),
            (std::vector<Row>{{"1", "7", "fresh"}, {"3", "7", "new"}, {"80", "8", "eight"}}));
}

}  // namespace
}  // namespace pgfanout::testing
