#pragma once

#include <fmt/format.h>

#include <string>
#include <tuple>

#include "test/integration/sink_e2e_fixture.h"

namespace pgfanout::testing {

// The shared sink scenarios for the Postgres sink: one target database per tenant group on
// the source's cluster (pg-t1: tenant_1, pg-t23: tenants_23), and one with every tenant
// (pg-all: everyone).
class PostgresE2ETest : public SinkE2ETest {
 protected:
  void SetUp() override {
    SinkE2ETest::SetUp();
    if (HasFatalFailure()) return;
    for (const char* db : {"tenant_1", "tenants_23", "everyone"}) {
      pg_->Exec(std::string("CREATE DATABASE ") + db);
    }
  }

  std::string SinksYaml() override {
    std::string out;
    for (auto [id, db, tenants] : {std::tuple{"pg-t1", "tenant_1", "[\"t1\"]"},
                                   std::tuple{"pg-t23", "tenants_23", "[\"t2\", \"t3\"]"},
                                   std::tuple{"pg-all", "everyone", "[\"*\"]"}}) {
      out += fmt::format(
          "  - id: {}\n    type: postgres\n    tenants: {}\n    dsn: \"{}\"\n"
          "    create_tables: true\n    batch_size: 100\n",
          id, tenants, pg_->Dsn(db));
    }
    return out;
  }

  std::optional<Rows> TargetRows(const std::string& sink_id, const std::string& table,
                                 const std::set<std::string>&) override {
    const std::string db = sink_id == "pg-t1"    ? "tenant_1"
                           : sink_id == "pg-t23" ? "tenants_23"
                                                 : "everyone";
    std::string select;
    for (const auto& c : Columns(table)) select += (select.empty() ? "" : ", ") + c + "::text";
    auto rows = pg_->TryQuery(fmt::format("SELECT {} FROM {}", select, table), db);
    if (!rows) return std::nullopt;
    Rows out;
    for (auto& r : *rows) {
      std::string key = table == "accounts" ? *r[0] + "/" + *r[1] : *r[0];
      out[key] = std::move(r);
    }
    return out;
  }
};

}  // namespace pgfanout::testing
