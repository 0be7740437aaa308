#include "test/integration/nats/nats_e2e_fixture.h"

#include <fmt/format.h>

namespace pgfanout::testing {

void NatsE2EFixture::TearDown() {
  SinkE2ETest::TearDown();  // kills the daemon first, and prints its log on failure
  if (HasFailure()) {
    for (const auto& s : servers_) {
      std::cerr << "---- nats-server " << s->Url() << " (" << s->log_path() << "), tail ----\n"
                << s->LogTail(3000);
    }
  }
  servers_.clear();
}

std::string NatsE2EFixture::SinksYaml() {
  std::string out;
  for (const auto& s : sinks_) {
    std::string tenants;
    for (const auto& t : s.tenants)
      tenants += fmt::format("{}\"{}\"", tenants.empty() ? "" : ", ", t);
    std::string servers;
    for (size_t i = 1; i < servers_.size(); ++i) {
      servers += fmt::format("{}\"{}\"", servers.empty() ? "" : ", ", servers_[i]->Url());
    }
    out += fmt::format(
        "  - id: {}\n    type: nats\n    tenants: [{}]\n    url: \"{}\"\n{}"
        "    stream: {}\n    subject_prefix: {}\n    replicas: {}\n    timeout: 5s\n"
        "    batch_size: 100\n",
        s.id, tenants.empty() ? "\"*\"" : tenants, servers_.at(0)->Url(),
        servers.empty() ? "" : "    servers: [" + servers + "]\n", s.stream, s.prefix, replicas_);
  }
  return out;
}

StreamState& NatsE2EFixture::State(const std::string& sink_id) {
  auto& state = states_[sink_id];
  if (!state) {
    for (const auto& s : sinks_) {
      if (s.id != sink_id) continue;
      state = std::make_unique<StreamState>(
          s.stream, s.prefix, s.tenants,
          StreamState::Keys{{"accounts", {"tenant_id", "id"}}, {"events", {"id"}}});
    }
  }
  if (!state) throw std::runtime_error("no sink " + sink_id);
  return *state;
}

const NatsServer& NatsE2EFixture::Reader() const {
  for (const auto& s : servers_) {
    if (s->running()) return *s;
  }
  return *servers_.at(0);
}

std::optional<SinkE2ETest::Rows> NatsE2EFixture::TargetRows(const std::string& sink_id,
                                                            const std::string& table,
                                                            const std::set<std::string>& tenants) {
  auto& state = State(sink_id);
  if (!state.Refresh(Reader())) return std::nullopt;
  return state.Rows(table, tenants, Columns(table));
}

void NatsE2EFixture::ExpectEachEventOnce(const std::string& sink_id) {
  auto& state = State(sink_id);
  std::string error;
  ASSERT_TRUE(state.Refresh(Reader(), &error)) << error;
  EXPECT_GT(state.messages(), 0u) << sink_id;
  EXPECT_EQ(state.problems(), "") << "sink " << sink_id << "'s stream, " << state.messages()
                                  << " messages";
}

nlohmann::json NatsE2EFixture::StreamInfo(const std::string& stream) {
  std::string error;
  auto info = Reader().Api("$JS.API.STREAM.INFO." + stream, "", &error);
  EXPECT_TRUE(info.has_value()) << error;
  return info.value_or(nlohmann::json::object());
}

}  // namespace pgfanout::testing
