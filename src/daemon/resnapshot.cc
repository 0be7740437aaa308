#include "src/daemon/resnapshot.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "src/core/predicate.h"
#include "src/daemon/status_report.h"
#include "src/httpclient/http_client.h"

namespace pgfanout {
namespace {

using nlohmann::json;

std::string PercentEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// Where the command reaches the daemon: a listen address of any interface is reached on
// loopback.
Result<std::string> DaemonAddress(const Config& config, std::string address) {
  if (!address.empty()) return address;
  const std::string& listen = config.http_listen;
  if (listen.empty() || listen == "off") {
    return MakeError(ErrorKind::kInvalidArgument,
                     "http.listen is off in " + config.path +
                         ": the daemon has no endpoint to ask (with it stopped, use "
                         "pgfanout backfill)");
  }
  const size_t colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  const std::string port = colon == std::string::npos ? "" : listen.substr(colon + 1);
  if (port.empty() || port == "0") {
    return MakeError(ErrorKind::kInvalidArgument,
                     "http.listen picks a free port: pass --address with the one the daemon "
                     "logged (\"http: listening on …\")");
  }
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "[::]") host = "[::1]";
  return host + ":" + port;
}

}  // namespace

Result<ResnapshotQuery> ParseResnapshotQuery(std::string_view query) {
  auto bad = [](std::string_view key, std::string_view expected) {
    return MakeError(ErrorKind::kInvalidArgument,
                     fmt::format("/resnapshot: {}: expected {}", key, expected));
  };
  PGF_TRY(auto pairs, ParseQueryPairs(query, "/resnapshot"));
  ResnapshotQuery q;
  bool has_sink = false;
  std::optional<bool> replace;
  for (auto& [key, value] : pairs) {
    if (key == "sink") {
      if (value.empty()) return bad(key, "a sink id");
      q.sink = std::move(value);
      has_sink = true;
    } else if (key == "table") {
      if (value.empty()) return bad(key, "a table (schema.name)");
      q.table = std::move(value);
    } else if (key == "replace") {
      if (value != "true" && value != "false") return bad(key, "true or false");
      replace = value == "true";
    } else if (key == "where") {
      auto parsed = Predicate::Parse(value);
      if (!parsed) {
        return MakeError(ErrorKind::kInvalidArgument,
                         "/resnapshot: where: " + parsed.error().message);
      }
      q.where = std::move(value);
    } else {
      return bad(key, "one of sink, table, replace, where");
    }
  }
  if (!has_sink) return bad("sink", "a sink id (sink=ID)");
  if (q.where && replace.value_or(false)) {
    return bad("replace",
               "false with where (the rows outside it are not copied, so a copy "
               "that removed what it does not find would remove them)");
  }
  q.replace = q.where ? false : replace.value_or(true);
  return q;
}

std::string ResnapshotQueryString(const ResnapshotQuery& ask) {
  std::string out = "sink=" + PercentEncode(ask.sink);
  if (ask.table) out += "&table=" + PercentEncode(*ask.table);
  if (!ask.replace) out += "&replace=false";
  if (ask.where) out += "&where=" + PercentEncode(*ask.where);
  return out;
}

Result<std::vector<std::string>> ResnapshotTables(const Config& config, const SinkConfig& sink,
                                                  const std::optional<std::string>& table) {
  std::vector<std::string> out;
  if (table) {
    const size_t dot = table->find('.');
    const std::string schema = dot == std::string::npos ? "public" : table->substr(0, dot);
    const std::string name = dot == std::string::npos ? *table : table->substr(dot + 1);
    const TableConfig* t = config.FindTable(schema, name);
    if (!t) {
      return MakeError(ErrorKind::kInvalidArgument,
                       fmt::format("{}.{} is not in tables:", schema, name));
    }
    if (!sink.Receives(*t)) {
      return MakeError(ErrorKind::kInvalidArgument,
                       fmt::format("sink {} does not receive {} (a per-tenant sink and a table "
                                   "without tenant_column)",
                                   sink.id, t->QualifiedName()));
    }
    out.push_back(t->QualifiedName());
    return out;
  }
  for (const auto& t : config.tables) {
    if (sink.Receives(t)) out.push_back(t.QualifiedName());
  }
  if (out.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "sink " + sink.id + " receives no table to copy");
  }
  return out;
}

Result<std::vector<std::string>> AskResnapshot(const Config& config, SinkFleet& fleet,
                                               const std::string& sink_id,
                                               const std::optional<std::string>& table,
                                               bool replace, const std::string& origin,
                                               const std::string& where) {
  SinkRunner* runner = nullptr;
  for (auto* r : fleet.Runners()) {
    if (r->id() == sink_id) runner = r;
  }
  std::optional<SinkConfig> definition;
  for (auto& d : fleet.Definitions()) {
    if (d.id == sink_id) definition = std::move(d);
  }
  if (!runner || !definition) return MakeError(ErrorKind::kNotFound, "no sink " + sink_id);
  PGF_TRY(auto tables, ResnapshotTables(config, *definition, table));
  PGF_TRY(runner->RequestResnapshot(tables, replace, origin, where));
  return tables;
}

int ResnapshotCommand(const Config& config, const ResnapshotQuery& ask, std::string address,
                      bool wait) {
  auto where = DaemonAddress(config, std::move(address));
  if (!where) {
    spdlog::error("{}", where.error().message);
    return 2;
  }
  if (config.http_token.empty()) {
    spdlog::error(
        "{} sets no http.token_file: the daemon takes POST /resnapshot only with a bearer "
        "token",
        config.path);
    return 2;
  }
  auto client = HttpClient::Create(HttpClient::Options{.url = "http://" + where.value()});
  if (!client) {
    spdlog::error("{}", client.error().message);
    return 2;
  }
  const std::vector<std::pair<std::string, std::string>> auth = {
      {"Authorization", "Bearer " + config.http_token}};
  auto asked = client.value()->Send(HttpRequest{
      .method = "POST", .target = "/resnapshot?" + ResnapshotQueryString(ask), .headers = auth});
  if (!asked) {
    spdlog::error(
        "no pgfanout answers at {} ({}); with the daemon stopped, use pgfanout backfill --sink {}",
        where.value(), asked.error().message, ask.sink);
    return 1;
  }
  std::string body = asked.value().body;
  while (!body.empty() && body.back() == '\n') body.pop_back();
  if (asked.value().status != 202) {
    spdlog::error("the daemon refused (HTTP {}): {}", asked.value().status, body);
    return asked.value().status == 409 ? 3 : 1;
  }
  fmt::print("{}\n", body);
  if (!wait) return 0;
  std::string last;
  while (true) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto status = client.value()->Send(HttpRequest{
        .method = "GET", .target = "/status?sink=" + PercentEncode(ask.sink), .headers = auth});
    if (!status || status.value().status != 200) {
      spdlog::error(
          "lost the daemon at {} while waiting; the copy goes on when it runs again (see "
          "pgfanout status)",
          where.value());
      return 1;
    }
    json doc = json::parse(status.value().body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.contains("sinks") || doc["sinks"].empty()) {
      spdlog::error("sink {} is gone from the daemon's status", ask.sink);
      return 1;
    }
    const json& sink = doc["sinks"][0];
    if (!sink.contains("resnapshot") || sink["resnapshot"].is_null()) {
      const std::string ended = sink.value("last_resnapshot", std::string("done"));
      if (ended.rfind("dropped", 0) == 0) {
        spdlog::error("sink {}: the resnapshot was {}", ask.sink, ended);
        return 1;
      }
      fmt::print("done: sink {} is {}\n", ask.sink, sink.value("state", std::string("?")));
      return 0;
    }
    const json& r = sink["resnapshot"];
    std::string line = r["progress"].is_string() ? r["progress"].get<std::string>()
                                                 : r.value("state", std::string("queued"));
    if (line != last) {
      fmt::print("{}\n", line);
      last = line;
    }
  }
}

}  // namespace pgfanout
