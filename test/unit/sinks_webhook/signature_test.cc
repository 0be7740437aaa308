#include "src/sinks/webhook/signature.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include "test/support/temp_dir.h"

namespace pgfanout::webhook {
namespace {

// The test vector the Standard Webhooks specification publishes (and its libraries test
// against): matching it means any of those libraries verifies pgfanout's deliveries.
TEST(WebhookSignerTest, MatchesTheStandardWebhooksTestVector) {
  auto signer = WebhookSigner::Create("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(signer.has_value()) << signer.error().message;
  auto sig =
      signer.value().Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})");
  ASSERT_TRUE(sig.has_value());
  EXPECT_EQ(sig.value(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // The libraries take the secret without its prefix too.
  EXPECT_EQ(WebhookSigner::Create("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .value()
                .Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})")
                .value(),
            sig.value());
}

std::string Shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// A second, independent computation: the openssl command line over the same content, for
// a pgfanout-shaped id and a body with bytes JSON escapes and non-ASCII text.
TEST(WebhookSignerTest, AgreesWithTheOpensslCommandLine) {
  testing::TempDir dir("webhook-sig");
  const std::string key_hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  std::string key;
  for (size_t i = 0; i < key_hex.size(); i += 2) {
    key.push_back(static_cast<char>(std::stoi(key_hex.substr(i, 2), nullptr, 16)));
  }
  const std::string id = "0/16B3748#12+50";
  const int64_t ts = 1767225600;
  const std::string body = "{\"events\":[{\"name\":\"a \\\"q\\\" \xc3\xbc\",\"n\":1}]}\n";
  { std::ofstream(dir.path() + "/content", std::ios::binary) << id << "." << ts << "." << body; }
  const std::string expected = Shell("openssl dgst -sha256 -mac HMAC -macopt hexkey:" + key_hex +
                                     " -binary " + dir.path() + "/content | openssl base64 -A");
  ASSERT_EQ(expected.size(), 44u) << "openssl is needed for this test: " << expected;
  auto signer = WebhookSigner::Create("whsec_" + Base64Encode(key)).value();
  EXPECT_EQ(signer.Sign(id, ts, body).value(), "v1," + expected);
  // Any change to the signed content changes the signature.
  EXPECT_NE(signer.Sign(id, ts + 1, body).value(), "v1," + expected);
  EXPECT_NE(signer.Sign("0/16B3748#12+51", ts, body).value(), "v1," + expected);
}

TEST(WebhookSignerTest, RefusesMalformedOrShortSecretsWithoutQuotingThem) {
  for (const char* bad : {"whsec_not base64!", "whsec_abc", "whsec_",
                          "whsec_c2hvcnQ=", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS=w"}) {
    auto s = WebhookSigner::Create(bad);
    ASSERT_FALSE(s.has_value()) << bad;
    EXPECT_EQ(s.error().kind, ErrorKind::kInvalidArgument);
    std::string secret_part = std::string(bad).substr(6);
    if (secret_part.size() > 2) {
      EXPECT_EQ(s.error().message.find(secret_part), std::string::npos) << s.error().message;
    }
  }
}

TEST(Base64Test, RoundTripsEveryLengthAndRejectsNonCanonicalText) {
  std::string bytes;
  for (int n = 0; n < 40; ++n) {
    auto back = Base64Decode(Base64Encode(bytes));
    ASSERT_TRUE(back.has_value()) << n;
    EXPECT_EQ(*back, bytes);
    bytes.push_back(static_cast<char>(n * 37));
  }
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  EXPECT_FALSE(Base64Decode("aGVsbG8").has_value());
  EXPECT_FALSE(Base64Decode("aGV=bG8=").has_value());
  EXPECT_FALSE(Base64Decode("aGVsbG8=\n").has_value());
}

}  // namespace
}  // namespace pgfanout::webhook
