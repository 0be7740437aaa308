// The sink fleet applies sink definitions as a diff: added sinks start, changed ones
// restart from their cursors, removed ones stop and take nothing more, unchanged ones go
// on untouched, and a definition that cannot be made changes nothing.
#include "src/pipeline/sink_fleet.h"

#include "test/unit/pipeline/sink_runner_fixture.h"

namespace pgfanout {
namespace {

// Forwards to a MemorySink the test keeps, so a removed sink can still be looked at after
// the fleet destroyed its runner.
class SharedSink final : public Sink {
 public:
  explicit SharedSink(std::shared_ptr<MemorySink> inner) : inner_(std::move(inner)) {}
  Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                             const Lineage& lineage) override {
    return inner_->Open(stored, lineage);
  }
  Result<std::string> Write(std::span<const ChangeEvent> events) override {
    return inner_->Write(events);
  }
  void Stop() override { inner_->Stop(); }

 private:
  std::shared_ptr<MemorySink> inner_;
};

class SinkFleetTest : public SinkRunnerTest {
 protected:
  SinkFleetTest() {
    delivery_.workers = 2;
    fleet_ = std::make_unique<SinkFleet>(
        delivery_, 1, [this](const SinkConfig& sc) -> Result<std::unique_ptr<SinkRunner>> {
          if (sc.id == "bad") return MakeError(ErrorKind::kInvalidArgument, "no such target");
          auto sink = std::make_shared<MemorySink>();
          made_[sc.id].push_back(sink);
          return Runner(sc, std::make_unique<SharedSink>(sink));
        });
  }
  void TearDown() override {
    fleet_->Stop();
    SinkRunnerTest::TearDown();
  }
  // The sink the fleet made last for `id`.
  MemorySink& Latest(const std::string& id) { return *made_.at(id).back(); }
  // Appends a row for `tenant` and wakes the fleet as the ingest would.
  EventId Event(const std::string& tenant) {
    const EventId id = Append({tenant})[0];
    fleet_->Wake(Ingest::Appended{.any = true, .tenants = {tenant}});
    return id;
  }

  DeliveryConfig delivery_;
  std::map<std::string, std::vector<std::shared_ptr<MemorySink>>> made_;
  std::unique_ptr<SinkFleet> fleet_;
};

TEST_F(SinkFleetTest, AppliesDefinitionsAsADiff) {
  auto applied = fleet_->Apply({Config("a", {"1"}), Config("b", {"2"})});
  ASSERT_TRUE(applied.has_value()) << applied.error().message;
  EXPECT_EQ(applied.value().added, (std::vector<std::string>{"a", "b"}));
  fleet_->Start();
  const EventId a1 = Event("1");
  const EventId b1 = Event("2");
  ASSERT_TRUE(Latest("a").WaitForEvents(1, kDeadline));
  ASSERT_TRUE(Latest("b").WaitForEvents(1, kDeadline));
  MemorySink& first_a = Latest("a");

  // b changes (its batch size), c is added, a stays as it was.
  applied = fleet_->Apply({Config("a", {"1"}), Config("b", {"2"}, 10), Config("c", {"3"})});
  ASSERT_TRUE(applied.has_value()) << applied.error().message;
  EXPECT_EQ(applied.value().added, std::vector<std::string>{"c"});
  EXPECT_EQ(applied.value().changed, std::vector<std::string>{"b"});
  EXPECT_TRUE(applied.value().removed.empty());
  EXPECT_EQ(made_["a"].size(), 1u) << "an unchanged sink was made again";
  EXPECT_EQ(made_["b"].size(), 2u);
  EXPECT_EQ(fleet_->size(), 3u);
  const EventId b2 = Event("2");
  const EventId c1 = Event("3");
  ASSERT_TRUE(Latest("b").WaitForEvents(1, kDeadline));
  EXPECT_EQ(Latest("b").ids(), std::vector<EventId>{b2}) << "the changed sink resumed elsewhere";
  ASSERT_TRUE(Latest("b").opens().size() == 1 && Latest("b").opens()[0].has_value());
  EXPECT_EQ(Latest("b").opens()[0]->applied, b1) << "restarted from its cursor";
  ASSERT_TRUE(Latest("c").WaitForEvents(1, kDeadline));
  EXPECT_EQ(Latest("c").ids(), std::vector<EventId>{c1});

  // a is removed: it stops, and takes nothing appended after.
  applied = fleet_->Apply({Config("b", {"2"}, 10), Config("c", {"3"})});
  ASSERT_TRUE(applied.has_value());
  EXPECT_EQ(applied.value().removed, std::vector<std::string>{"a"});
  EXPECT_EQ(first_a.stops(), 1);
  Event("1");
  const EventId c2 = Event("3");
  ASSERT_TRUE(Latest("c").WaitForEvents(2, kDeadline));
  EXPECT_EQ(Latest("c").ids(), (std::vector<EventId>{c1, c2}));
  EXPECT_EQ(first_a.ids(), std::vector<EventId>{a1}) << "a removed sink took an event";
  EXPECT_EQ(fleet_->size(), 2u);
}

TEST_F(SinkFleetTest, ADefinitionThatCannotBeMadeChangesNothing) {
  ASSERT_TRUE(fleet_->Apply({Config("a", {"1"}), Config("b", {"2"})}).has_value());
  fleet_->Start();
  auto applied = fleet_->Apply({Config("a", {"1"}), Config("bad", {"9"})});
  ASSERT_FALSE(applied.has_value());
  EXPECT_EQ(applied.error().message, "sink bad: no such target");
  EXPECT_EQ(fleet_->size(), 2u) << "b was removed although the change was refused";
  EXPECT_EQ(Latest("b").stops(), 0);
  const EventId b1 = Event("2");
  ASSERT_TRUE(Latest("b").WaitForEvents(1, kDeadline));
  EXPECT_EQ(Latest("b").ids(), std::vector<EventId>{b1});
  // The refused change is not remembered as applied: applying it without "bad" removes b.
  applied = fleet_->Apply({Config("a", {"1"})});
  ASSERT_TRUE(applied.has_value());
  EXPECT_EQ(applied.value().removed, std::vector<std::string>{"b"});
}

TEST_F(SinkFleetTest, RunnersMadeBeforeStartRunOnlyAfterIt) {
  ASSERT_TRUE(fleet_->Apply({Config("a", {"1"})}).has_value());
  Append({"1"});
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_TRUE(Latest("a").opens().empty()) << "a runner ran before Start()";
  fleet_->Start();
  EXPECT_TRUE(Latest("a").WaitForEvents(1, kDeadline));
}

}  // namespace
}  // namespace pgfanout
