#include "src/core/lsn.h"

#include <gtest/gtest.h>

#include "src/core/event_id.h"

namespace pgfanout {
namespace {

TEST(LsnTest, PrintsThePostgresWay) {
  EXPECT_EQ(Lsn(0x16B3748).ToString(), "0/16B3748");
  EXPECT_EQ(Lsn((uint64_t{0x16} << 32) | 0xB374D848).ToString(), "16/B374D848");
}

TEST(LsnTest, ParsesWhatItPrints) {
  Lsn lsn((uint64_t{0xA} << 32) | 0x1);
  EXPECT_EQ(Lsn::Parse(lsn.ToString()), lsn);
  EXPECT_EQ(Lsn::Parse("0/0"), Lsn(0));
}

TEST(LsnTest, RejectsMalformedText) {
  for (const char* bad : {"", "/", "0/", "/1", "0-1", "G/1", "123456789/0", "0/1/2", " 0/1"}) {
    EXPECT_FALSE(Lsn::Parse(bad).has_value()) << bad;
  }
}

TEST(EventIdTest, OrdersByCommitLsnThenOrdinal) {
  EventId a{Lsn(100), 5};
  EventId b{Lsn(100), 6};
  EventId c{Lsn(101), 0};
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST(EventIdTest, RoundTripsItsTextForm) {
  EventId id{Lsn(0x16B3748), 12};
  EXPECT_EQ(id.ToString(), "0/16B3748#12");
  EXPECT_EQ(EventId::Parse("0/16B3748#12"), id);
  EXPECT_FALSE(EventId::Parse("0/16B3748").has_value());
  EXPECT_FALSE(EventId::Parse("0/16B3748#").has_value());
  EXPECT_FALSE(EventId::Parse("0/16B3748#x").has_value());
}

}  // namespace
}  // namespace pgfanout
