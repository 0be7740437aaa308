// JetStream replies as the sink reads them: which acks make a batch durable, which errors
// are retried and which stop the sink, and which existing streams it can use.

#include "src/sinks/nats/jetstream.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace pgfanout::nats {
namespace {

using nlohmann::json;

NatsMessage Reply(std::string payload, int status = 0) {
  return NatsMessage{
      .subject = "_INBOX.x.1", .sid = "1", .status = status, .payload = std::move(payload)};
}

TEST(PubAckTest, StoredAndDuplicateAcksAreSuccess) {
  auto ack = ParsePubAck(Reply(R"({"stream":"S1", "seq":41})"));
  ASSERT_TRUE(ack) << ack.error().message;
  EXPECT_EQ(ack.value().stream, "S1");
  EXPECT_EQ(ack.value().seq, 41u);
  EXPECT_FALSE(ack.value().duplicate);
  auto dup = ParsePubAck(Reply(R"({"stream":"S1", "seq":41,"duplicate": true})"));
  ASSERT_TRUE(dup);
  EXPECT_TRUE(dup.value().duplicate);
}

TEST(PubAckTest, NoRespondersIsRetried) {
  auto r = ParsePubAck(Reply("", 503));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kSink);
  EXPECT_NE(r.error().message.find("no responders"), std::string::npos);
}

TEST(PubAckTest, ErrorsThatMayPassAreRetriedOthersStopTheSink) {
  auto unavailable = ParsePubAck(Reply(
      R"({"error":{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}})"));
  ASSERT_FALSE(unavailable);
  EXPECT_EQ(unavailable.error().kind, ErrorKind::kSink);
  EXPECT_NE(unavailable.error().message.find("temporarily unavailable"), std::string::npos);

  auto big = ParsePubAck(Reply(
      R"({"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"},"stream":"S","seq":0})"));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(big.error().message.find("max_msg_size"), std::string::npos);

  auto other = ParsePubAck(Reply(
      R"({"error":{"code":400,"err_code":10060,"description":"expected stream does not match"},"stream":"S1","seq":0})"));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().kind, ErrorKind::kMismatch);
}

TEST(PubAckTest, AReplyThatIsNoAckIsAProtocolError) {
  for (const char* bad : {"", "nope", "[]", R"({"stream":"S"})", R"({"seq":1})",
                          R"({"stream":"S","seq":-1})", R"({"stream":1,"seq":1})"}) {
    auto r = ParsePubAck(Reply(bad));
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kProtocol) << bad;
  }
}

TEST(StreamSubjectsTest, FiltersThatCoverThePrefix) {
  EXPECT_TRUE(FilterCoversPrefix("pgfanout.>", "pgfanout"));
  EXPECT_TRUE(FilterCoversPrefix(">", "pgfanout"));
  EXPECT_TRUE(FilterCoversPrefix("*.>", "pgfanout"));
  EXPECT_TRUE(FilterCoversPrefix("pgfanout.*.*.*", "pgfanout"));
  EXPECT_TRUE(FilterCoversPrefix("pgfanout.*.>", "pgfanout"));
  EXPECT_TRUE(FilterCoversPrefix("cdc.>", "cdc.eu"));
  EXPECT_TRUE(FilterCoversPrefix("cdc.eu.>", "cdc.eu"));
  EXPECT_FALSE(FilterCoversPrefix("pgfanout", "pgfanout"));
  EXPECT_FALSE(FilterCoversPrefix("pgfanout.t1.>", "pgfanout"));  // one tenant only
  EXPECT_FALSE(FilterCoversPrefix("pgfanout.*.*", "pgfanout"));
  EXPECT_FALSE(FilterCoversPrefix("pgfanout.*.*.*.*", "pgfanout"));
  EXPECT_FALSE(FilterCoversPrefix("pgfanout.*.*.*.>", "pgfanout"));
  EXPECT_FALSE(FilterCoversPrefix("other.>", "pgfanout"));
  EXPECT_FALSE(FilterCoversPrefix("cdc.us.>", "cdc.eu"));
  EXPECT_FALSE(FilterCoversPrefix("pgfanoutx.>", "pgfanout"));
}

StreamSettings Settings() {
  return {.sink_id = "nats-all", .name = "PGF", .subject_prefix = "pgf", .replicas = 3};
}

TEST(StreamConfigTest, CreateRequestHasTheDocumentedSettings) {
  auto j = json::parse(StreamCreateRequest(Settings()));
  EXPECT_EQ(j["name"], "PGF");
  EXPECT_EQ(j["subjects"], json::array({"pgf.>"}));
  EXPECT_EQ(j["storage"], "file");
  EXPECT_EQ(j["retention"], "limits");
  EXPECT_EQ(j["num_replicas"], 3);
  EXPECT_EQ(j["duplicate_window"], int64_t{3600} * 1'000'000'000);  // one hour, in ns
  EXPECT_EQ(j["description"].get<std::string>().rfind("pgfanout sink nats-all:", 0), 0u);
}

json Info(json config) {
  return json{{"config", std::move(config)}, {"state", {{"last_seq", 12}}}};
}

TEST(StreamConfigTest, AStreamWithTheSubjectsIsUsed) {
  auto st = CheckStream(Info({{"subjects", {"other.>", "pgf.*.*.*"}}, {"max_msg_size", 4096}}),
                        Settings());
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st.value().max_msg_size, 4096);
  EXPECT_EQ(st.value().last_seq, 12u);
  // Its own description, or one a person wrote, is fine.
  EXPECT_TRUE(
      CheckStream(Info({{"subjects", {"pgf.>"}}, {"description", "orders CDC"}}), Settings()));
  EXPECT_TRUE(CheckStream(
      Info({{"subjects", {"pgf.>"}}, {"description", "pgfanout sink nats-all: change events"}}),
      Settings()));
}

TEST(StreamConfigTest, SubjectsThatMissThePrefixStopTheSinkSayingWhatToDo) {
  auto st = CheckStream(Info({{"subjects", {"pgf.t1.>"}}}), Settings());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(st.error().message.find("pgf.>"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("nats stream edit PGF"), std::string::npos);
}

TEST(StreamConfigTest, StreamsThatCannotAcknowledgeOrBelongToAnotherSinkAreRefused) {
  const json subjects = {"pgf.>"};
  for (const json& bad :
       {json{{"subjects", subjects}, {"no_ack", true}},
        json{{"subjects", subjects}, {"sealed", true}},
        json{{"subjects", subjects}, {"mirror", {{"name", "ORIGIN"}}}},
        json{{"subjects", subjects}, {"description", "pgfanout sink other: change events"}}}) {
    auto st = CheckStream(Info(bad), Settings());
    ASSERT_FALSE(st) << bad.dump();
    EXPECT_EQ(st.error().kind, ErrorKind::kMismatch) << bad.dump();
  }
}

TEST(ApiErrorTest, ReadsTheErrorObject) {
  auto e = ApiErrorOf(json::parse(
      R"({"type":"x","error":{"code":404,"err_code":10059,"description":"stream not found"}})"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, 404);
  EXPECT_EQ(e->err_code, 10059);
  EXPECT_EQ(e->ToString(), "stream not found (404, 10059)");
  EXPECT_FALSE(ApiErrorOf(json::parse(R"({"config":{}})")));
}

}  // namespace
}  // namespace pgfanout::nats
