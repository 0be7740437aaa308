#include "src/daemon/daemon.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <map>

#include "checkpoints/event_log.h"
#include "src/daemon/backfill.h"
#include "src/pipeline/ingest.h"
#include "src/pipeline/retry_policy.h"
#include "src/pipeline/sink_runner.h"
#include "src/source/replication_stream.h"
#include "src/source/source_row_fetcher.h"
#include "src/source/source_setup.h"

namespace pgfanout {
namespace {

constexpr auto kRetentionInterval = std::chrono::seconds(10);

class Daemon {
 public:
  Daemon(const Config& config, EventLog& log)
      : config_(config),
        log_(log),
        signals_(io_, SIGINT, SIGTERM),
        retry_timer_(io_),
        retention_timer_(io_) {}

  Result<void> Init() {
    for (const auto& sc : config_.sinks) {
      PGF_TRY(auto sink, MakeSink(sc, config_.tables));
      runners_.push_back(std::make_unique<SinkRunner>(sc, config_.tables, std::move(sink), log_,
                                                      [this](const Error& e) { OnFatal(e); }));
      runners_.back()->SetRowFetcher(
          std::make_unique<SourceRowFetcher>(config_.source.dsn, config_.tables));
      // A new sink, or one with a new table, first gets the rows that exist already.
      runners_.back()->SetBackfill([this, &sc](Sink& s, const std::function<bool()>& stopping,
                                               const std::vector<std::string>& tables) {
        return BackfillSink(config_, sc, s, log_,
                            BackfillOptions{.tables = tables, .stopping = stopping});
      });
    }
    return boost::outcome_v2::success();
  }

  int Run() {
    for (auto& r : runners_) r->Start();
    signals_.async_wait([this](boost::system::error_code ec, int sig) {
      if (ec) return;
      spdlog::info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
      stopping_ = true;
      retry_timer_.cancel();
      retention_timer_.cancel();
      if (stream_) stream_->Stop();
    });
    ScheduleRetention();
    boost::asio::post(io_, [this] { Connect(); });
    io_.run();
    for (auto& r : runners_) r->Stop();
    spdlog::info("stopped; event log durable up to {}", log_.DurableLsn().ToString());
    return exit_code_;
  }

 private:
  void OnFatal(const Error& e) {
    // Called from a sink thread: hop onto the loop.
    boost::asio::post(io_, [this, e] { Halt(e); });
  }

  void Halt(const Error& e) {
    spdlog::critical("{} [{}]", e.message, ToString(e.kind));
    exit_code_ = 1;
    stopping_ = true;
    retry_timer_.cancel();
    retention_timer_.cancel();
    signals_.cancel();
    if (stream_) stream_->Stop();
  }

  void Connect() {
    if (stopping_) return;
    auto started = StartStream();
    if (!started) OnStreamEnded(started.error());
  }

  Result<void> StartStream() {
    // The previous stream has finished and its handlers have run; closing its connection
    // now frees the slot (else the server would still see it active for the old walsender).
    stream_.reset();
    PGF_TRY(auto sql, PgConnection::Connect(config_.source.dsn, PgConnection::Mode::kNormal));
    PGF_TRY(auto repl, PgConnection::Connect(config_.source.dsn, PgConnection::Mode::kReplication));
    PGF_TRY(auto identity, PrepareSource(config_, sql, repl, log_));
    attempt_ = 0;  // connected and checked: the next loss starts its backoff afresh
    spdlog::info(
        "source cluster {} timeline {}, server at {}, slot {} confirmed to {}, "
        "event log durable to {}",
        identity.system_id, identity.timeline, identity.server_lsn.ToString(), config_.source.slot,
        identity.slot_confirmed_lsn.ToString(), log_.DurableLsn().ToString());
    if (ingest_) PGF_TRY(ingest_->DiscardOpen());
    ingest_.reset();
    // The tables as the source describes them now (keys filled in); the assembler keeps
    // pointers into this vector, so it changes only while no Ingest exists.
    tables_ = config_.tables;
    for (auto& t : tables_) t.key = identity.keys[t.QualifiedName()];
    ingest_ = std::make_unique<Ingest>(log_, tables_, [this] {
      for (auto& r : runners_) r->Notify();
    });
    StreamHandlers handlers{
        .on_data = [this](Lsn start,
                          std::string_view payload) { return ingest_->OnData(start, payload); },
        .flush = [this](Lsn keepalive_lsn) { return ingest_->Flush(keepalive_lsn); },
    };
    stream_ = std::make_unique<ReplicationStream>(
        io_, std::move(repl),
        ReplicationStream::Options{.slot = config_.source.slot,
                                   .publication = config_.source.publication,
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
    return boost::outcome_v2::success();
  }

  void OnStreamEnded(const Error& e) {
    if (stopping_) return;
    if (DecideRetry(e.kind, /*in_sink=*/false) != Directive::kRetry) return Halt(e);
    auto wait = Backoff(attempt_++, std::chrono::milliseconds(500), std::chrono::seconds(30));
    spdlog::warn("source: {}; reconnecting in {} ms (attempt {})", e.message, wait.count(),
                 attempt_);
    retry_timer_.expires_after(wait);
    retry_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Connect();
    });
  }

  // Deletes events every sink has passed and that are older than log.retain.
  void ScheduleRetention() {
    retention_timer_.expires_after(kRetentionInterval);
    retention_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping_) return;
      if (auto r = TrimLog(); !r) spdlog::warn("retention: {}", r.error().message);
      ScheduleRetention();
    });
  }

  Result<void> TrimLog() {
    const bool drop = config_.log.lagging_sinks == LaggingSinkPolicy::kDrop;
    std::optional<EventId> min_cursor;
    for (auto& r : runners_) {
      auto c = r->status().cursor;
      if (!c) {
        if (!drop) return boost::outcome_v2::success();  // a sink that has not started yet
        continue;
      }
      if (!min_cursor || *c < *min_cursor) min_cursor = c;
    }
    const auto now = std::chrono::system_clock::now();
    auto cutoff = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch() -
                                                                        config_.log.retain)
                      .count();
    if (!drop) PGF_TRY(WarnLaggingSinks(cutoff, now));
    PGF_TRY(auto first, log_.FirstRetainedEvent());
    if (!first) return boost::outcome_v2::success();
    // Find the last event that is old enough and (policy hold) passed by every sink.
    std::optional<EventId> through;
    EventId after{first->commit_lsn, 0};
    if (first->ordinal == 0 && first->commit_lsn.value() > 0) {
      after = EventId{Lsn(first->commit_lsn.value() - 1), UINT32_MAX};
    }
    while (true) {
      PGF_TRY(auto events, log_.Read(after, 4096));
      bool done = events.empty();
      for (const auto& ev : events) {
        // Whole transactions only: the log then always starts at a transaction's first
        // event, so a replay from a retained commit LSN never gets half a transaction.
        bool held = !drop && min_cursor && ev.id.commit_lsn >= min_cursor->commit_lsn;
        if (held || ev.commit_time_us >= cutoff) {
          done = true;
          break;
        }
        through = ev.id;
      }
      if (done) break;
      after = events.back().id;
    }
    if (!through) return boost::outcome_v2::success();
    // Recorded first: a sink whose cursor is behind it knows events are gone (it stops).
    PGF_TRY(log_.PutMeta(SinkRunner::kTrimmedThroughKey, through->ToString()));
    PGF_TRY(log_.Trim(*through));
    for (auto& r : runners_) {
      auto c = r->status().cursor;
      if (c && *c < *through) {
        spdlog::error(
            "sink {} was {} behind: retention trimmed events through {} that it had not "
            "taken (log.lagging_sinks: drop); it stops and needs a fresh snapshot",
            r->id(), c->ToString(), through->ToString());
        r->Notify();
      }
    }
    return boost::outcome_v2::success();
  }

  // Policy hold: says loudly, once a minute per sink, which sink keeps events past
  // log.retain and how old its oldest undelivered event is.
  Result<void> WarnLaggingSinks(int64_t cutoff_us, std::chrono::system_clock::time_point now) {
    for (auto& r : runners_) {
      auto st = r->status();
      if (!st.cursor) continue;
      PGF_TRY(auto next, log_.Read(*st.cursor, 1));
      if (next.empty() || next[0].commit_time_us >= cutoff_us) continue;
      auto& last = last_lag_warning_[r->id()];
      if (now - last < std::chrono::minutes(1)) continue;
      last = now;
      auto age = std::chrono::duration_cast<std::chrono::seconds>(
          now.time_since_epoch() - std::chrono::microseconds(next[0].commit_time_us));
      spdlog::warn(
          "sink {} is behind log.retain: its oldest undelivered event ({}) is {} s old{}. "
          "The event log keeps it (log.lagging_sinks: hold), so the state dir grows until "
          "the sink catches up",
          r->id(), next[0].id.ToString(), age.count(),
          st.last_error.empty() ? "" : "; last error: " + st.last_error);
    }
    return boost::outcome_v2::success();
  }

  const Config& config_;
  EventLog& log_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer retention_timer_;
  std::vector<std::unique_ptr<SinkRunner>> runners_;
  std::vector<TableConfig> tables_;
  std::unique_ptr<Ingest> ingest_;
  std::unique_ptr<ReplicationStream> stream_;
  std::map<std::string, std::chrono::system_clock::time_point> last_lag_warning_;
  bool stopping_ = false;
  int attempt_ = 0;
  int exit_code_ = 0;
};

}  // namespace

int RunDaemon(const Config& config) {
  std::error_code ec;
  std::filesystem::create_directories(config.state_dir, ec);
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
