#include "src/daemon/daemon.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "checkpoints/event_log.h"
#include "checkpoints/log_identity.h"
#include "src/core/failpoint.h"
#include "src/daemon/backfill.h"
#include "src/daemon/monitor.h"
#include "src/daemon/registry_sinks.h"
#include "src/daemon/resnapshot.h"
#include "src/daemon/retention.h"
#include "src/daemon/sink_factory.h"
#include "src/daemon/status_report.h"
#include "src/metrics/metrics.h"
#include "src/pipeline/ingest.h"
#include "src/pipeline/retry_policy.h"
#include "src/pipeline/signal_queue.h"
#include "src/pipeline/sink_fleet.h"
#include "src/pipeline/sink_runner.h"
#include "src/pipeline/slot_hold.h"
#include "src/server/http_server.h"
#include "src/server/lag_page.h"
#include "src/source/registry_source.h"
#include "src/source/replication_stream.h"
#include "src/source/source_row_fetcher.h"
#include "src/source/source_setup.h"

namespace pgfanout {
namespace {

constexpr auto kRetentionInterval = std::chrono::seconds(10);
// A stream that ran this long before it ended was healthy: the reconnect backoff restarts.
constexpr auto kStableStream = std::chrono::seconds(30);
// A standby asks for the slot this often: it takes over within this of the slot freeing
// (the server frees it wal_sender_timeout after the leader went silent).
constexpr auto kStandbyPoll = std::chrono::milliseconds(500);
// How often the sinks' holds on the slot are computed again (source.confirm: sinks); the
// value between is conservative, never ahead of what the sinks hold.
constexpr auto kSinkHoldInterval = std::chrono::milliseconds(500);

// How many HTTP connections may be open at once. The endpoint shares the process's file
// descriptors with the replication connection, the event log and the sinks; a flood of
// connections must never take the descriptor the next reconnect needs. So the endpoint
// gets a quarter of what is left after a reserve, at least 4 and at most 64. (RunDaemon
// first raises the soft limit to the hard one.)
size_t HttpConnectionBudget() {
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur == RLIM_INFINITY) return 64;
  constexpr rlim_t kReserve = 96;
  const rlim_t left = nofile.rlim_cur > kReserve ? nofile.rlim_cur - kReserve : 0;
  return static_cast<size_t>(std::clamp<rlim_t>(left / 4, 4, 64));
}

class Daemon {
 public:
  Daemon(Config config, EventLog& log)
      : config_(std::move(config)),
        log_(log),
        signals_(io_, SIGINT, SIGTERM),
        reload_signal_(io_, SIGHUP),
        retry_timer_(io_),
        retention_timer_(io_),
        registry_timer_(io_),
        signal_timer_(io_),
        retention_(config_.log, log_),
        fleet_(config_.delivery, config_.backfill_concurrency,
               [this](const SinkConfig& sc) { return MakeRunner(sc); }),
        registry_(config_, log_, fleet_,
                  [this](const SinkConfig& sc) -> Result<void> {
                    PGF_TRY(MakeSink(sc, config_.tables));
                    return boost::outcome_v2::success();
                  }),
        monitor_(
            config_, log_, metrics_, [this] { return SinkStatuses(); }, config_.sample_interval) {}

  Result<void> Init() {
    PGF_TRY(retention_.MarkSinksTrimmedBefore());
    monitor_.SetPerSinkSeries(per_sink_series_);
    // A partition change the stream does not carry: the table is copied again for its
    // sinks (on the loop, where the fleet lives).
    monitor_.SetPartitionRepair([this](const std::string& table) {
      boost::asio::post(io_, [this, table] { RepairTable(table); });
    });
    if (!per_sink_series_) {
      spdlog::info("{} sinks: /metrics has aggregates, not per-sink series (metrics.per_sink)",
                   config_.sinks.size());
    }
    PGF_TRY(registry_.Load());
    PGF_TRY(signal_queue_.Load(log_));
    PGF_TRY(fleet_.Apply(registry_.Definitions()));
    spdlog::info("{} sink(s) on {} delivery worker(s)", fleet_.size(), fleet_.workers());
    return boost::outcome_v2::success();
  }

  int Run() {
    fleet_.Start();
    if (auto r = StartHttp(); !r) {
      spdlog::critical("{}", r.error().message);
      fleet_.Stop();
      return 1;
    }
    monitor_.Start();
    signals_.async_wait([this](boost::system::error_code ec, int sig) {
      if (ec) return;
      spdlog::info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
      Shutdown("stopping", "shutting down");
    });
    WaitReload();
    ScheduleRetention();
    if (registry_.enabled()) ScheduleRegistryReap();
    ScheduleRequestPump();
    boost::asio::post(io_, [this] { Connect(); });
    io_.run();
    monitor_.Stop();
    fleet_.Stop();
    *finished_ = true;
    spdlog::info("stopped; event log durable up to {}", log_.DurableLsn().ToString());
    return exit_code_;
  }

 private:
  Result<std::unique_ptr<SinkRunner>> MakeRunner(const SinkConfig& sc) {
    PGF_TRY(auto sink, MakeSink(sc, config_.tables));
    auto runner = std::make_unique<SinkRunner>(sc, config_.tables, std::move(sink), log_,
                                               [this](const Error& e) { OnFatal(e); });
    runner->SetRowFetcher(std::make_unique<SourceRowFetcher>(config_.source, config_.tables));
    runner->SetSlotVouches(confirm_sinks_);
    runner->SetDeliveryGate(&delivering_);
    runner->SetMetrics(metrics_, per_sink_series_);
    // A new sink, or one with a new table, first gets the rows that exist already, when
    // admitted (backfill_concurrency; a sink that waits holds no worker). The sink's config
    // is copied: a reload may replace config_.sinks.
    runner->SetBackfill([this, sc, r = runner.get()](Sink& s, const std::function<bool()>& stopping,
                                                     const SinkRunner::CopyAsk& ask) {
      auto admit = [this, r]() { return fleet_.admission().TryAdmit(*r); };
      return BackfillSink(config_, sc, s, log_,
                          BackfillOptions{.chunk_rows = config_.delivery.copy_chunk_rows,
                                          .tables = ask.tables,
                                          .replace = ask.replace,
                                          .stopping = stopping,
                                          .admit = admit,
                                          .round = ask.live ? config_.delivery.copy_round
                                                            : std::chrono::milliseconds(0),
                                          .stream_at = ask.stream_at,
                                          .where = ask.where,
                                          .unfinished = ask.unfinished,
                                          .on_progress = ask.on_progress});
    });
    return runner;
  }

  // The delivery pool's counts, as of this scrape.
  void ExportDeliveryMetrics() {
    const DeliveryPool::Counts c = fleet_.pool_counts();
    metrics_.GaugeOf("delivery_workers", "Worker threads sinks' batches run on (delivery.workers)")
        .Set(static_cast<double>(fleet_.workers()));
    const std::pair<const char*, size_t> states[] = {
        {"queued", c.queued}, {"running", c.running}, {"waiting", c.waiting}, {"idle", c.idle}};
    for (const auto& [state, n] : states) {
      metrics_
          .GaugeOf("delivery_sinks",
                   "Sinks by delivery state: queued for a worker, running a batch, waiting to "
                   "retry, idle (nothing to do: no thread, no polling)",
                   {{"state", state}})
          .Set(static_cast<double>(n));
    }
    const ConnectionBudget::Counts conns = fleet_.connection_counts();
    metrics_
        .GaugeOf("delivery_connections_limit",
                 "Target connections sinks may hold at once (delivery.max_connections; 0: no cap)")
        .Set(static_cast<double>(conns.limit));
    const std::pair<const char*, size_t> conn_states[] = {{"busy", conns.open - conns.idle},
                                                          {"idle", conns.idle}};
    for (const auto& [state, n] : conn_states) {
      metrics_
          .GaugeOf("delivery_connections",
                   "Target connections sinks hold: busy, or idle (kept for delivery.idle_close "
                   "and given up first when another sink waits)",
                   {{"state", state}})
          .Set(static_cast<double>(n));
    }
    metrics_
        .GaugeOf("delivery_connections_waiting",
                 "Sinks waiting for a target connection (delivery.max_connections)")
        .Set(static_cast<double>(conns.waiting));
    if (registry_.enabled()) {
      const RegistrySinks::Counts rows = registry_.counts();
      const std::pair<const char*, size_t> row_states[] = {
          {"live", rows.live}, {"paused", rows.paused}, {"error", rows.error}};
      for (const auto& [state, n] : row_states) {
        metrics_
            .GaugeOf("sink_registry_rows",
                     "Rows of the sink registry: making a live sink, a paused one, or none (an "
                     "error, shown in /status under the row's sink_id)",
                     {{"state", state}})
            .Set(static_cast<double>(n));
      }
    }
    Counter& turns = metrics_.CounterOf(
        "delivery_turns_total", "Turns the delivery workers ran (a batch, or a look for one)");
    std::lock_guard lock(turns_mu_);
    if (c.turns > turns_exported_) turns.Add(c.turns - turns_exported_);
    turns_exported_ = std::max(turns_exported_, c.turns);
  }

  // Every sink's status, and a stopped one for each registry row that makes no sink.
  std::vector<SinkRunner::Status> SinkStatuses() const {
    std::vector<SinkRunner::Status> out = fleet_.Statuses();
    for (auto& [id, message] : registry_.Errors()) {
      out.push_back(SinkRunner::Status{.sink_id = id, .last_error = message, .stopped = true});
    }
    return out;
  }

  Result<void> StartHttp() {
    if (config_.http_listen.empty()) return boost::outcome_v2::success();
    auto text = [](unsigned status, std::string body) {
      return HttpResponse{.status = status, .body = std::move(body)};
    };
    std::map<std::string, HttpHandler> routes;
    routes["/healthz"] = [text](const IncomingRequest&) { return text(200, "ok\n"); };
    // Open to probes: the state only. The reason (a server's error, which names hosts,
    // databases and users) is for a request with the token, and in /status.
    routes["/readyz"] = [this, text](const IncomingRequest& request) {
      if (source_.state == "streaming") return text(200, "ready: streaming (leader)\n");
      // Healthy and waiting to take over: ready, and it says so.
      if (source_.state == "standby") return text(200, "ready: standby\n");
      const bool why = request.authorized && !source_.reason.empty();
      return text(503, "not ready: " + source_.state + (why ? ": " + source_.reason : "") + "\n");
    };
    routes["/status"] = [this, text](const IncomingRequest& request) {
      auto query = ParseStatusQuery(request.query);
      if (!query) return text(400, query.error().message + "\n");
      RefreshSourceState();
      // The registry's sinks beside the static ones, for their kinds and tenants.
      Config shown = config_;
      shown.sinks = fleet_.Definitions();
      return HttpResponse{
          .content_type = "application/json",
          .body = StatusJson(shown, source_, monitor_.snapshot(), SinkStatuses(), query.value())};
    };
    routes["/lag.json"] = [this](const IncomingRequest&) {
      return HttpResponse{.content_type = "application/json",
                          .body = LagHistoryJson(monitor_.history(), monitor_.interval())};
    };
    routes["/metrics"] = [this](const IncomingRequest&) {
      ExportDeliveryMetrics();
      return HttpResponse{.content_type = "text/plain; version=0.0.4; charset=utf-8",
                          .body = metrics_.RenderPrometheus()};
    };
    // A copy of a sink's rows while everything streams (`pgfanout resnapshot`). POST only,
    // and only with the token (HttpServer::Options::post_paths); the one route that writes,
    // a single meta record.
    routes["/resnapshot"] = [this, text](const IncomingRequest& request) {
      auto parsed = ParseResnapshotQuery(request.query);
      if (!parsed) return text(400, parsed.error().message + "\n");
      const ResnapshotQuery& ask = parsed.value();
      auto asked = AskResnapshot(config_, fleet_, ask.sink, ask.table, ask.replace, "http",
                                 ask.where.value_or(""));
      if (!asked) {
        const ErrorKind kind = asked.error().kind;
        return text(kind == ErrorKind::kNotFound          ? 404
                    : kind == ErrorKind::kInvalidArgument ? 400
                    : kind == ErrorKind::kBusy            ? 409
                                                          : 500,
                    asked.error().message + "\n");
      }
      const std::vector<std::string>& tables = asked.value();
      return HttpResponse{
          .status = 202,
          .content_type = "application/json",
          .body = nlohmann::json{{"sink", ask.sink}, {"tables", tables}, {"replace", ask.replace}}
                      .dump() +
                  "\n"};
    };
    // The page, its script and its style hold no data; they are open, and the page fetches
    // the rest with the token from its URL's fragment.
    routes["/"] = [](const IncomingRequest&) {
      return HttpResponse{.content_type = "text/html; charset=utf-8",
                          .body = LagPageHtml(),
                          .content_security_policy = kLagPageCsp};
    };
    routes["/lag.js"] = [](const IncomingRequest&) {
      return HttpResponse{.content_type = "text/javascript; charset=utf-8",
                          .body = LagPageScript()};
    };
    routes["/lag.css"] = [](const IncomingRequest&) {
      return HttpResponse{.content_type = "text/css; charset=utf-8", .body = LagPageStyle()};
    };
    const size_t max_connections = HttpConnectionBudget();
    PGF_TRY(http_,
            HttpServer::Start(io_,
                              HttpServer::Options{
                                  .listen = config_.http_listen,
                                  .bearer_token = config_.http_token,
                                  .open_paths = {"/healthz", "/readyz", "/", "/lag.js", "/lag.css"},
                                  .post_paths = {"/resnapshot"},
                                  .allowed_hosts = config_.http_allowed_hosts,
                                  .max_connections = max_connections},
                              std::move(routes)));
    spdlog::info(
        "http: listening on {} (/healthz /readyz /status /metrics, lag page at /){}; at most "
        "{} connection(s) at once",
        http_->address(), config_.http_token.empty() ? "" : ", bearer token required",
        max_connections);
    return boost::outcome_v2::success();
  }

  void RefreshSourceState() {
    if (stream_) {
      source_.received_lsn = stream_->received_lsn();
      source_.reported_flush_lsn = stream_->reported_flush_lsn();
    }
    source_.durable_lsn = log_.DurableLsn();
    source_.last_event = log_.LastDurableEvent();
  }

  void SetState(std::string state, std::string reason) {
    source_.state = std::move(state);
    source_.reason = std::move(reason);
    metrics_.GaugeOf("source_streaming", "1 while the slot is being streamed")
        .Set(source_.state == "streaming" ? 1 : 0);
  }

  void OnFatal(const Error& e) {
    // Called from a sink thread: hop onto the loop.
    boost::asio::post(io_, [this, e] { Halt(e); });
  }

  void Halt(const Error& e) {
    spdlog::critical("{} [{}]", e.message, ToString(e.kind));
    exit_code_ = 1;
    Shutdown("halted", e.message);
  }

  // Stops reading; the stream makes what is complete durable and sends a last status
  // update; runners finish their batch in flight. If that takes longer than
  // shutdown_timeout (a sink stuck on a remote write), the process exits anyway: what is
  // durable is consistent, and whatever was in flight is delivered again after a restart.
  void Shutdown(std::string state, std::string reason) {
    if (stopping_) return;
    stopping_ = true;
    SetState(std::move(state), std::move(reason));
    retry_timer_.cancel();
    retention_timer_.cancel();
    registry_timer_.cancel();
    signal_timer_.cancel();
    signals_.cancel();
    reload_signal_.cancel();
    if (http_) http_->Stop();
    if (stream_) stream_->Stop();
    // The watchdog outlives the daemon object when all goes well: it shares only a flag.
    std::thread([finished = finished_, timeout = config_.shutdown_timeout, code = exit_code_] {
      auto deadline = std::chrono::steady_clock::now() + timeout;
      while (std::chrono::steady_clock::now() < deadline) {
        if (*finished) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (*finished) return;
      spdlog::error(
          "shutdown took longer than shutdown_timeout ({} ms): exiting with batches in flight; "
          "what was durable stays so, and they are delivered again after a restart",
          timeout.count());
      spdlog::default_logger()->flush();
      ::_exit(code);
    }).detach();
  }

  void WaitReload() {
    reload_signal_.async_wait([this](boost::system::error_code ec, int) {
      if (ec || stopping_) return;
      Reload();
      WaitReload();
    });
  }

  // SIGHUP: re-reads the config file and applies what can change while running: sinks
  // added, removed or changed (a changed sink is stopped after its batch in flight and
  // started again with its new settings, from its cursor). Anything else needs a restart
  // and is left as it was, with a warning.
  void Reload() {
    auto loaded = LoadConfig(config_.path);
    if (!loaded) {
      spdlog::error("reload (SIGHUP): {}; keeping the running config", loaded.error().message);
      return;
    }
    Config next = std::move(loaded).value();
    const std::vector<std::string> ignored = RestartOnlyChanges(config_, next);
    if (!ignored.empty()) {
      spdlog::warn("reload (SIGHUP): changes to {} need a restart; they are not applied",
                   fmt::join(ignored, ", "));
    }
    // A sink the config cannot make changes nothing. The registry's sinks are made with
    // the new templates: a changed template restarts its sinks from their cursors.
    std::vector<SinkConfig> old_sinks = std::exchange(config_.sinks, next.sinks);
    std::vector<SinkTemplate> old_templates =
        std::exchange(config_.sink_templates, next.sink_templates);
    auto applied = fleet_.Apply(registry_.Definitions());
    if (!applied) {
      config_.sinks = std::move(old_sinks);
      config_.sink_templates = std::move(old_templates);
      registry_.Definitions();  // back to what runs
      spdlog::error("reload (SIGHUP): {}; keeping the running config", applied.error().message);
      return;
    }
    for (const auto& id : applied.value().removed) {
      spdlog::info("reload (SIGHUP): sink {} removed: stopped", id);
    }
    for (const auto& id : applied.value().changed) {
      spdlog::info("reload (SIGHUP): sink {} changed: restarted from its cursor", id);
    }
    for (const auto& id : applied.value().added) spdlog::info("reload (SIGHUP): sink {} added", id);
    spdlog::info("reload (SIGHUP): {} sink(s) running", fleet_.size());
  }

  void Connect() {
    if (stopping_) return;
    if (source_.state != "standby") SetState("connecting", source_.last_error);
    auto started = StartStream();
    if (!started) OnStreamEnded(started.error());
  }

  Result<void> StartStream() {
    // The previous stream has finished and its handlers have run; closing its connection
    // now frees the slot (else the server would still see it active for the old walsender).
    stream_.reset();
    const auto& src = config_.source;
    PGF_TRY(auto sql,
            PgConnection::Connect(src.dsn, PgConnection::Mode::kNormal, "source", src.password));
    PGF_TRY(auto repl, PgConnection::Connect(src.dsn, PgConnection::Mode::kReplication, "source",
                                             src.password));
    PGF_TRY(auto known, LoadLineage(log_, confirm_sinks_));
    // The source as the stream sees it: the tracked tables and the sink registry's table,
    // whose changes are taken out before they reach the log (RegistrySinks).
    Config source_view = config_;
    if (config_.sink_registry.enabled()) {
      PGF_TRY(EnsureRegistryTable(config_.sink_registry, sql));
      source_view.tables.push_back(TableConfig{.schema = config_.sink_registry.schema,
                                               .name = config_.sink_registry.table,
                                               .key = {"sink_id"}});
    }
    // And the signal table, whose rows are requests (SignalQueue), taken out likewise.
    if (config_.source.HasSignalTable()) {
      PGF_TRY(EnsureSignalTable(config_.source, sql));
      source_view.tables.push_back(TableConfig{.schema = config_.source.signal_schema,
                                               .name = config_.source.signal_table,
                                               .key = {"id"}});
    }
    PGF_TRY(auto identity, PrepareSource(source_view, sql, repl, log_));
    // The first time: runners waiting for the source's identity (their lineage) go on now.
    if (!known) fleet_.NotifyAll();
    PGF_TRY(registry_.Connected(sql));
    // The backoff starts afresh only after a stream that lasted (OnStreamEnded): a server
    // that accepts every connect and ends every stream must not be retried in a tight loop.
    stream_started_ = std::chrono::steady_clock::now();
    spdlog::info(
        "source cluster {} timeline {}, server at {}, slot {} confirmed to {}, "
        "event log durable to {}",
        identity.system_id, identity.timeline, identity.server_lsn.ToString(), config_.source.slot,
        identity.slot_confirmed_lsn.ToString(), log_.DurableLsn().ToString());
    source_.system_id = identity.system_id;
    source_.timeline = identity.timeline;
    if (ingest_) PGF_TRY(ingest_->DiscardOpen());
    ingest_.reset();
    // The tables as the source describes them now (keys filled in); the assembler keeps
    // pointers into this vector, so it changes only while no Ingest exists.
    tables_ = source_view.tables;
    for (auto& t : tables_) t.key = identity.keys[t.QualifiedName()];
    ingest_ = std::make_unique<Ingest>(
        log_, tables_,
        [this](const Ingest::Appended& appended) { fleet_.Wake(appended); },
        identity.wal2json);
    ingest_->SetMetrics(metrics_);
    ingest_->SetBeforeAppend([this](std::vector<TransactionRecord>& txs) -> Result<void> {
      PGF_TRY(signal_queue_.BeforeAppend(txs, log_));
      return registry_.BeforeAppend(txs);
    });
    ingest_->SetAfterAppend([this](const std::vector<TransactionRecord>& txs) -> Result<void> {
      if (registry_.enabled()) PGF_TRY(registry_.AfterAppend(txs));
      // Requests of this group commit go to their sinks once its rows are readable.
      if (signal_queue_.pending() > 0) PGF_TRY(FailpointHit("signals.before_pump"));
      PumpSignals();
      return boost::outcome_v2::success();
    });
    StreamHandlers handlers{
        .on_data = [this](Lsn start,
                          std::string_view payload) { return ingest_->OnData(start, payload); },
        .flush = [this](Lsn keepalive_lsn) -> Result<Lsn> {
          PGF_TRY(auto durable, ingest_->Flush(keepalive_lsn));
          if (!confirm_sinks_) return durable;
          return ConfirmAtSinks(durable);
        },
    };
    stream_ = std::make_unique<ReplicationStream>(
        io_, std::move(repl),
        ReplicationStream::Options{.slot = config_.source.slot,
                                   .publication = config_.source.publication,
                                   .decoder = config_.source.decoder,
                                   .tables = tables_,
                                   .start_lsn = log_.DurableLsn(),
                                   .status_interval = config_.source.status_interval},
        std::move(handlers));
    stream_->Start([this](Result<void> r) {
      if (r) {
        attempt_ = 0;
        return;  // stopped on request
      }
      OnStreamEnded(r.error());
    });
    // START_REPLICATION refused (the slot taken meanwhile): the posted `done` says why; this
    // process is not the leader.
    if (stream_->finished()) return boost::outcome_v2::success();
    source_.last_error.clear();
    source_.retry_at.reset();
    SetState("streaming", "");
    // Leader now: the slot is this process's until the stream ends. The server's confirmed
    // position is where reports start (it must not go back; under confirm: sinks a report
    // may not be ahead of it either, until the sinks say so).
    confirm_floor_ = std::max(confirm_floor_, identity.slot_confirmed_lsn);
    sink_hold_at_.reset();
    if (!delivering_.exchange(true)) {
      spdlog::info("leader: holding slot {}; the sinks deliver", config_.source.slot);
      fleet_.NotifyAll();
    }
    return boost::outcome_v2::success();
  }

  // source.confirm: sinks: what the slot is confirmed to (slot_hold.h): no further than
  // `durable` nor than any sink's hold, never back.
  Result<Lsn> ConfirmAtSinks(Lsn durable) {
    const auto now = std::chrono::steady_clock::now();
    if (!sink_hold_at_ || now - *sink_hold_at_ >= kSinkHoldInterval) {
      // The log's position is read before the sinks' statuses: an event appended after it
      // is newer than the hold, one before woke its sinks first.
      const Lsn log_durable = log_.DurableLsn();
      const std::optional<EventId> last = log_.LastDurableEvent();
      PGF_TRY(sink_hold_, SinksConfirmable(fleet_.Runners(), log_, log_durable, last));
      sink_hold_at_ = now;
    }
    confirm_floor_ = std::max(confirm_floor_, std::min(durable, sink_hold_));
    return confirm_floor_;
  }

  void OnStreamEnded(const Error& e) {
    if (stopping_) return;
    if (e.kind == ErrorKind::kBusy) return Standby(e);
    metrics_
        .CounterOf("errors_total", "Errors, by component and kind",
                   {{"component", "source"}, {"kind", ToString(e.kind)}})
        .Add();
    if (DecideRetry(e.kind, /*in_sink=*/false) != Directive::kRetry) return Halt(e);
    // A stream that logged a transaction, or lasted, was healthy: the backoff restarts.
    // Only streams that end before any progress (a server that accepts every connect and
    // ends every stream, an error it repeats) back off further. Without the first test
    // a connection reset every few seconds under load ran the backoff up to 30 s and let
    // the slot retain 1.5 GB of WAL (the fault suite's connection-reset scenario).
    if ((ingest_ && ingest_->transactions_logged() > 0) ||
        (stream_started_ &&
         std::chrono::steady_clock::now() - *stream_started_ >= kStableStream)) {
      attempt_ = 0;
    }
    stream_started_.reset();
    auto wait = Backoff(attempt_++, std::chrono::milliseconds(500), std::chrono::seconds(30));
    spdlog::warn("source: {}; reconnecting in {} ms (attempt {})", e.message, wait.count(),
                 attempt_);
    ++source_.reconnects;
    metrics_.CounterOf("source_reconnects_total", "Reconnects to the source after a loss").Add();
    source_.last_error = e.message;
    source_.retry_at = std::chrono::system_clock::now() + wait;
    SetState("reconnecting", e.message);
    retry_timer_.expires_after(wait);
    retry_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Connect();
    });
  }

  // Another walsender holds the slot (another pgfanout, or this one's previous connection
  // not yet timed out): this process is a standby. It delivers nothing from its local log
  // (fencing: what it would write is old; the leader owns the destinations) and asks for
  // the slot every kStandbyPoll, taking over as soon as the server frees it.
  void Standby(const Error& e) {
    stream_started_.reset();
    // Under confirm: log the state dir is the only copy of what its sinks have not taken,
    // and a second pgfanout on the slot is a mistake the slot checks catch: its sinks go on.
    const bool was_delivering = confirm_sinks_ && delivering_.exchange(false);
    if (source_.state != "standby") {
      spdlog::warn("standby: {}; delivering nothing, asking for the slot every {} ms{}", e.message,
                   kStandbyPoll.count(),
                   was_delivering ? " (this process lost the slot: its sinks stop after the "
                                    "batch in flight)"
                                  : "");
      metrics_
          .CounterOf("source_standby_total",
                     "Times this process found the slot held by another and became a standby")
          .Add();
    }
    if (was_delivering) fleet_.NotifyAll();  // each runner's next turn closes its sink
    source_.last_error = e.message;
    source_.retry_at = std::chrono::system_clock::now() + kStandbyPoll;
    SetState("standby", e.message);
    retry_timer_.expires_after(kStandbyPoll);
    retry_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Connect();
    });
  }

  void ScheduleRegistryReap() {
    registry_timer_.expires_after(std::chrono::milliseconds(250));
    registry_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping_) return;
      if (auto r = registry_.Reap(); !r) {
        if (DecideRetry(r.error().kind, /*in_sink=*/false) != Directive::kRetry) {
          return Halt(r.error());
        }
        spdlog::warn("sink registry: {}", r.error().message);
      }
      ScheduleRegistryReap();
    });
  }

  // Hands the signal table's queued requests to their sinks; a busy sink's wait here.
  void PumpSignals() {
    if (signal_queue_.pending() == 0) return;
    auto pumped = signal_queue_.Pump(log_, [this](const SignalQueue::Request& q) {
      auto asked = AskResnapshot(config_, fleet_, q.sink_id, q.table, q.replace,
                                 "signal table, row at " + q.id.ToString());
      if (!asked && asked.error().kind == ErrorKind::kBusy) return SignalQueue::Answer::kBusy;
      const char* result = asked ? "taken" : "refused";
      metrics_
          .CounterOf("signals_total",
                     "Requests from source.signal_table: taken by their sink, or refused "
                     "(no such sink, a table it does not receive)",
                     {{"result", result}})
          .Add();
      if (asked) return SignalQueue::Answer::kTaken;
      spdlog::error("signal table: the request at {} is dropped: {}", q.id.ToString(),
                    asked.error().message);
      return SignalQueue::Answer::kRefused;
    });
    if (!pumped) spdlog::warn("signal table: {} (tried again shortly)", pumped.error().message);
  }

  // Every sink that receives `table` copies it again, replacing (Monitor::PartitionRepair).
  void RepairTable(const std::string& table) {
    const size_t dot = table.find('.');
    const TableConfig* t = config_.FindTable(table.substr(0, dot), table.substr(dot + 1));
    if (!t) return;
    for (const auto& d : fleet_.Definitions()) {
      if (d.Receives(*t)) repairs_[d.id].insert(table);
    }
    PumpRepairs();
  }

  // Hands the repairs on; a busy sink's wait for the next pump. Kept in memory only: a
  // restart before its sink took one loses it (README: partitioned tables).
  void PumpRepairs() {
    for (auto it = repairs_.begin(); it != repairs_.end();) {
      auto& tables = it->second;
      for (auto t = tables.begin(); t != tables.end();) {
        auto asked =
            AskResnapshot(config_, fleet_, it->first, *t, /*replace=*/true, "partition change");
        if (!asked && asked.error().kind == ErrorKind::kBusy) break;  // one at a time
        if (!asked) {
          spdlog::error("sink {}: {} is not copied again after its partition change: {}", it->first,
                        *t, asked.error().message);
        }
        t = tables.erase(t);
      }
      it = tables.empty() ? repairs_.erase(it) : std::next(it);
    }
  }

  void ScheduleRequestPump() {
    signal_timer_.expires_after(std::chrono::seconds(1));
    signal_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping_) return;
      PumpSignals();
      PumpRepairs();
      ScheduleRequestPump();
    });
  }

  void ScheduleRetention() {
    retention_timer_.expires_after(kRetentionInterval);
    retention_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping_) return;
      if (auto r = retention_.Trim(fleet_.Runners()); !r) {
        spdlog::warn("retention: {}", r.error().message);
      }
      ScheduleRetention();
    });
  }

  Config config_;
  EventLog& log_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  boost::asio::signal_set reload_signal_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer retention_timer_;
  boost::asio::steady_timer registry_timer_;  // retiring registry sinks (RegistrySinks::Reap)
  boost::asio::steady_timer signal_timer_;    // requests waiting for a busy sink
  // Tables to copy again after a partition change, per sink (RepairTable).
  std::map<std::string, std::set<std::string>> repairs_;
  // source.signal_table's requests (resnapshots), in commit order.
  SignalQueue signal_queue_{config_.source.signal_schema, config_.source.signal_table};
  MetricsRegistry metrics_;
  Retention retention_;
  // Copies of existing rows in progress at once (backfill_concurrency).
  // metrics.per_sink, decided once at start from the sinks then (a reload keeps it).
  const bool per_sink_series_ = config_.PerSinkSeries();
  const bool confirm_sinks_ = config_.source.confirm == SourceConfig::Confirm::kSinks;
  // Open while this process may deliver. Under confirm: log always (the log is its own to
  // deliver); under confirm: sinks only as the leader: closed until it holds the slot and
  // while another does. Runners read it by pointer: declared before the fleet.
  std::atomic<bool> delivering_{!confirm_sinks_};
  // Before the monitor, which reads the sinks' statuses.
  SinkFleet fleet_;
  RegistrySinks registry_;
  std::mutex turns_mu_;
  uint64_t turns_exported_ = 0;  // delivery_turns_total so far
  Monitor monitor_;
  std::unique_ptr<HttpServer> http_;
  std::vector<TableConfig> tables_;
  std::unique_ptr<Ingest> ingest_;
  std::unique_ptr<ReplicationStream> stream_;
  SourceState source_;
  bool stopping_ = false;
  Lsn confirm_floor_;  // the last position reported under confirm: sinks (never goes back)
  Lsn sink_hold_;      // the sinks' hold as last computed, at sink_hold_at_
  std::optional<std::chrono::steady_clock::time_point> sink_hold_at_;
  std::shared_ptr<std::atomic<bool>> finished_ = std::make_shared<std::atomic<bool>>(false);
  int attempt_ = 0;
  // When the current stream started (after the source checks passed); nullopt before.
  std::optional<std::chrono::steady_clock::time_point> stream_started_;
  int exit_code_ = 0;
};

}  // namespace

int RunDaemon(const Config& config) {
  // As many file descriptors as the system lets this process have (the soft limit is
  // often far below the hard one).
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  for (const auto& w : config.warnings) spdlog::warn("{}", w);
  std::error_code ec;
  std::filesystem::create_directories(config.state_dir, ec);
  // The state dir holds every tenant's rows: the daemon's user's only. A dir made before
  // (or by hand) with wider rights is narrowed, and said so.
  struct stat st {};
  if (::stat(config.state_dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    if (::chmod(config.state_dir.c_str(), 0700) == 0) {
      spdlog::warn("state dir {} was readable by other users (mode {:o}); made it 0700",
                   config.state_dir, st.st_mode & 0777);
    } else {
      spdlog::warn("state dir {} is readable by other users (mode {:o}) and cannot be changed: {}",
                   config.state_dir, st.st_mode & 0777, std::strerror(errno));
    }
  }
  auto log = OpenRocksDbEventLog(config.state_dir + "/log");
  if (!log) {
    spdlog::critical("{}", log.error().message);
    return 1;
  }
  Daemon daemon(config, *log.value());
  if (auto r = daemon.Init(); !r) {
    spdlog::critical("{}", r.error().message);
    return 1;
  }
  return daemon.Run();
}

}  // namespace pgfanout
