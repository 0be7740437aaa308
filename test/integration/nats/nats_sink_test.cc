// The NATS sink in process against a real nats-server (no Postgres, no daemon): what an
// operator sees when the stream is missing, misconfigured or deleted, when servers are
// down or refuse the credentials, when an event is too large; and that Write() returns
// only once every message is in the stream, where a re-publish adds nothing.

#include "src/sinks/nats/nats_sink.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "test/support/nats_server.h"

namespace pgfanout::testing {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const TableSchema> Users() {
  return std::make_shared<const TableSchema>(
      TableSchema{.schema_name = "public",
                  .table_name = "users",
                  .columns = {{.name = "id", .type_oid = 23, .part_of_key = true},
                              {.name = "tenant_id", .type_oid = 25},
                              {.name = "name", .type_oid = 25}}});
}

// `count` inserts with ids from `first`, tenants t1 and t2 in turn.
std::vector<ChangeEvent> Events(size_t count, uint64_t first = 1, size_t name_bytes = 10) {
  auto users = Users();
  std::vector<ChangeEvent> out;
  for (size_t i = 0; i < count; ++i) {
    const std::string tenant = i % 2 ? "t2" : "t1";
    out.push_back(ChangeEvent{.id = EventId{Lsn(0x1000000 + first + i), 0},
                              .xid = Xid{1},
                              .op = Op::kInsert,
                              .table = users,
                              .tenant = tenant,
                              .new_row = {{ValueKind::kText, std::to_string(first + i)},
                                          {ValueKind::kText, tenant},
                                          {ValueKind::kText, std::string(name_bytes, 'x')}}});
  }
  return out;
}

int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class NatsSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = NatsServer::Start();
    ASSERT_NE(server_, nullptr);
  }

  SinkConfig Config() const {
    return SinkConfig{
        .id = "s",
        .tenants = {"*"},
        .options = NatsSinkOptions{
            .url = server_->Url(), .stream = "PGF", .subject_prefix = "pgf", .timeout = 3000ms}};
  }
  static NatsSinkOptions& Nats(SinkConfig& config) {
    return std::get<NatsSinkOptions>(config.options);
  }

  std::unique_ptr<Sink> Make(const SinkConfig& config) {
    return std::make_unique<NatsSink>(
        SinkBasics::Of(
            config,
            {TableConfig{
                .schema = "public", .name = "users", .tenant_column = "tenant_id", .key = {"id"}}}),
        std::get<NatsSinkOptions>(config.options));
  }

  uint64_t Messages(const std::string& stream = "PGF") {
    auto info = server_->Api("$JS.API.STREAM.INFO." + stream);
    return info ? (*info)["state"].value("messages", uint64_t{0}) : 0;
  }

  std::unique_ptr<NatsServer> server_;
};

TEST_F(NatsSinkTest, CreatesAMissingStreamWithTheDocumentedSettings) {
  auto sink = Make(Config());
  auto opened = sink->Open(std::nullopt, {});
  ASSERT_TRUE(opened) << opened.error().message;
  auto info = server_->Api("$JS.API.STREAM.INFO.PGF");
  ASSERT_TRUE(info);
  const auto& c = (*info)["config"];
  EXPECT_EQ(c["subjects"], nlohmann::json::array({"pgf.>"}));
  EXPECT_EQ(c["storage"], "file");
  EXPECT_EQ(c["num_replicas"], 1);
  EXPECT_EQ(c["duplicate_window"], int64_t{3600} * 1'000'000'000);
  EXPECT_EQ(c["discard"], "old");
  // Opening again uses the stream as it is.
  sink->Stop();
  ASSERT_TRUE(sink->Open(std::nullopt, {}));
}

TEST_F(NatsSinkTest, WriteReturnsWithEveryMessageStoredAndARepublishAddsNothing) {
  auto sink = Make(Config());
  ASSERT_TRUE(sink->Open(std::nullopt, {}));
  // More than the in-flight window, so the pipeline refills while acks come back.
  const auto events = Events(NatsSink::kMaxInFlight * 2 + 17);
  auto token = sink->Write(events);
  ASSERT_TRUE(token) << token.error().message;
  EXPECT_EQ(token.value(), fmt::format("PGF:{}", events.size()));
  EXPECT_EQ(Messages(), events.size());  // durable when Write returned, not later
  auto again = sink->Write(events);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(Messages(), events.size());

  std::string error;
  auto stored = server_->ReadStream("PGF", 0, &error);
  ASSERT_TRUE(stored) << error;
  ASSERT_EQ(stored->size(), events.size());
  for (size_t i = 0; i < events.size(); i += 997) {
    const auto& m = (*stored)[i];
    EXPECT_EQ(m.msg_id, events[i].id.ToString());
    EXPECT_EQ(m.subject, fmt::format("pgf.{}.public.users", *events[i].tenant));
    auto body = nlohmann::json::parse(m.data);
    EXPECT_EQ(body["id"], events[i].id.ToString());
    EXPECT_EQ(body["key"], nlohmann::json({{"id", std::stoi(events[i].new_row[0].text)}}));
  }
}

TEST_F(NatsSinkTest, AStreamWhoseSubjectsMissThePrefixStopsTheSinkSayingWhatToDo) {
  ASSERT_TRUE(server_->Api("$JS.API.STREAM.CREATE.PGF",
                           R"({"name":"PGF","subjects":["other.>"],"storage":"file"})"));
  auto sink = Make(Config());
  auto opened = sink->Open(std::nullopt, {});
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(opened.error().message.find("do not cover pgf.>"), std::string::npos)
      << opened.error().message;
  EXPECT_NE(opened.error().message.find("nats stream edit PGF"), std::string::npos);
}

TEST_F(NatsSinkTest, SubjectsAnotherStreamHoldsStopTheSink) {
  ASSERT_TRUE(server_->Api("$JS.API.STREAM.CREATE.OTHER",
                           R"({"name":"OTHER","subjects":["pgf.>"],"storage":"file"})"));
  auto sink = Make(Config());
  auto opened = sink->Open(std::nullopt, {});
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(opened.error().message.find("overlaps"), std::string::npos) << opened.error().message;
}

TEST_F(NatsSinkTest, ASecondSinkOnTheSameStreamIsRefused) {
  // A moved row is a delete for one sink and an insert for the other under one event id:
  // in one stream the server would drop one of them as a duplicate.
  auto first = Make(Config());
  ASSERT_TRUE(first->Open(std::nullopt, {}));
  auto config = Config();
  config.id = "other";
  auto second = Make(config)->Open(std::nullopt, {});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(second.error().message.find("another pgfanout sink"), std::string::npos)
      << second.error().message;
}

TEST_F(NatsSinkTest, ReplicasBeyondASingleServerStopTheSink) {
  auto config = Config();
  Nats(config).replicas = 3;
  auto sink = Make(config);
  auto opened = sink->Open(std::nullopt, {});
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(opened.error().message.find("replicas: 1"), std::string::npos)
      << opened.error().message;
}

TEST_F(NatsSinkTest, ADeletedStreamIsRetriedAndCreatedAgainOnOpen) {
  auto sink = Make(Config());
  ASSERT_TRUE(sink->Open(std::nullopt, {}));
  ASSERT_TRUE(sink->Write(Events(10)));
  ASSERT_TRUE(server_->Api("$JS.API.STREAM.DELETE.PGF"));
  auto lost = sink->Write(Events(10, 100));
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().kind, ErrorKind::kSink);  // retried by the runner
  EXPECT_NE(lost.error().message.find("no responders"), std::string::npos) << lost.error().message;
  sink->Stop();
  ASSERT_TRUE(sink->Open(std::nullopt, {}));
  ASSERT_TRUE(sink->Write(Events(10, 100)));
  EXPECT_EQ(Messages(), 10u);
}

TEST_F(NatsSinkTest, ALostServerIsAConnectionErrorAndTheNextServerIsTried) {
  auto config = Config();
  const std::string down = fmt::format("nats://127.0.0.1:{}", ClosedPort());
  Nats(config).url = down;
  Nats(config).servers = {server_->Url()};
  auto sink = Make(config);
  ASSERT_TRUE(sink->Open(std::nullopt, {})) << "the second server of the list was not tried";
  ASSERT_TRUE(sink->Write(Events(5)));

  ASSERT_TRUE(server_->Stop(SIGKILL));
  auto lost = sink->Write(Events(5, 10));
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().kind, ErrorKind::kConnection);
  sink->Stop();
  auto none = sink->Open(std::nullopt, {});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind, ErrorKind::kConnection);
  EXPECT_NE(none.error().message.find(down.substr(7)), std::string::npos) << none.error().message;

  ASSERT_TRUE(server_->StartAgain());
  auto back = sink->Open(std::nullopt, {});
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_TRUE(sink->Write(Events(5, 10)));
  EXPECT_EQ(Messages(), 10u);
}

TEST_F(NatsSinkTest, RefusedCredentialsStopTheSinkWithoutShowingThePassword) {
  auto secured = NatsServer::Start({.user = "pgfanout", .password = "right-horse"});
  ASSERT_NE(secured, nullptr);
  auto config = Config();
  Nats(config).url = secured->Url();
  Nats(config).user = "pgfanout";
  Nats(config).password = "wrong-horse";
  auto bad = Make(config)->Open(std::nullopt, {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(bad.error().message.find("Authorization Violation"), std::string::npos)
      << bad.error().message;
  EXPECT_EQ(bad.error().message.find("wrong-horse"), std::string::npos);

  Nats(config).password = "right-horse";
  auto sink = Make(config);
  auto good = sink->Open(std::nullopt, {});
  ASSERT_TRUE(good) << good.error().message;
  ASSERT_TRUE(sink->Write(Events(3)));
}

TEST_F(NatsSinkTest, AnEventOverTheStreamsMessageLimitStopsTheSinkNamingIt) {
  ASSERT_TRUE(
      server_->Api("$JS.API.STREAM.CREATE.PGF",
                   R"({"name":"PGF","subjects":["pgf.>"],"storage":"file","max_msg_size":2000})"));
  auto sink = Make(Config());
  ASSERT_TRUE(sink->Open(std::nullopt, {}));
  auto events = Events(3);
  auto big = Events(1, 50, 5000);
  events.insert(events.end(), big.begin(), big.end());
  auto r = sink->Write(events);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kMismatch);
  EXPECT_NE(r.error().message.find(big[0].id.ToString()), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("max_msg_size"), std::string::npos);
}

TEST_F(NatsSinkTest, AnIdleSinkAnswersTheServersPings) {
  // debug: the server logs "Stale Client Connection" when it drops one that did not answer.
  auto pinging =
      NatsServer::Start({.config_lines = {"ping_interval: \"1s\"", "ping_max: 1", "debug: true"}});
  ASSERT_NE(pinging, nullptr);
  auto config = Config();
  Nats(config).url = pinging->Url();
  auto sink = Make(config);
  ASSERT_TRUE(sink->Open(std::nullopt, {}));
  std::this_thread::sleep_for(4s);  // a client that did not answer would be dropped by now
  EXPECT_EQ(pinging->LogTail(100000).find("Stale Connection"), std::string::npos)
      << pinging->LogTail();
  ASSERT_TRUE(sink->Write(Events(2)));
}

TEST_F(NatsSinkTest, MappingsForDatabaseSinksAreRefused) {
  auto config = Config();
  config.tables = {SinkTableConfig{.source = "public.users", .target = "users", .columns = {"id"}}};
  auto opened = Make(config)->Open(std::nullopt, {});
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(opened.error().message.find("whole rows"), std::string::npos);
}

}  // namespace
}  // namespace pgfanout::testing
