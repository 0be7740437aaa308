// backfill_concurrency: copies admitted in the order sinks asked, a freed slot kept for the
// next in line (not taken by whoever asks first), and a runner that leaves passes it on.
#include "src/pipeline/backfill_admission.h"

#include <gtest/gtest.h>

#include "src/pipeline/sink_runner.h"
#include "test/support/memory_sink.h"

namespace pgfanout {
namespace {

class BackfillAdmissionTest : public ::testing::Test {
 protected:
  std::unique_ptr<SinkRunner> Runner(std::string id) {
    return std::make_unique<SinkRunner>(
        SinkConfig{.id = std::move(id), .tenants = {"*"}}, std::vector<TableConfig>{},
        std::make_unique<testing::MemorySink>(), *log_, [](const Error&) {});
  }
  std::unique_ptr<EventLog> log_ = NewMemoryEventLog();
};

TEST_F(BackfillAdmissionTest, SlotsGoToTheSinksInTheOrderTheyAsked) {
  auto a = Runner("a"), b = Runner("b"), c = Runner("c");
  BackfillAdmission admission(1);
  auto slot_a = admission.TryAdmit(*a);
  ASSERT_TRUE(slot_a.has_value());
  auto refused = admission.TryAdmit(*b);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().kind, ErrorKind::kBusy);
  ASSERT_FALSE(admission.TryAdmit(*c).has_value());
  EXPECT_EQ(admission.waiting(), 2u);
  slot_a.value().reset();  // a's copy is done: the slot is kept for b, who asked first
  EXPECT_FALSE(admission.TryAdmit(*c).has_value()) << "c took the slot kept for b";
  auto slot_b = admission.TryAdmit(*b);
  ASSERT_TRUE(slot_b.has_value());
  slot_b.value().reset();
  EXPECT_TRUE(admission.TryAdmit(*c).has_value());
}

TEST_F(BackfillAdmissionTest, ARunnerThatStopsPassesItsKeptSlotOn) {
  auto a = Runner("a"), b = Runner("b"), c = Runner("c");
  BackfillAdmission admission(1);
  auto slot_a = admission.TryAdmit(*a);
  ASSERT_TRUE(slot_a.has_value());
  ASSERT_FALSE(admission.TryAdmit(*b).has_value());
  ASSERT_FALSE(admission.TryAdmit(*c).has_value());
  slot_a.value().reset();  // kept for b
  admission.Forget(*b);    // b was removed (SIGHUP) before it came back for it
  EXPECT_TRUE(admission.TryAdmit(*c).has_value()) << "the slot kept for b was lost";
}

}  // namespace
}  // namespace pgfanout
