#include "src/pipeline/router.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pgfanout {
namespace {

// Tables have columns (id, tenant_id, name); `tenant_key`: tenant_id is in the key.
std::shared_ptr<const TableSchema> Table(std::string schema, std::string name,
                                         bool tenant_key = false) {
  return std::make_shared<const TableSchema>(
      TableSchema{.relation_id = RelationId{16384},
                  .schema_name = std::move(schema),
                  .table_name = std::move(name),
                  .columns = {{.name = "id", .type_oid = 23, .part_of_key = true},
                              {.name = "tenant_id", .type_oid = 25, .part_of_key = tenant_key},
                              {.name = "name", .type_oid = 25}}});
}

Datum T(std::string text) { return Datum{ValueKind::kText, std::move(text)}; }

// users and billing.users have a tenant column; teams has none.
const std::vector<TableConfig> kTables = {
    {.schema = "public", .name = "users", .tenant_column = "tenant_id"},
    {.schema = "billing", .name = "users", .tenant_column = "tenant_id"},
    {.schema = "public", .name = "teams"},
};

// A sink entry as ParseConfig produces it: table sources are qualified.
SinkConfig Sink(std::vector<std::string> tenants, std::vector<std::string> tables = {}) {
  SinkConfig sink{
      .id = "s", .tenants = std::move(tenants), .options = JsonlSinkOptions{.path = "s.jsonl"}};
  for (auto& t : tables) sink.tables.push_back({.source = t, .target = t});
  return sink;
}

class RouterTest : public ::testing::Test {
 protected:
  ChangeEvent On(const std::shared_ptr<const TableSchema>& table, std::optional<std::string> tenant,
                 Op op = Op::kInsert) const {
    return ChangeEvent{.op = op, .table = table, .tenant = std::move(tenant)};
  }

  std::shared_ptr<const TableSchema> users_ = Table("public", "users");
  std::shared_ptr<const TableSchema> teams_ = Table("public", "teams");
  std::shared_ptr<const TableSchema> billing_users_ = Table("billing", "users");
};

TEST_F(RouterTest, TenantSinkAcceptsOnlyItsTenants) {
  Router router(Sink({"7", "9"}), kTables);
  EXPECT_TRUE(router.Accepts(On(users_, "7")));
  EXPECT_TRUE(router.Accepts(On(users_, "9")));
  EXPECT_FALSE(router.Accepts(On(users_, "8")));
  EXPECT_FALSE(router.Accepts(On(users_, "70"))) << "tenant values match whole, not by prefix";
  EXPECT_FALSE(router.Accepts(On(users_, "")));
  EXPECT_FALSE(router.Accepts(On(users_, "*"))) << "a tenant named * is not a wildcard";
}

TEST_F(RouterTest, TenantSinkRejectsEventsWithoutTenant) {
  Router router(Sink({"7"}), kTables);
  EXPECT_FALSE(router.Accepts(On(teams_, std::nullopt))) << "a table with no tenant column";
  EXPECT_FALSE(router.Accepts(On(teams_, std::nullopt, Op::kTruncate)))
      << "a truncate of a table without tenants removes everyone's rows: not for one tenant";
}

TEST_F(RouterTest, TruncateOfTenantTableReachesTenantSinkToScopeIt) {
  // The sink turns it into "delete my tenants' rows" (sink.h); it must not miss it.
  Router router(Sink({"7"}), kTables);
  ChangeEvent ev = On(users_, std::nullopt, Op::kTruncate);
  EXPECT_TRUE(router.Route(ev));
  EXPECT_EQ(ev.op, Op::kTruncate);
}

class MoveTest : public RouterTest {
 protected:
  // UPDATE users SET tenant_id = `to` WHERE id = 1 (and tenant_id = `from`), as pgoutput
  // sends it with tenant_id in the key: old key tuple (id, tenant_id), new full row.
  ChangeEvent Move(const std::string& from, const std::string& to) const {
    return ChangeEvent{.op = Op::kUpdate,
                       .table = keyed_,
                       .tenant = to,
                       .new_row = {T("1"), T(to), T("ada")},
                       .old_row = {T("1"), T(from), Datum{}},
                       .old_is_key_only = true};
  }
  std::shared_ptr<const TableSchema> keyed_ = Table("public", "users", /*tenant_key=*/true);
};

TEST_F(MoveTest, OldTenantsSinkGetsDeleteByOldKey) {
  Router router(Sink({"7"}), kTables);
  ChangeEvent ev = Move("7", "9");
  ASSERT_TRUE(router.Route(ev));
  EXPECT_EQ(ev.op, Op::kDelete);
  EXPECT_EQ(ev.tenant, "7");
  EXPECT_TRUE(ev.new_row.empty());
  EXPECT_EQ(ev.old_row[1], T("7"));
}

TEST_F(MoveTest, NewTenantsSinkGetsInsertOfNewRow) {
  Router router(Sink({"9"}), kTables);
  ChangeEvent ev = Move("7", "9");
  ASSERT_TRUE(router.Route(ev));
  EXPECT_EQ(ev.op, Op::kInsert);
  EXPECT_EQ(ev.tenant, "9");
  EXPECT_EQ(ev.new_row, (std::vector<Datum>{T("1"), T("9"), T("ada")}));
  EXPECT_TRUE(ev.old_row.empty());
}

TEST_F(MoveTest, SinkServingBothOrAllGetsTheUpdate) {
  for (auto tenants : {std::vector<std::string>{"7", "9"}, std::vector<std::string>{"*"}}) {
    Router router(Sink(tenants), kTables);
    ChangeEvent ev = Move("7", "9");
    ASSERT_TRUE(router.Route(ev));
    EXPECT_EQ(ev.op, Op::kUpdate);
    EXPECT_EQ(ev.old_row[1], T("7")) << "the old key stays: the sink deletes the old row";
  }
}

TEST_F(MoveTest, OtherTenantsSinkGetsNothing) {
  Router router(Sink({"8"}), kTables);
  ChangeEvent ev = Move("7", "9");
  EXPECT_FALSE(router.Route(ev));
}

TEST_F(MoveTest, InsertTakesUnchangedToastFromFullOldRow) {
  Router router(Sink({"9"}), kTables);
  ChangeEvent ev{.op = Op::kUpdate,
                 .table = users_,  // REPLICA IDENTITY FULL: old row complete
                 .tenant = "9",
                 .new_row = {T("1"), T("9"), Datum{ValueKind::kUnchangedToast, ""}},
                 .old_row = {T("1"), T("7"), T(std::string(5000, 'x'))}};
  ASSERT_TRUE(router.Route(ev));
  EXPECT_EQ(ev.op, Op::kInsert);
  EXPECT_EQ(ev.new_row[2], T(std::string(5000, 'x')));
}

TEST_F(MoveTest, UpdateWithoutTenantChangeIsRoutedByTenant) {
  Router router(Sink({"7"}), kTables);
  ChangeEvent same = Move("7", "7");
  ASSERT_TRUE(router.Route(same));
  EXPECT_EQ(same.op, Op::kUpdate);
  ChangeEvent no_old{
      .op = Op::kUpdate, .table = users_, .tenant = "7", .new_row = {T("1"), T("7"), T("b")}};
  ASSERT_TRUE(router.Route(no_old));
  EXPECT_EQ(no_old.op, Op::kUpdate);
}

TEST_F(RouterTest, AllTenantsSinkAcceptsEventsWithAndWithoutTenant) {
  Router router(Sink({"*"}), kTables);
  EXPECT_TRUE(router.Accepts(On(users_, "7")));
  EXPECT_TRUE(router.Accepts(On(users_, "123456")));
  EXPECT_TRUE(router.Accepts(On(teams_, std::nullopt)));
  EXPECT_TRUE(router.Accepts(On(users_, std::nullopt, Op::kTruncate)));
}

TEST_F(RouterTest, TableFilterKeepsListedTablesOnly) {
  Router router(Sink({"*"}, {"public.users"}), kTables);
  EXPECT_TRUE(router.Accepts(On(users_, "7")));
  EXPECT_TRUE(router.Accepts(On(users_, std::nullopt, Op::kTruncate)));
  EXPECT_FALSE(router.Accepts(On(teams_, "7")));
  EXPECT_FALSE(router.Accepts(On(billing_users_, "7"))) << "same name, other schema";
}

TEST_F(RouterTest, NoTableFilterAcceptsEveryTable) {
  Router router(Sink({"7"}), kTables);
  EXPECT_TRUE(router.Accepts(On(users_, "7")));
  EXPECT_TRUE(router.Accepts(On(teams_, "7")));
  EXPECT_TRUE(router.Accepts(On(billing_users_, "7")));
}

TEST_F(RouterTest, TenantAndTableFiltersBothApply) {
  Router router(Sink({"7"}, {"public.users", "billing.users"}), kTables);
  EXPECT_TRUE(router.Accepts(On(users_, "7")));
  EXPECT_TRUE(router.Accepts(On(billing_users_, "7")));
  EXPECT_FALSE(router.Accepts(On(users_, "9")));
  EXPECT_FALSE(router.Accepts(On(teams_, "7")));
}

// The header-only filter never refuses what Route() would take: compared over every
// kind of event the router tests use.
TEST_F(RouterTest, MayAcceptIsFalseOnlyWhereAcceptsIsFalse) {
  auto users_tenant_key = Table("public", "users", /*tenant_key=*/true);
  std::vector<ChangeEvent> events;
  for (const auto& table : {users_, teams_, billing_users_, users_tenant_key}) {
    for (Op op : {Op::kInsert, Op::kUpdate, Op::kDelete, Op::kTruncate}) {
      for (std::optional<std::string> tenant : {std::optional<std::string>("7"),
                                                std::optional<std::string>("8"), std::optional<std::string>()}) {
        ChangeEvent e = On(table, op == Op::kTruncate ? std::nullopt : tenant, op);
        if (op != Op::kTruncate && op != Op::kDelete) e.new_row = {T("1"), T(tenant.value_or("")), T("n")};
        events.push_back(e);
        if (op == Op::kUpdate) {  // a move: the old row names another tenant
          e.old_row = {T("1"), T(tenant == "7" ? "8" : "7"), T("n")};
          events.push_back(e);
          ChangeEvent named = e;  // as the assembler writes a move: the old tenant named
          named.old_tenant = e.old_row[1].text;
          events.push_back(named);
          e.old_is_key_only = true;
          events.push_back(e);
        }
      }
    }
  }
  size_t refused = 0;
  for (const auto& sink : {Sink({"7"}), Sink({"*"}), Sink({"7"}, {"public.users"}),
                           Sink({"8", "9"}, {"billing.users"})}) {
    Router router(sink, kTables);
    for (const auto& e : events) {
      EventLog::EventPeek peek{.op = e.op,
                               .table = e.table.get(),
                               .tenant = e.tenant ? std::optional<std::string_view>(*e.tenant)
                                                  : std::nullopt,
                               .old_tenant = e.old_tenant,
                               .has_old_row = !e.old_row.empty()};
      if (!router.MayAccept(peek)) {
        ++refused;
        EXPECT_FALSE(router.Accepts(e)) << "refused by its header, but Route() takes it: op "
                                        << static_cast<char>(e.op) << " table "
                                        << e.table->QualifiedName() << " tenant "
                                        << e.tenant.value_or("(none)");
      }
    }
  }
  EXPECT_GT(refused, events.size()) << "the filter refuses something, or it saves nothing";
}

// A "*" sink of public.users whose where is `name <> 'archived'`.
class RouterWhereTest : public RouterTest {
 protected:
  Router Where(std::string where = "name <> 'archived'") const {
    SinkConfig sink = Sink({"*"});
    sink.tables.push_back({.source = "public.users", .target = "users", .where = std::move(where)});
    return Router(sink, kTables);
  }
  ChangeEvent Event(Op op, std::vector<Datum> new_row, std::vector<Datum> old_row = {},
                    bool key_only = false) const {
    ChangeEvent e = On(users_, "7", op);
    e.new_row = std::move(new_row);
    e.old_row = std::move(old_row);
    e.old_is_key_only = key_only;
    return e;
  }
};

TEST_F(RouterWhereTest, InsertsAndDeletesOutsideTheWhereAreDropped) {
  Router router = Where();
  auto in = Event(Op::kInsert, {T("1"), T("7"), T("kept")});
  auto out = Event(Op::kInsert, {T("2"), T("7"), T("archived")});
  EXPECT_EQ(router.ApplyWhere(in).value(), true);
  EXPECT_EQ(router.ApplyWhere(out).value(), false);
  // A delete with a full old row is judged by it; a key-only one cannot be: kept.
  auto gone = Event(Op::kDelete, {}, {T("2"), T("7"), T("archived")});
  EXPECT_EQ(router.ApplyWhere(gone).value(), false);
  auto by_key = Event(Op::kDelete, {}, {T("2"), Datum{}, Datum{}}, /*key_only=*/true);
  EXPECT_EQ(router.ApplyWhere(by_key).value(), true);
  // Other tables, and truncates, pass.
  auto team = On(teams_, std::nullopt);
  team.new_row = {T("1"), Datum{}, T("archived")};
  EXPECT_EQ(router.ApplyWhere(team).value(), true);
  auto truncate = On(users_, std::nullopt, Op::kTruncate);
  EXPECT_EQ(router.ApplyWhere(truncate).value(), true);
}

TEST_F(RouterWhereTest, AnUpdateThatLeavesTheWhereBecomesADeleteByTheKey) {
  Router router = Where();
  // No old row (the key did not change, identity DEFAULT): it may have matched before.
  auto update = Event(Op::kUpdate, {T("1"), T("7"), T("archived")});
  ASSERT_EQ(router.ApplyWhere(update).value(), true);
  EXPECT_EQ(update.op, Op::kDelete);
  EXPECT_TRUE(update.new_row.empty());
  EXPECT_TRUE(update.old_is_key_only);
  EXPECT_EQ(update.old_row, (std::vector<Datum>{T("1"), Datum{}, Datum{}}));
  // A full old row that did not match either: nothing for this sink.
  auto both_out =
      Event(Op::kUpdate, {T("1"), T("7"), T("archived")}, {T("1"), T("7"), T("archived")});
  EXPECT_EQ(router.ApplyWhere(both_out).value(), false);
}

TEST_F(RouterWhereTest, AnUpdateThatEntersTheWhereBecomesAnInsert) {
  Router router = Where();
  auto update = Event(Op::kUpdate, {T("1"), T("7"), T("back")}, {T("1"), T("7"), T("archived")});
  ASSERT_EQ(router.ApplyWhere(update).value(), true);
  EXPECT_EQ(update.op, Op::kInsert);
  EXPECT_TRUE(update.old_row.empty());
  // Old row unknown: an update (row sinks upsert it), or an insert when values are unsent,
  // so the fetcher completes them.
  auto plain = Event(Op::kUpdate, {T("1"), T("7"), T("back")});
  ASSERT_EQ(router.ApplyWhere(plain).value(), true);
  EXPECT_EQ(plain.op, Op::kUpdate);
  Router by_id = Where("id > 0");
  auto unsent = Event(Op::kUpdate, {T("1"), T("7"), Datum{ValueKind::kUnchangedToast, {}}});
  ASSERT_EQ(by_id.ApplyWhere(unsent).value(), true);
  EXPECT_EQ(unsent.op, Op::kInsert);
  // Matching before and after: an update, untouched.
  auto stays = Event(Op::kUpdate, {T("1"), T("7"), T("b")}, {T("1"), T("7"), T("a")});
  ASSERT_EQ(router.ApplyWhere(stays).value(), true);
  EXPECT_EQ(stays.op, Op::kUpdate);
  EXPECT_FALSE(stays.old_row.empty());
}

TEST_F(RouterWhereTest, AnUnsentValueItReadsIsTakenFromAFullOldRowOrLeftAlone) {
  Router router = Where();
  const Datum unsent{ValueKind::kUnchangedToast, {}};
  auto full = Event(Op::kUpdate, {T("1"), T("7"), unsent}, {T("1"), T("7"), T("archived")});
  EXPECT_EQ(router.ApplyWhere(full).value(), false) << "archived before and after";
  auto unknown = Event(Op::kUpdate, {T("1"), T("7"), unsent});
  ASSERT_EQ(router.ApplyWhere(unknown).value(), true);
  EXPECT_EQ(unknown.op, Op::kUpdate);
}

TEST_F(RouterWhereTest, AWhereThatDoesNotFitTheTableIsAnError) {
  Router router = Where("missing = 1");
  auto e = Event(Op::kInsert, {T("1"), T("7"), T("x")});
  auto r = router.ApplyWhere(e);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("table public.users: where: no column missing"),
            std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace pgfanout
