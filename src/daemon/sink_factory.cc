#include "src/daemon/sink_factory.h"

#include "src/sinks/clickhouse/clickhouse_sink.h"
#include "src/sinks/discard/discard_sink.h"
#include "src/sinks/jsonl/jsonl_sink.h"
#include "src/sinks/nats/nats_sink.h"
#include "src/sinks/postgres/postgres_sink.h"
#include "src/sinks/webhook/webhook_sink.h"

namespace pgfanout {
namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};

}  // namespace

Result<std::unique_ptr<Sink>> MakeSink(const SinkConfig& config,
                                       const std::vector<TableConfig>& tables) {
  SinkBasics basics = SinkBasics::Of(config, tables);
  using Made = Result<std::unique_ptr<Sink>>;
  return std::visit(
      Overloaded{
          [&](const DiscardSinkOptions&) -> Made { return std::make_unique<DiscardSink>(); },
          [&](const JsonlSinkOptions& o) -> Made {
            return std::make_unique<JsonlSink>(o.path, basics.TruncateScope());
          },
          [&](const PostgresSinkOptions& o) -> Made {
            if (o.dsn.empty()) {
              return MakeError(ErrorKind::kInvalidArgument,
                               "sink " + config.id + ": postgres needs a dsn");
            }
            return std::make_unique<PostgresSink>(std::move(basics), o);
          },
          [&](const ClickHouseSinkOptions& o) -> Made {
            return std::make_unique<ClickHouseSink>(std::move(basics), o);
          },
          [&](const WebhookSinkOptions& o) -> Made {
            return std::make_unique<WebhookSink>(basics, o);
          },
          [&](const NatsSinkOptions& o) -> Made {
            return std::make_unique<NatsSink>(std::move(basics), o);
          },
      },
      config.options);
}

}  // namespace pgfanout
