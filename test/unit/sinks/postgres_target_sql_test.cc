#include <gtest/gtest.h>

#include <string>

#include "src/pgclient/pg_connection.h"
#include "src/sinks/postgres/table_mapping.h"
#include "src/sinks/postgres/target_errors.h"
#include "src/sinks/postgres/target_sql.h"

namespace pgfanout {
namespace {

constexpr uint32_t kInt4 = 23, kText = 25, kTimestamptz = 1184;

TableSchema Weird() {
  return TableSchema{.relation_id = RelationId{16384},
                     .schema_name = "public",
                     .table_name = "Weird \"Name\"",
                     .columns = {{.name = "Id", .type_oid = kInt4, .part_of_key = true},
                                 {.name = "tenant id", .type_oid = kText},
                                 {.name = "say \"hi\"", .type_oid = kText},
                                 {.name = "confirmed_at", .type_oid = kTimestamptz}}};
}

SinkBasics Sink(std::vector<std::string> tenants = {"*"}) {
  return SinkBasics{.id = "tenant-7", .tenants = std::move(tenants)};
}
const PostgresSinkOptions kOptions{.schema = "My Schema"};

const TableConfig kWeirdTable{
    .schema = "public", .name = "Weird \"Name\"", .tenant_column = "tenant id"};

TableMapping Resolve(const SinkBasics& sink, const TableSchema& schema = Weird()) {
  auto m = ResolveMapping(sink, kOptions, &kWeirdTable, schema);
  EXPECT_TRUE(m.has_value()) << (m ? "" : m.error().message);
  if (!m || !m.value()) return TableMapping{};
  return *std::move(m).value();
}

bool Has(const std::string& sql, const std::string& part) {
  return sql.find(part) != std::string::npos;
}

TEST(PostgresTargetSql, QuotesEveryIdentifierAndDoublesQuotes) {
  EXPECT_EQ(QuoteIdent("Weird \"Name\""), "\"Weird \"\"Name\"\"\"");
  EXPECT_EQ(QuoteIdent("users"), "\"users\"");
  EXPECT_EQ(QuoteLiteral("O'Brien \\ x"), "E'O''Brien \\\\ x'");
  TableMapping m = Resolve(Sink());
  EXPECT_EQ(TargetName(m), "\"My Schema\".\"Weird \"\"Name\"\"\"");
}

TEST(PostgresTargetSql, UpsertCastsStagedValuesAndGuardsTheVersion) {
  TableMapping m = Resolve(Sink());
  TargetTypes types{.columns = {"integer", "text", "text", "timestamp with time zone"}};
  std::string sql = UpsertSql(m, types, "_pgf_stage_0", 1, {false, false, false, false}, nullptr);
  EXPECT_TRUE(Has(sql,
                  "INSERT INTO \"My Schema\".\"Weird \"\"Name\"\"\" AS _pgf_t ("
                  "\"Id\", \"tenant id\", \"say \"\"hi\"\"\", \"confirmed_at\", "
                  "\"pgfanout_version\")"))
      << sql;
  EXPECT_TRUE(Has(sql, "CAST(_pgf_s.\"say \"\"hi\"\"\" AS text)")) << sql;
  EXPECT_TRUE(Has(sql, "FROM pg_temp.\"_pgf_stage_0\" AS _pgf_s WHERE _pgf_s._pgf_group = 1"))
      << sql;
  EXPECT_TRUE(Has(sql, "ON CONFLICT (\"Id\") DO UPDATE SET \"tenant id\" = EXCLUDED.\"tenant id\""))
      << sql;
  EXPECT_FALSE(Has(sql, "\"Id\" = EXCLUDED")) << "the key is not updated: " << sql;
  EXPECT_TRUE(Has(sql, "WHERE _pgf_t.\"pgfanout_version\" <= EXCLUDED.\"pgfanout_version\""))
      << "<=: later events of a transaction split over two batches share its LSN: " << sql;
}

TEST(PostgresTargetSql, UpsertLeavesOutUnchangedToastColumnsAndComputedOnes) {
  SinkBasics sink = Sink();
  sink.tables = {SinkTableConfig{.source = "public.Weird \"Name\"",
                                 .target = "people",
                                 .rename = {{"say \"hi\"", "greeting"}},
                                 .computed = {{"confirmed", "confirmed_at IS NOT NULL"}},
                                 .delete_mode = DeleteMode::kSoft,
                                 .soft_delete_column = "deleted_at"}};
  TableMapping m = Resolve(sink);
  EXPECT_EQ(m.target_table, "people");
  EXPECT_EQ(m.staged.size(), 4u) << "computed SQL may read any source column";
  TargetTypes types{.columns = {"integer", "text", "text", "timestamp with time zone"},
                    .computed = {"boolean"},
                    .soft_delete = "timestamp with time zone"};
  std::string full = UpsertSql(m, types, "st", 1, {false, false, false, false}, nullptr);
  EXPECT_TRUE(Has(full, "\"greeting\"")) << full;
  EXPECT_TRUE(Has(full, "CAST((confirmed_at IS NOT NULL) AS boolean)")) << full;
  EXPECT_TRUE(Has(full, "\"deleted_at\" = EXCLUDED.\"deleted_at\"")) << "upsert revives: " << full;
  EXPECT_TRUE(Has(full,
                  "CASE WHEN _pgf_s._pgf_deleted THEN CAST(_pgf_s._pgf_commit_time AS timestamp "
                  "with time zone) END"))
      << "a live row gets NULL, a deleted one (soft) its commit time: " << full;

  std::string partial = UpsertSql(m, types, "st", 2, {false, false, true, false}, nullptr);
  EXPECT_FALSE(Has(partial, "\"greeting\"")) << partial;
  EXPECT_FALSE(Has(partial, "\"confirmed\"")) << partial;
  EXPECT_TRUE(Has(partial, "_pgf_group = 2")) << partial;
}

TEST(PostgresTargetSql, DeletesMatchTheKeyAndGuardTheVersion) {
  TableMapping m = Resolve(Sink());
  TargetTypes types{.columns = {"integer", "text", "text", "timestamp with time zone"}};
  std::string hard = DeleteSql(m, types, "st", nullptr);
  EXPECT_TRUE(Has(hard, "DELETE FROM \"My Schema\".\"Weird \"\"Name\"\"\" AS _pgf_t USING"))
      << hard;
  EXPECT_TRUE(Has(hard, "_pgf_t.\"Id\" = CAST(_pgf_s.\"Id\" AS integer)")) << hard;
  EXPECT_TRUE(Has(hard, "_pgf_t.\"pgfanout_version\" <= _pgf_s._pgf_version")) << hard;

  std::string move = MoveSql(m, types, "st", nullptr);
  EXPECT_TRUE(Has(move, "_pgf_t.\"Id\" = CAST(_pgf_s.\"_pgf_old_0\" AS integer)")) << move;
  EXPECT_TRUE(Has(move, "NOT EXISTS")) << move;
}

TEST(PostgresTargetSql, SoftDeleteMarksByTheColumnType) {
  SinkBasics sink = Sink();
  sink.tables = {SinkTableConfig{.source = "public.Weird \"Name\"",
                                 .delete_mode = DeleteMode::kSoft,
                                 .soft_delete_column = "is_deleted"}};
  TableMapping m = Resolve(sink);
  TargetTypes boolean{.columns = {"integer", "text", "text", "timestamp with time zone"},
                      .soft_delete = "boolean"};
  std::string sql = DeleteSql(m, boolean, "st", nullptr);
  EXPECT_TRUE(Has(sql,
                  "UPDATE \"My Schema\".\"Weird \"\"Name\"\"\" AS _pgf_t SET \"is_deleted\" = "
                  "true"))
      << sql;
  TargetTypes stamp = boolean;
  stamp.soft_delete = "timestamp with time zone";
  sql = DeleteSql(m, stamp, "st", nullptr);
  EXPECT_TRUE(Has(sql, "CAST(_pgf_s._pgf_commit_time AS timestamp with time zone)")) << sql;
}

TEST(PostgresTargetSql, TruncateOfAPerTenantSinkTouchesOnlyItsTenants) {
  TableMapping m = Resolve(Sink({"7", "it's"}));
  TargetTypes types{.columns = {"integer", "text", "text", "timestamp with time zone"}};
  std::vector<std::string> tenants = {"7", "it's"};
  std::string sql = TruncateSql(m, types, &tenants, Lsn(0x10), 0);
  EXPECT_EQ(sql,
            "DELETE FROM \"My Schema\".\"Weird \"\"Name\"\"\" WHERE \"pgfanout_version\" <= 16 "
            "AND format('%s', \"tenant id\") COLLATE \"C\" IN (E'7', E'it''s')")
      << "tenants are compared in their text form, as the router compares them";
  EXPECT_EQ(TruncateSql(m, types, nullptr, Lsn(0x10), 0),
            "TRUNCATE \"My Schema\".\"Weird \"\"Name\"\"\"");
}

// Sinks of other tenants may write into the same table: a per-tenant sink deletes and
// moves only its tenants' rows, and takes over another tenant's row only when newer.
TEST(PostgresTargetSql, APerTenantSinkTouchesOnlyItsTenantsRowsInASharedTable) {
  TableMapping m = Resolve(Sink({"7"}));
  TargetTypes types{.columns = {"integer", "text", "text", "timestamp with time zone"}};
  std::vector<std::string> tenants = {"7"};
  const std::string mine = "format('%s', _pgf_t.\"tenant id\") COLLATE \"C\" IN (E'7')";
  std::string del = DeleteSql(m, types, "st", MatchedTenants(m, &tenants));
  EXPECT_TRUE(Has(del, "<= _pgf_s._pgf_version AND " + mine)) << del;
  std::string move = MoveSql(m, types, "st", MatchedTenants(m, &tenants));
  EXPECT_TRUE(Has(move, "<= _pgf_s._pgf_version AND " + mine)) << move;
  std::string upsert = UpsertSql(m, types, "st", 1, {false, false, false, false},
                                 MatchedTenants(m, &tenants));
  EXPECT_TRUE(Has(upsert,
                  "WHERE (_pgf_t.\"pgfanout_version\" < EXCLUDED.\"pgfanout_version\" OR "
                  "(_pgf_t.\"pgfanout_version\" = EXCLUDED.\"pgfanout_version\" AND " +
                      mine + "))"))
      << upsert;
  EXPECT_FALSE(Has(DeleteSql(m, types, "st", nullptr), "format(")) << "a \"*\" sink: every row";
}

TEST(PostgresTargetSql, AReplacingCopyResetsVersionsThenSweepsWhatItDidNotWrite) {
  TableMapping m = Resolve(Sink({"7"}));
  std::vector<std::string> tenants = {"7"};
  EXPECT_EQ(ResetVersionsSql(m, &tenants),
            "UPDATE \"My Schema\".\"Weird \"\"Name\"\"\" SET \"pgfanout_version\" = 0 WHERE "
            "\"pgfanout_version\" <> 0 AND format('%s', \"tenant id\") COLLATE \"C\" IN (E'7')");
  TargetTypes types{.columns = {"integer", "text", "text", "timestamp with time zone"}};
  EXPECT_EQ(SweepSql(m, types, &tenants, Lsn(0x20), 0),
            "DELETE FROM \"My Schema\".\"Weird \"\"Name\"\"\" WHERE \"pgfanout_version\" = 0 "
            "AND format('%s', \"tenant id\") COLLATE \"C\" IN (E'7')");
}

TEST(PostgresTargetSql, CreatedTablesHaveTheKeyAndMarkTheirSourceColumns) {
  TableMapping m = Resolve(Sink());
  std::string sql = CreateTableSql(m, {"integer", "text", "text", "timestamp with time zone"}, {});
  EXPECT_TRUE(Has(sql,
                  "CREATE TABLE IF NOT EXISTS \"My Schema\".\"Weird \"\"Name\"\"\" (\"Id\" "
                  "integer, "))
      << sql;
  EXPECT_TRUE(Has(sql, "\"pgfanout_version\" bigint NOT NULL, PRIMARY KEY (\"Id\"))")) << sql;
  EXPECT_TRUE(Has(sql,
                  "COMMENT ON COLUMN \"My Schema\".\"Weird \"\"Name\"\"\".\"say \"\"hi\"\"\" "
                  "IS E'pgfanout: source column'"))
      << sql;
}

TEST(PostgresTableMapping, RefusesAMappingWithoutTheKey) {
  SinkBasics sink = Sink();
  sink.tables = {
      SinkTableConfig{.source = "public.Weird \"Name\"", .columns = {"tenant id", "say \"hi\""}}};
  auto m = ResolveMapping(sink, kOptions, &kWeirdTable, Weird());
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_TRUE(Has(m.error().message, "sink tenant-7")) << m.error().message;
  EXPECT_TRUE(Has(m.error().message, "public.Weird \"Name\"")) << m.error().message;
  EXPECT_TRUE(Has(m.error().message, "\"Id\"")) << m.error().message;
}

TEST(PostgresTableMapping, ConfiguredKeyWinsOverTheReplicaIdentity) {
  TableConfig table = kWeirdTable;
  table.key = {"tenant id", "Id"};
  auto m = ResolveMapping(Sink(), kOptions, &table, Weird());
  ASSERT_TRUE(m.has_value() && m.value());
  EXPECT_EQ(m.value()->key, (std::vector<size_t>{1, 0}));
  EXPECT_EQ(m.value()->key_targets, (std::vector<std::string>{"tenant id", "Id"}));
}

TEST(PostgresTableMapping, AListedColumnThatLeftTheSourceIsAMismatch) {
  SinkBasics sink = Sink();
  sink.tables = {
      SinkTableConfig{.source = "public.Weird \"Name\"", .columns = {"Id", "tenant id", "gone"}}};
  auto m = ResolveMapping(sink, kOptions, &kWeirdTable, Weird());
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().kind, ErrorKind::kMismatch);
  EXPECT_TRUE(Has(m.error().message, "\"gone\"")) << m.error().message;
}

TEST(PostgresTableMapping, SubsetRenameAndUnmappedTables) {
  SinkBasics sink = Sink({"7"});
  sink.tables = {SinkTableConfig{.source = "public.Weird \"Name\"",
                                 .target_schema = "tenant",
                                 .target = "w",
                                 .columns = {"Id", "tenant id"},
                                 .rename = {{"tenant id", "org"}}}};
  TableMapping m = Resolve(sink);
  EXPECT_EQ(m.target_schema, "tenant");
  ASSERT_EQ(m.columns.size(), 2u);
  EXPECT_EQ(m.columns[1].target_name, "org");
  EXPECT_EQ(m.tenant_target, "org") << "the tenant column is found through the rename";
  EXPECT_EQ(m.staged, (std::vector<size_t>{0, 1})) << "only what the mapping needs is staged";

  TableSchema other = Weird();
  other.table_name = "other";
  auto none = ResolveMapping(sink, kOptions, nullptr, other);
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none.value().has_value());
}

Error ServerError(const std::string& sqlstate) {
  return MakeError(ErrorKind::kProtocol,
                   "upserting rows: ERROR: something (SQLSTATE " + sqlstate + ")");
}

TEST(PostgresTargetErrors, SqlStateDecidesWhetherTheSinkRetriesOrStops) {
  EXPECT_EQ(SqlStateOf(ServerError("23505")), "23505");
  EXPECT_EQ(SqlStateOf(MakeError(ErrorKind::kConnection, "server closed the connection")), "");
  const std::string context = "sink s: table public.t -> public.t";
  EXPECT_EQ(TargetError(ServerError("08006"), context).kind, ErrorKind::kConnection);
  EXPECT_EQ(TargetError(ServerError("57P01"), context).kind, ErrorKind::kConnection);
  EXPECT_EQ(TargetError(ServerError("53300"), context).kind, ErrorKind::kConnection);
  for (const char* transient : {"40001", "40P01", "55P03", "57014", "53100", "XX000"}) {
    EXPECT_EQ(TargetError(ServerError(transient), context).kind, ErrorKind::kSink) << transient;
  }
  for (const char* data :
       {"22001", "22P02", "23505", "23502", "42703", "42P10", "0A000", "21000"}) {
    EXPECT_EQ(TargetError(ServerError(data), context).kind, ErrorKind::kMismatch) << data;
  }
  Error e = TargetError(ServerError("23505"), context);
  EXPECT_EQ(e.message, context + ": upserting rows: ERROR: something (SQLSTATE 23505)");
  Error lost = TargetError(MakeError(ErrorKind::kConnection, "gone"), context);
  EXPECT_EQ(lost.kind, ErrorKind::kConnection);
}

}  // namespace
}  // namespace pgfanout
