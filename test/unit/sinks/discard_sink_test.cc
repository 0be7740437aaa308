#include "src/sinks/discard/discard_sink.h"

#include <gtest/gtest.h>

#include <vector>

#include "src/sinks/sink.h"

namespace pgfanout {
namespace {

std::vector<ChangeEvent> Events(size_t n) {
  std::vector<ChangeEvent> events(n);
  for (size_t i = 0; i < n; ++i) events[i].id = EventId{Lsn(0x100), static_cast<uint32_t>(i)};
  return events;
}

// That `type: discard` makes one: test/unit/daemon/sink_factory_test.cc.
TEST(DiscardSinkTest, ItsTokenCountsEventsAcrossARestart) {
  DiscardSink discard;
  Sink& sink = discard;
  auto opened = sink.Open(std::nullopt, {});
  ASSERT_TRUE(opened.has_value());
  EXPECT_FALSE(opened.value().has_value()) << "it keeps no position of its own";
  auto events = Events(3);
  EXPECT_EQ(sink.Write(events).value(), "3");
  EXPECT_EQ(sink.Write(std::span(events).first(2)).value(), "5");

  DiscardSink again;
  SinkCursor stored{.applied = events.back().id, .token = "5"};
  auto resumed = again.Open(stored, {});
  ASSERT_TRUE(resumed.has_value());
  EXPECT_FALSE(resumed.value().has_value()) << "it keeps no position of its own";
  EXPECT_EQ(again.Write(std::span(events).first(1)).value(), "6");
}

}  // namespace
}  // namespace pgfanout
