#include "src/sinks/webhook/response_policy.h"

#include <gtest/gtest.h>

namespace pgfanout::webhook {
namespace {

using namespace std::chrono_literals;

const auto kNow = std::chrono::system_clock::from_time_t(1'700'000'000);

Verdict Judge(unsigned status, std::string body = "",
              std::vector<std::pair<std::string, std::string>> headers = {}) {
  return JudgeResponse({.status = status, .body = std::move(body), .headers = std::move(headers)},
                       "sink s: receiver https://h:443/in", kNow);
}

TEST(JudgeResponseTest, AnyTwoHundredIsAnAcknowledgement) {
  for (unsigned s : {200u, 201u, 202u, 204u, 299u}) EXPECT_TRUE(Judge(s).delivered) << s;
}

TEST(JudgeResponseTest, ServerErrorsTimeoutsAndTooManyRequestsAreRetried) {
  for (unsigned s : {408u, 429u, 500u, 502u, 503u, 504u, 599u}) {
    Verdict v = Judge(s, "busy");
    EXPECT_FALSE(v.delivered) << s;
    EXPECT_EQ(v.error.kind, ErrorKind::kSink) << s << " must be retried";
    EXPECT_NE(v.error.message.find("HTTP " + std::to_string(s)), std::string::npos);
    EXPECT_NE(v.error.message.find("sink s: receiver https://h:443/in"), std::string::npos);
  }
}

TEST(JudgeResponseTest, OtherClientErrorsAndRedirectsStopTheSinkNamingStatusAndBody) {
  for (unsigned s : {400u, 401u, 403u, 404u, 409u, 410u, 413u, 422u, 301u, 302u, 308u}) {
    Verdict v = Judge(s, "{\"error\":\"schema mismatch\"}", {{"Location", "https://new/"}});
    EXPECT_FALSE(v.delivered);
    EXPECT_EQ(v.error.kind, ErrorKind::kMismatch) << s << " must stop the sink";
    EXPECT_NE(v.error.message.find("HTTP " + std::to_string(s)), std::string::npos);
    EXPECT_NE(v.error.message.find("schema mismatch"), std::string::npos) << v.error.message;
  }
  EXPECT_NE(Judge(308, "", {{"Location", "https://new/"}}).error.message.find("https://new/"),
            std::string::npos);
}

TEST(JudgeResponseTest, RetryAfterIsHonouredOnTooManyRequestsAndUnavailableOnly) {
  EXPECT_EQ(Judge(429, "", {{"Retry-After", "7"}}).not_before, kNow + 7s);
  EXPECT_EQ(Judge(503, "", {{"retry-after", "Tue, 14 Nov 2023 22:14:20 GMT"}}).not_before,
            kNow + 1min)
      << "an HTTP date";
  EXPECT_EQ(Judge(429, "", {{"Retry-After", "86400"}}).not_before, kNow + kMaxRetryAfter)
      << "capped";
  EXPECT_FALSE(Judge(500, "", {{"Retry-After", "7"}}).not_before.has_value());
  EXPECT_FALSE(Judge(429, "", {{"Retry-After", "soon"}}).not_before.has_value());
  EXPECT_FALSE(Judge(429).not_before.has_value());
}

TEST(ParseRetryAfterTest, ReadsSecondsAndDatesAndNeverGoesNegative) {
  EXPECT_EQ(ParseRetryAfter(" 120 ", kNow), 120s);
  EXPECT_EQ(ParseRetryAfter("Tue, 14 Nov 2023 22:13:30 GMT", kNow), 10s);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", kNow), 0s);
  EXPECT_FALSE(ParseRetryAfter("", kNow).has_value());
  EXPECT_FALSE(ParseRetryAfter("12x", kNow).has_value());
  EXPECT_FALSE(ParseRetryAfter("-5", kNow).has_value());
}

// A receiver may echo what it was sent: a tenant's rows must not reach the logs and /status
// through the error its answer becomes.
TEST(ScrubbedBodyTest, ShowsShortErrorTextsButNoRowValues) {
  EXPECT_EQ(ScrubbedBody("{\"error\":\"schema mismatch\"}"), "{\"error\":\"schema mismatch\"}");
  EXPECT_EQ(ScrubbedBody("bad row: alice@example.com, ssn 123-45-6789, id 42"),
            "bad row: …@…, ssn #, id 42");
  const std::string echoed = "{\"data\":{\"events\":[{\"new\":{\"name\":\"Ada\"}}]}} " +
                             std::string(200, 'x');
  EXPECT_EQ(ScrubbedBody(echoed), "(" + std::to_string(echoed.size()) + " bytes of body, not shown)");
  EXPECT_EQ(Judge(422, echoed).error.message.find("Ada"), std::string::npos);
}

TEST(BodyExcerptTest, BoundsTheTextAndHidesControlCharacters) {
  const std::string big(10'000, 'x');
  const std::string e = BodyExcerpt(big);
  EXPECT_LE(e.size(), 200u + 3);
  EXPECT_TRUE(e.ends_with("…"));
  EXPECT_EQ(BodyExcerpt("a\r\nb\x01"), "a  b ");
  // Never cut inside a UTF-8 sequence.
  std::string utf(199, 'a');
  utf += "\xc3\xbc\xc3\xbc";
  EXPECT_EQ(BodyExcerpt(utf), std::string(199, 'a') + "…");
  EXPECT_EQ(Judge(500, big).error.message.size() < 400, true);
}

}  // namespace
}  // namespace pgfanout::webhook
