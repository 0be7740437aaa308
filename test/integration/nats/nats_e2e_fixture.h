#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "test/integration/nats/stream_state.h"
#include "test/integration/sink_e2e_fixture.h"
#include "test/support/nats_server.h"

namespace pgfanout::testing {

// The shared sink scenarios (SinkE2ETest) for NATS sinks: each sink has its own stream and
// subject prefix; what a sink "holds" is what a consumer rebuilds by reading its stream
// back from the first message (StreamState). A suite starts its servers in SetUp and lists
// its sinks in `sinks_`.
class NatsE2EFixture : public SinkE2ETest {
 protected:
  struct NatsSinkSpec {
    std::string id;
    std::string stream;
    std::string prefix;
    std::set<std::string> tenants;  // empty: "*"
  };

  void TearDown() override;

  std::string SinksYaml() override;
  std::optional<Rows> TargetRows(const std::string& sink_id, const std::string& table,
                                 const std::set<std::string>& tenants) override;

  // A server that runs, to read streams through.
  const NatsServer& Reader() const;
  // Reads sink `sink_id`'s stream to its end and expects it kept its promises: each event
  // id stored once, Nats-Msg-Id = the body's id, subjects as specified, only its tenants.
  void ExpectEachEventOnce(const std::string& sink_id);
  StreamState& State(const std::string& sink_id);
  // The stream's info ($JS.API.STREAM.INFO), failing the test when it cannot be read.
  nlohmann::json StreamInfo(const std::string& stream);

  std::vector<std::unique_ptr<NatsServer>> servers_;  // [0] is the sinks' url
  std::vector<NatsSinkSpec> sinks_;
  size_t replicas_ = 1;

 private:
  std::map<std::string, std::unique_ptr<StreamState>> states_;
};

}  // namespace pgfanout::testing
