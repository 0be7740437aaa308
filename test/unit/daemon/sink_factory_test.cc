// The one place sinks are made (src/daemon/sink_factory.h): each kind's options make that
// kind's sink, and a config it cannot use is refused with the sink named.
#include "src/daemon/sink_factory.h"

#include <gtest/gtest.h>

#include "src/sinks/clickhouse/clickhouse_sink.h"
#include "src/sinks/discard/discard_sink.h"
#include "src/sinks/jsonl/jsonl_sink.h"
#include "src/sinks/nats/nats_sink.h"
#include "src/sinks/postgres/postgres_sink.h"
#include "src/sinks/webhook/webhook_sink.h"

namespace pgfanout {
namespace {

template <class Kind>
bool Makes(SinkOptions options) {
  auto made = MakeSink(SinkConfig{.id = "s", .tenants = {"*"}, .options = std::move(options)}, {});
  EXPECT_TRUE(made.has_value()) << made.error().message;
  return made && dynamic_cast<Kind*>(made.value().get()) != nullptr;
}

TEST(SinkFactoryTest, EachKindsOptionsMakeThatKind) {
  EXPECT_TRUE(Makes<DiscardSink>(DiscardSinkOptions{}));
  EXPECT_TRUE(Makes<JsonlSink>(JsonlSinkOptions{.path = "/nonexistent/out.jsonl"}));
  EXPECT_TRUE(Makes<PostgresSink>(PostgresSinkOptions{.dsn = "host=t7"}));
  EXPECT_TRUE(Makes<ClickHouseSink>(ClickHouseSinkOptions{.url = "http://ch:8123"}));
  EXPECT_TRUE(Makes<WebhookSink>(WebhookSinkOptions{.url = "https://hooks.example.com/in"}));
  EXPECT_TRUE(Makes<NatsSink>(NatsSinkOptions{.url = "nats://nats:4222"}));
}

TEST(SinkFactoryTest, APostgresSinkWithoutADsnIsRefused) {
  auto made = MakeSink(
      SinkConfig{.id = "tenant-7", .tenants = {"7"}, .options = PostgresSinkOptions{}}, {});
  ASSERT_FALSE(made.has_value());
  EXPECT_EQ(made.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(made.error().message, "sink tenant-7: postgres needs a dsn");
}

}  // namespace
}  // namespace pgfanout
