// The webhook sink end to end: the real daemon delivers to a real HTTP receiver on a
// loopback port, whose consumer (webhook_consumer.h) verifies every signature and applies
// the events as a careful consumer would; its state must equal the source's, per tenant.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "test/integration/sink_e2e_fixture.h"
#include "test/integration/webhook/webhook_consumer.h"
#include "test/support/http_client.h"
#include "test/support/http_receiver.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

class WebhookE2ETest : public SinkE2ETest {
 protected:
  void SetUp() override {
    SinkE2ETest::SetUp();
    if (HasFatalFailure()) return;
    secret_file_ = work_dir_ + "/webhook.secret";
    std::ofstream(secret_file_) << kSecret << "\n";
    StartReceiver(false);
  }

  void TearDown() override {
    SinkE2ETest::TearDown();
    receiver_.reset();
  }

  void StartReceiver(bool tls) {
    receiver_ = HttpReceiver::Start(
        {.tls = tls, .on_request = [this](const ReceivedRequest& r) { consumer_.Receive(r); }});
    ASSERT_NE(receiver_, nullptr);
  }

  // One webhook sink delivering to the receiver at /<id>.
  std::string Hook(const std::string& id, const std::string& tenants,
                   const std::string& extra = "    allow_private: true\n",
                   const std::string& url = "") {
    return fmt::format(
        "  - id: {}\n    type: webhook\n    tenants: {}\n    url: {}\n    secret_file: {}\n"
        "    batch_size: 100\n    timeout: 2s\n{}",
        id, tenants, url.empty() ? receiver_->Url("/" + id) : url, secret_file_, extra);
  }

  std::string SinksYaml() override { return sinks_yaml_; }

  std::optional<Rows> TargetRows(const std::string& sink_id, const std::string& table,
                                 const std::set<std::string>& tenants) override {
    return consumer_.Rows("/" + sink_id, table, Columns(table), tenants);
  }

  // What a careful consumer must never have seen at /<id>.
  void ExpectCleanDeliveries(const std::string& id) {
    auto s = consumer_.stats("/" + id);
    EXPECT_GT(s.requests, 0u) << id;
    EXPECT_EQ(s.bad_signatures, 0u) << id << ": " << ::testing::PrintToString(s.problems);
    EXPECT_EQ(s.malformed, 0u) << id << ": " << ::testing::PrintToString(s.problems);
    EXPECT_EQ(s.conflicting_duplicates, 0u) << id << ": " << ::testing::PrintToString(s.problems);
    EXPECT_EQ(s.out_of_order, 0u) << id << ": " << ::testing::PrintToString(s.problems);
    std::cout << id << ": " << s.requests << " acknowledged requests, " << s.events
              << " events applied, " << s.duplicates
              << " raw duplicate deliveries (skipped by event id)\n";
  }

  // The daemon's HTTP address (from its log) and one sink's entry of /status.
  json SinkStatus(const std::string& id) {
    const std::string log = DaemonLog();
    const std::regex re("http: listening on ([0-9.:]+)");
    std::string address;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it) {
      address = (*it)[1];
    }
    if (address.empty()) return nullptr;
    auto reply = HttpGet(address, "/status");
    json status = json::parse(reply.body, nullptr, false);
    if (status.is_discarded()) return nullptr;
    for (const auto& s : status["sinks"]) {
      if (s["id"] == id) return s;
    }
    return nullptr;
  }

  // Polls /status until sink `id` is in `state` with an error containing every one of
  // `words`; returns its entry.
  json WaitForSinkState(const std::string& id, const std::string& state,
                        const std::vector<std::string>& words) {
    json s;
    for (auto deadline = std::chrono::steady_clock::now() + 30s;
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(200ms)) {
      s = SinkStatus(id);
      if (s.is_null() || s["state"] != state || !s["last_error"].is_string()) continue;
      const std::string error = s["last_error"];
      bool all = true;
      for (const auto& w : words) all = all && error.find(w) != std::string::npos;
      if (all) return s;
    }
    ADD_FAILURE() << "sink " << id << " did not reach state " << state << " with "
                  << ::testing::PrintToString(words) << "; last /status entry: " << s.dump();
    return s;
  }

  std::string secret_file_;
  std::string sinks_yaml_;
  WebhookConsumer consumer_{kSecret};  // outlives the receiver, which calls it
  std::unique_ptr<HttpReceiver> receiver_;
};

// Every request is one batch: webhook-id is its first event's id and its event count.
void ExpectBatchIds(const std::vector<ReceivedRequest>& requests) {
  const std::regex id_re("[0-9A-F]+/[0-9A-F]+#[0-9]+\\+[0-9]+");
  for (const auto& r : requests) {
    EXPECT_EQ(r.Header("content-type"), "application/json");
    const std::string id = r.Header("webhook-id");
    ASSERT_TRUE(std::regex_match(id, id_re)) << id;
    json b = json::parse(r.body);
    const json& events = b.is_array() ? b : b["data"]["events"];
    ASSERT_FALSE(events.empty());
    const json& first = events[0];
    const std::string first_id =
        first.contains("source") ? first["source"]["event_id"] : first["id"];
    EXPECT_EQ(id, first_id + "+" + std::to_string(events.size()));
  }
}

TEST_F(WebhookE2ETest, MixedWorkloadReachesEachReceiverAsTheSourceHasIt) {
  sinks_yaml_ = Hook("hook-t1", "[\"t1\"]") + Hook("hook-t23", "[\"t2\", \"t3\"]") +
                Hook("hook-all", "[\"*\"]") +
                Hook("hook-dbz", "[\"*\"]", "    allow_private: true\n    envelope: debezium\n");
  StartDaemon();
  for (int round = 1; round <= 3; ++round) Workload(round);
  ExpectSinkEqualsSource("hook-t1", {"t1"});
  ExpectSinkEqualsSource("hook-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("hook-all", {});
  ExpectSinkEqualsSource("hook-dbz", {});
  // A TRUNCATE reaches every sink; the per-tenant ones are told it is for their tenants.
  pg_->Exec("TRUNCATE events");
  ExpectSinkEqualsSource("hook-t1", {"t1"});
  ExpectSinkEqualsSource("hook-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("hook-all", {});
  ExpectSinkEqualsSource("hook-dbz", {});
  StopDaemon();

  for (const char* id : {"hook-t1", "hook-t23", "hook-all", "hook-dbz"}) {
    ExpectCleanDeliveries(id);
    ExpectBatchIds(receiver_->Requests(std::string("/") + id));
  }
  // Tenant isolation: a tenant's endpoint sees its own rows only.
  for (const auto& r : receiver_->Requests("/hook-t1")) {
    // The parsed body is held by name: a range-for over a member of a temporary reads
    // freed memory (the temporary dies before the loop runs).
    const json body = json::parse(r.body);
    for (const auto& e : body.at("data").at("events")) {
      if (e["op"] == "truncate") {
        EXPECT_EQ(e["only_tenants"], json::parse(R"(["t1"])"));
      } else {
        EXPECT_EQ(e["tenant"], "t1") << e.dump();
      }
    }
  }
  // Debezium's envelope, field for field.
  auto dbz = receiver_->Requests("/hook-dbz");
  ASSERT_FALSE(dbz.empty());
  const json events = json::parse(dbz.front().body);
  ASSERT_TRUE(events.is_array());
  std::set<std::string> ops;
  for (const auto& r : dbz) {
    for (const auto& e : json::parse(r.body)) {
      std::set<std::string> keys;
      for (const auto& [k, _] : e.items()) keys.insert(k);
      EXPECT_EQ(keys,
                (std::set<std::string>{"before", "after", "source", "op", "ts_ms", "transaction"}));
      const json& s = e["source"];
      EXPECT_EQ(s["connector"], "pgfanout");
      EXPECT_EQ(s["name"], "hook-dbz");
      EXPECT_EQ(s["schema"], "public");
      EXPECT_TRUE(s["table"] == "accounts" || s["table"] == "events") << s.dump();
      EXPECT_TRUE(s["lsn"].is_number_unsigned() && s["txId"].is_number() &&
                  s["ts_ms"].is_number() && s["version"].is_string() && s.contains("db"))
          << s.dump();
      ops.insert(e["op"].get<std::string>());
    }
  }
  EXPECT_EQ(ops, (std::set<std::string>{"c", "u", "d", "t"}));
}

TEST_F(WebhookE2ETest, KillNineLoopLosesNothingAndDuplicatesHaveNoEffect) {
  sinks_yaml_ = Hook("hook-t1", "[\"t1\"]") + Hook("hook-t23", "[\"t2\", \"t3\"]") +
                Hook("hook-all", "[\"*\"]");
  StartDaemon();
  Workload(1);
  KillLoop(8, {{"hook-t1", {"t1"}}, {"hook-t23", {"t2", "t3"}}, {"hook-all", {}}});
  // One crash for certain between the receiver's acknowledgement and the cursor: the batch
  // comes again, with the same event ids, and changes nothing.
  KillDaemon();
  const size_t before = consumer_.stats("/hook-all").duplicates;
  ASSERT_TRUE(daemon_.Start({"run", "--config", config_path_}, log_path_,
                            {{"PGFANOUT_FAILPOINTS", "sink.after_write=kill"}}));
  Workload(2);
  daemon_.Wait(60s);
  EXPECT_FALSE(daemon_.running()) << "the failpoint did not kill pgfanout";
  StartDaemon(/*wait=*/false);
  ExpectSinkEqualsSource("hook-t1", {"t1"});
  ExpectSinkEqualsSource("hook-t23", {"t2", "t3"});
  ExpectSinkEqualsSource("hook-all", {});
  StopDaemon();
  size_t duplicates = 0;
  for (const char* id : {"hook-t1", "hook-t23", "hook-all"}) {
    ExpectCleanDeliveries(id);
    duplicates += consumer_.stats(std::string("/") + id).duplicates;
  }
  EXPECT_GT(duplicates, before) << "the crash after an acknowledgement re-delivers";
}

TEST_F(WebhookE2ETest, RetriesServerErrorsTimeoutsAndRateLimitsWithTheSameRequest) {
  // A 1 s timeout, the default batch_size and batches of up to 64MB (one batch per insert
  // below, the 10 MB one included).
  sinks_yaml_ = fmt::format(
      "  - id: hook-all\n    type: webhook\n    tenants: [\"*\"]\n    url: {}\n"
      "    secret_file: {}\n    allow_private: true\n    timeout: 1s\n    batch_bytes: 64MB\n",
      receiver_->Url("/hook-all"), secret_file_);
  StartDaemon();
  auto insert = [&](int from, int n) {
    pg_->Exec(
        fmt::format("INSERT INTO events SELECT i, 't1', 'r', NULL FROM "
                    "generate_series({}, {}) i",
                    from, from + n - 1));
  };
  // 500 three times, then 200: four requests, one webhook-id, one body.
  receiver_->AnswerNext(3, {.status = 500, .body = "try later"}, "/hook-all");
  insert(1, 10);
  ExpectSinkEqualsSource("hook-all", {}, 60s);
  auto r = receiver_->Requests("/hook-all");
  ASSERT_EQ(r.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(r[i].answered, i < 3 ? 500u : 200u);
    EXPECT_EQ(r[i].Header("webhook-id"), r[0].Header("webhook-id"));
    EXPECT_EQ(r[i].body, r[0].body) << "a retry is the same request";
    EXPECT_EQ(WebhookConsumer::Verify(kSecret, r[i]), "");
  }
  EXPECT_NE(DaemonLog().find("answered HTTP 500"), std::string::npos);

  // An answer slower than the timeout: the receiver applied it, the sink sends it again
  // with the same id, and the consumer skips the duplicates.
  receiver_->AnswerNext(1, {.status = 200, .delay = 2500ms}, "/hook-all");
  insert(100, 5);
  ExpectSinkEqualsSource("hook-all", {}, 60s);  // applied on arrival, answered late
  ASSERT_TRUE(receiver_->WaitFor(6, 30s, "/hook-all")) << "the timed-out request is sent again";
  r = receiver_->Requests("/hook-all");
  ASSERT_GE(r.size(), 6u);
  EXPECT_EQ(r[4].Header("webhook-id"), r[5].Header("webhook-id"));
  EXPECT_GE(consumer_.stats("/hook-all").duplicates, 5u);
  EXPECT_NE(DaemonLog().find("timed out"), std::string::npos);

  // 429 with Retry-After: nothing is sent before it has passed.
  const size_t seen = r.size();
  receiver_->AnswerNext(1, {.status = 429, .headers = {{"Retry-After", "3"}}}, "/hook-all");
  insert(200, 5);
  ExpectSinkEqualsSource("hook-all", {}, 60s);
  r = receiver_->Requests("/hook-all");
  ASSERT_EQ(r.size(), seen + 2) << "one refused, one accepted: no request in between";
  EXPECT_EQ(r[seen].answered, 429u);
  EXPECT_EQ(r[seen].Header("webhook-id"), r[seen + 1].Header("webhook-id"));
  EXPECT_GE(r[seen + 1].at - r[seen].at, 2900ms) << "Retry-After: 3 was not honoured";

  // A batch over 8 MiB goes as several requests. When a later one fails, the retry sends
  // only that one again, with the same id and body.
  const size_t before_big = r.size();
  const size_t duplicates = consumer_.stats("/hook-all").duplicates;
  receiver_->AnswerNext(1, {.status = 200}, "/hook-all");
  receiver_->AnswerNext(1, {.status = 503, .body = "overloaded"}, "/hook-all");
  pg_->Exec(
      "INSERT INTO events SELECT i, 't2', (SELECT string_agg(md5(random()::text), '') "
      "FROM generate_series(1, 3200)), NULL FROM generate_series(300, 399) i");
  ExpectSinkEqualsSource("hook-all", {}, 60s);
  r = receiver_->Requests("/hook-all");
  ASSERT_EQ(r.size(), before_big + 3);
  const auto& first = r[before_big];
  const auto& second = r[before_big + 1];
  const auto& again = r[before_big + 2];
  EXPECT_EQ(first.answered, 200u);
  EXPECT_EQ(second.answered, 503u);
  EXPECT_NE(first.Header("webhook-id"), second.Header("webhook-id"));
  EXPECT_EQ(again.Header("webhook-id"), second.Header("webhook-id"));
  EXPECT_EQ(again.body, second.body);
  for (const auto* q : {&first, &second}) {
    EXPECT_LE(q->body.size(), size_t{8} << 20);
    EXPECT_GT(q->body.size(), size_t{100} << 10);
  }
  ExpectBatchIds({first, second});
  EXPECT_EQ(consumer_.stats("/hook-all").duplicates, duplicates)
      << "the acknowledged request was not sent again";
  StopDaemon();
  ExpectCleanDeliveries("hook-all");
}

TEST_F(WebhookE2ETest, ARefusalOrAPrivateAddressStopsOnlyThatSink) {
  receiver_->AnswerNext(1000, {.status = 400, .body = "unknown field \"tenant\""}, "/hook-t1");
  sinks_yaml_ = Hook("hook-t1", "[\"t1\"]") + Hook("hook-all", "[\"*\"]") +
                Hook("hook-guarded", "[\"*\"]", "");
  StartDaemon();
  Workload(1);
  ExpectSinkEqualsSource("hook-all", {});
  json t1 = WaitForSinkState("hook-t1", "stopped", {"HTTP 400", "unknown field"});
  EXPECT_EQ(receiver_->Count("/hook-t1"), 1u) << "a 400 is not retried";
  json guarded = WaitForSinkState("hook-guarded", "stopped",
                                  {"refused to connect to 127.0.0.1", "loopback", "allow_private"});
  EXPECT_EQ(receiver_->Count("/hook-guarded"), 0u) << "the guard refuses before connecting";
  EXPECT_EQ(SinkStatus("hook-all")["state"], "running");
  // The healthy sink goes on.
  Workload(2);
  ExpectSinkEqualsSource("hook-all", {});
  StopDaemon();
  ExpectCleanDeliveries("hook-all");
  const std::string log = DaemonLog();
  EXPECT_EQ(log.find("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), std::string::npos)
      << "the secret is never logged";
}

TEST_F(WebhookE2ETest, HttpsVerifiesTheReceiverAgainstCaFileAndItsHostName) {
  StartReceiver(/*tls=*/true);
  const std::string ca = "    allow_private: true\n    ca_file: " + receiver_->ca_file() + "\n";
  const std::string wrong_name =
      "https://127.0.0.1:" + std::to_string(receiver_->port()) + "/hook-wrong-name";
  sinks_yaml_ = Hook("hook-tls", "[\"*\"]", ca) +
                Hook("hook-wrong-name", "[\"*\"]", ca, wrong_name) +
                Hook("hook-untrusted", "[\"*\"]");
  StartDaemon();
  Workload(1);
  ExpectSinkEqualsSource("hook-tls", {});
  WaitForSinkState("hook-wrong-name", "retrying", {"TLS handshake"});
  WaitForSinkState("hook-untrusted", "retrying", {"TLS handshake"});
  StopDaemon();
  ExpectCleanDeliveries("hook-tls");
  EXPECT_EQ(receiver_->Count("/hook-wrong-name"), 0u);
  EXPECT_EQ(receiver_->Count("/hook-untrusted"), 0u);
}

}  // namespace
}  // namespace pgfanout::testing
