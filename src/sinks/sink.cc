#include "src/sinks/sink.h"

#include "src/sinks/clickhouse/clickhouse_sink.h"
#include "src/sinks/discard/discard_sink.h"
#include "src/sinks/jsonl/jsonl_sink.h"
#include "src/sinks/nats/nats_sink.h"
#include "src/sinks/postgres/postgres_sink.h"
#include "src/sinks/webhook/webhook_sink.h"

namespace pgfanout {

Result<std::unique_ptr<Sink>> MakeSink(const SinkConfig& config,
                                       const std::vector<TableConfig>& tables) {
  if (config.type == "jsonl") {
    return std::unique_ptr<Sink>(new JsonlSink(
        config.path, config.AllTenants() ? std::vector<std::string>{} : config.tenants));
  }
  if (config.type == "postgres") {
    if (config.dsn.empty()) {
      return MakeError(ErrorKind::kInvalidArgument, "sink " + config.id + ": postgres needs a dsn");
    }
    return std::unique_ptr<Sink>(new PostgresSink(config, tables));
  }
  if (config.type == "discard") return std::unique_ptr<Sink>(new DiscardSink());
  if (config.type == "clickhouse") return std::unique_ptr<Sink>(new ClickHouseSink(config, tables));
  if (config.type == "webhook") return std::unique_ptr<Sink>(new WebhookSink(config, tables));
  if (config.type == "nats") return std::unique_ptr<Sink>(new NatsSink(config, tables));
  return MakeError(ErrorKind::kInvalidArgument,
                   "sink " + config.id + ": unknown type '" + config.type + "'");
}

}  // namespace pgfanout
