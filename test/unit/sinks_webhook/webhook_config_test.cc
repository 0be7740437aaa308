// The webhook sink's config keys as the loader reads them, and what the sink does with
// them before it sends anything (no network: Open() connects lazily).

#include <gtest/gtest.h>

#include <fstream>

#include "src/config/config.h"
#include "src/sinks/webhook/webhook_sink.h"
#include "test/support/temp_dir.h"

namespace pgfanout {
namespace {

std::string Yaml(const std::string& sink_keys) {
  return "source:\n  dsn: \"host=db\"\n"
         "tables:\n  - name: public.users\n    tenant_column: tenant_id\n"
         "sinks:\n  - id: hook\n    type: webhook\n    tenants: [\"7\"]\n" +
         sink_keys;
}

class WebhookConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    secret_ = dir_.path() + "/whsec";
    std::ofstream(secret_) << "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n";
    ca_ = dir_.path() + "/ca.pem";
    std::ofstream(ca_) << "not checked here\n";
  }
  testing::TempDir dir_{"webhook-config"};
  std::string secret_, ca_;
};

TEST_F(WebhookConfigTest, ReadsCaFileAllowPrivateAndDefaults) {
  auto config =
      ParseConfig(Yaml("    url: https://hooks.example.com/in\n    secret_file: " + secret_ +
                       "\n    ca_file: " + ca_ + "\n    allow_private: true\n"),
                  "cfg.yaml");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const SinkConfig* sink = config.value().FindSink("hook");
  ASSERT_NE(sink, nullptr);
  const auto* hook = std::get_if<WebhookSinkOptions>(&sink->options);
  ASSERT_NE(hook, nullptr);
  EXPECT_EQ(hook->ca_file, ca_);
  EXPECT_TRUE(hook->allow_private);
  EXPECT_EQ(hook->envelope, "pgfanout");
  EXPECT_EQ(hook->timeout, std::chrono::seconds(10));
  EXPECT_FALSE(sink->backfill) << "a change stream starts with the changes";

  auto plain = ParseConfig(
      Yaml("    url: https://hooks.example.com/in\n    secret_file: " + secret_ + "\n"), "c.yaml");
  ASSERT_TRUE(plain.has_value());
  const auto& plain_hook = std::get<WebhookSinkOptions>(plain.value().FindSink("hook")->options);
  EXPECT_EQ(plain_hook.ca_file, "") << "the system's CA store";
  EXPECT_FALSE(plain_hook.allow_private);
}

TEST_F(WebhookConfigTest, CaFileIsAWebhookKeyOnly) {
  auto config = ParseConfig(
      "source:\n  dsn: \"host=db\"\n"
      "tables:\n  - name: public.users\n    tenant_column: tenant_id\n"
      "sinks:\n  - id: ch\n    type: clickhouse\n    tenants: [\"*\"]\n"
      "    url: http://ch:8123\n    ca_file: /etc/ca.pem\n",
      "cfg.yaml");
  ASSERT_FALSE(config.has_value());
  EXPECT_NE(config.error().message.find("ca_file: only for webhook sinks"), std::string::npos)
      << config.error().message;
}

TEST_F(WebhookConfigTest, OpenRefusesABadSecretOrAnUnreadableCaFileWithoutShowingTheSecret) {
  const SinkBasics basics{.id = "hook", .tenants = {"*"}};
  WebhookSinkOptions options{.url = "https://hooks.example.com/in", .secret = "whsec_tooshort"};
  auto opened = WebhookSink(basics, options).Open(std::nullopt, {});
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().kind, ErrorKind::kInvalidArgument) << "the sink stops: a person acts";
  EXPECT_EQ(opened.error().message.find("tooshort"), std::string::npos) << opened.error().message;

  options.secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  options.ca_file = dir_.path() + "/missing.pem";
  auto missing = WebhookSink(basics, options).Open(std::nullopt, {});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(missing.error().message.find("missing.pem"), std::string::npos);

  options.ca_file = ca_;
  auto ok = WebhookSink(basics, options).Open(SinkCursor{.applied = {Lsn(5), 1}, .token = "x"}, {});
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_FALSE(ok.value().has_value()) << "it keeps no position of its own: the cursor rules";
}

}  // namespace
}  // namespace pgfanout
