#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "src/config/config.h"
#include "src/core/error.h"
#include "src/core/lsn.h"
#include "src/pgclient/pg_connection.h"

namespace pgfanout {

// What the stream hands on. Both run on the io_context's thread.
struct StreamHandlers {
  // One XLogData payload (a pgoutput message) starting at `wal_start`.
  std::function<Result<void>(Lsn wal_start, std::string_view payload)> on_data;
  // Makes everything received so far that is complete durable and returns the LSN that
  // may be reported as flushed (the end of the last durable transaction). Called when
  // the socket has been drained, before any status update is sent. `keepalive_lsn` is the
  // latest position a keepalive reported: every transaction committed before it has been
  // received, so when nothing is in flight the pipeline may make it durable too and the
  // slot advances while the tracked tables are quiet (heartbeat).
  std::function<Result<Lsn>(Lsn keepalive_lsn)> flush;
};

// Streams a logical replication slot over a replication connection, on Boost.Asio:
// waits for the libpq socket to be readable (no busy polling, no blocking read on the
// loop), drains complete CopyData messages, and sends standby status updates at once
// when a keepalive asks for one, after the flush LSN moves, and every `status_interval`.
// The flush LSN reported is only ever what StreamHandlers::flush returned.
//
// Lifecycle: Start() once; `done` is called exactly once, on the io_context thread, with
// the error that ended the stream, or success after Stop().
class ReplicationStream {
 public:
  struct Options {
    std::string slot;
    std::string publication;  // pgoutput only
    // The slot's output plugin: "pgoutput" (protocol v2, streaming) or "wal2json"
    // (format-version 2, with the options decoders/wal2json/reader.h needs, and add-tables
    // naming `tables`).
    std::string decoder = "pgoutput";
    std::vector<TableConfig> tables;
    Lsn start_lsn;  // 0/0: the slot's confirmed position
    std::chrono::milliseconds status_interval{10'000};
  };

  ReplicationStream(boost::asio::io_context& io, PgConnection connection, Options options,
                    StreamHandlers handlers);
  ~ReplicationStream();

  void Start(std::function<void(Result<void>)> done);
  // Stops reading, makes what is complete durable, sends a last status update.
  void Stop();

  Lsn received_lsn() const { return received_lsn_; }
  // Ended (or failed to start); `done` is posted, not yet run.
  bool finished() const { return finished_; }
  Lsn reported_flush_lsn() const { return reported_flush_; }

 private:
  void WaitReadable();
  bool SocketReadable() const;
  void ReadAvailable();
  Result<bool> HandleCopyData(const char* buf, int len);  // true: reply requested
  Result<void> FlushAndReport(bool force);
  Result<void> SendStatus();
  Result<void> FlushOutput();
  void ArmTimer();
  void Finish(Result<void> result);

  boost::asio::io_context& io_;
  PgConnection conn_;
  Options options_;
  StreamHandlers handlers_;
  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer timer_;
  std::function<void(Result<void>)> done_;
  bool finished_ = false;
  bool writing_ = false;
  Lsn received_lsn_;
  Lsn keepalive_lsn_;
  Lsn durable_lsn_;
  Lsn reported_flush_;
  std::chrono::steady_clock::time_point last_status_{};
};

}  // namespace pgfanout
