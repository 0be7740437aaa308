// /status at scale: one sink by id, sinks by state, pages, the counts by state and the
// sinks furthest behind; a query it does not understand is refused with the key named.
#include "src/daemon/status_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace pgfanout {
namespace {

using nlohmann::json;

class StatusReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 250; ++i) {
      SinkRunner::Status st{.sink_id = "t" + std::to_string(i)};
      if (i % 50 == 7) st.stopped = true, st.last_error = "bad row";
      if (i % 50 == 8) st.last_error = "connection refused";
      if (i % 50 == 9) st.waiting_for = "waiting for a target connection";
      sinks_.push_back(st);
      monitor_.sinks.push_back(SinkLag{.id = st.sink_id,
                                       .events_behind = static_cast<uint64_t>(i % 3),
                                       .seconds_behind = static_cast<double>(i % 3 ? i : 0)});
    }
  }
  json Status(std::string_view query) {
    auto q = ParseStatusQuery(query);
    EXPECT_TRUE(q.has_value()) << q.error().message;
    return json::parse(
        StatusJson(config_, source_, monitor_, sinks_, q ? q.value() : StatusQuery{}));
  }
  static std::vector<std::string> Ids(const json& status) {
    std::vector<std::string> ids;
    for (const auto& s : status["sinks"]) ids.push_back(s["id"]);
    return ids;
  }

  Config config_;
  SourceState source_;
  MonitorSnapshot monitor_;
  std::vector<SinkRunner::Status> sinks_;
};

TEST_F(StatusReportTest, OneSinkByItsId) {
  auto j = Status("sink=t42");
  EXPECT_EQ(Ids(j), std::vector<std::string>{"t42"});
  EXPECT_EQ(j["sinks_matching"], 1);
  EXPECT_EQ(Ids(Status("sink=t%34%32")), std::vector<std::string>{"t42"}) << "percent-decoded";
  EXPECT_TRUE(Ids(Status("sink=nope")).empty());
}

TEST_F(StatusReportTest, ASinkShowsItsType) {
  config_.sinks.push_back(
      SinkConfig{.id = "t42", .tenants = {"7"}, .options = PostgresSinkOptions{.dsn = "host=t7"}});
  config_.sinks.push_back(SinkConfig{.id = "t43", .tenants = {"*"}});
  auto j = Status("sink=t42");
  ASSERT_EQ(j["sinks"].size(), 1u);
  EXPECT_EQ(j["sinks"][0]["type"], "postgres");
  EXPECT_EQ(j["sinks"][0]["tenants"], json::array({"7"}));
  EXPECT_EQ(Status("sink=t43")["sinks"][0]["type"], "discard") << "a config without options";
  EXPECT_EQ(Status("sink=t44")["sinks"][0]["type"], "") << "a sink no longer in the config";
}

TEST_F(StatusReportTest, SinksByStateAndTheCountsOfEach) {
  auto j = Status("state=stopped");
  EXPECT_EQ(Ids(j), (std::vector<std::string>{"t7", "t57", "t107", "t157", "t207"}));
  EXPECT_EQ(
      j["sink_states"],
      (json{{"running", 235}, {"waiting", 5}, {"retrying", 5}, {"stopped", 5}, {"paused", 0}}));
  EXPECT_EQ(Ids(Status("state=retrying")).size(), 5u);
  auto waiting = Status("state=waiting");
  EXPECT_EQ(Ids(waiting), (std::vector<std::string>{"t9", "t59", "t109", "t159", "t209"}));
  EXPECT_EQ(waiting["sinks"][0]["waiting_for"], "waiting for a target connection");
  EXPECT_TRUE(Status("sink=t10")["sinks"][0]["waiting_for"].is_null());
}

TEST_F(StatusReportTest, PagesCoverEverySinkOnce) {
  std::vector<std::string> seen;
  for (int page = 1; page <= 3; ++page) {
    auto j = Status("per_page=100&page=" + std::to_string(page));
    EXPECT_EQ(j["sinks_matching"], 250);
    for (auto& id : Ids(j)) seen.push_back(id);
  }
  ASSERT_EQ(seen.size(), 250u);
  EXPECT_EQ(seen.front(), "t0");
  EXPECT_EQ(seen.back(), "t249");
  EXPECT_TRUE(Ids(Status("per_page=100&page=4")).empty());
}

TEST_F(StatusReportTest, TheTwentySinksFurthestBehindAreListedFirstToLast) {
  auto j = Status("");
  ASSERT_EQ(j["furthest_behind"].size(), 20u);
  EXPECT_EQ(j["furthest_behind"][0]["id"], "t248");
  EXPECT_EQ(j["furthest_behind"][1]["id"], "t247");
  EXPECT_EQ(j["furthest_behind"][2]["id"], "t245") << "t246 is caught up";
}

TEST_F(StatusReportTest, AQueryItDoesNotUnderstandIsRefusedNamingTheKey) {
  for (auto [query, key] :
       std::vector<std::pair<std::string, std::string>>{{"state=sleeping", "state"},
                                                        {"page=0", "page"},
                                                        {"per_page=20000", "per_page"},
                                                        {"sinks=t1", "sinks"},
                                                        {"sink=%zz", "sink"}}) {
    auto q = ParseStatusQuery(query);
    ASSERT_FALSE(q.has_value()) << query;
    EXPECT_EQ(q.error().message.rfind("/status: " + key + ":", 0), 0u) << q.error().message;
  }
}

}  // namespace
}  // namespace pgfanout
