#include "src/source/replication_stream.h"

#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <cctype>
#include <cstdlib>

#include "src/core/failpoint.h"

namespace pgfanout {
namespace {

// Messages handled per wake-up before other handlers (timer, signals) get a turn.
constexpr int kMaxMessagesPerTurn = 20'000;
// Status updates after a flush are rate-limited to this; keepalive replies are not.
constexpr auto kMinStatusGap = std::chrono::milliseconds(200);
constexpr int64_t kPostgresEpochUnixSeconds = 946'684'800;

uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void PutU64(char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

int64_t NowPostgresMicros() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::microseconds>(now).count() -
         kPostgresEpochUnixSeconds * 1'000'000;
}

// add-tables takes "schema.table" items separated by commas; a backslash escapes the
// next character, and '*' alone means every schema or table (wal2json's
// string_to_SelectTable), so those, the separators and white space get a backslash.
std::string Wal2JsonTableName(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '\\' || c == ',' || c == '.' || c == '*' ||
        std::isspace(static_cast<unsigned char>(c))) {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
}

// A replication command's option value: a plain SQL string literal (the replication
// grammar knows no E'' strings, so backslashes stay as they are).
std::string OptionLiteral(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  return out + "'";
}

// START_REPLICATION's plugin options. For wal2json: what the reader needs
// (decoders/wal2json/reader.h) and only the tracked tables.
std::string PluginOptions(const PgConnection& conn, const ReplicationStream::Options& o) {
  if (o.decoder != "wal2json") {
    // publication_names is a string literal holding a list of identifiers
    return fmt::format("proto_version '2', streaming 'on', publication_names {}",
                       "'" + conn.QuoteIdent(o.publication) + "'");
  }
  std::string tables;
  for (const auto& t : o.tables) {
    if (!tables.empty()) tables += ',';
    tables += Wal2JsonTableName(t.schema) + "." + Wal2JsonTableName(t.name);
  }
  return "\"format-version\" '2', \"include-xids\" '1', \"include-timestamp\" '1', "
         "\"include-lsn\" '1', \"include-types\" '1', \"include-typmod\" '1', "
         "\"include-type-oids\" '1', \"include-pk\" '1', \"include-column-positions\" '1', "
         "\"include-transaction\" '1', \"add-tables\" " +
         OptionLiteral(tables);
}

Error StreamError(const PgConnection& conn, std::string_view what) {
  return MakeError(ErrorKind::kConnection,
                   fmt::format("replication stream: {}: {}", what, conn.LastError()));
}

// An error the walsender ended the stream with. Most are worth a reconnect (the server
// shut down, an admin ended the backend); these cannot heal by retrying, and a reconnect
// would only meet them again: kMismatch, with what to do.
Error ServerEnded(const PGresult* result, const ReplicationStream::Options& o) {
  const std::string msg = result ? ServerErrorText(result) : "";
  const char* state_field = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string state = state_field ? state_field : "";
  const char* primary_field =
      result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  const std::string primary = primary_field ? primary_field : msg;
  const std::string text =
      fmt::format("the server ended replication{}{}", msg.empty() ? "" : ": ", msg);
  if (state == "42704" && primary.find("publication") != std::string::npos) {
    return MakeError(
        ErrorKind::kMismatch,
        fmt::format("{}. pgoutput reads publication {} as of each change's position, and slot "
                    "{} holds changes from before it was created (the publication was dropped and "
                    "made again, or a slot made before it was adopted under source.confirm: "
                    "sinks, which never moves a slot it finds), so every reconnect fails the "
                    "same way. "
                    "Move the slot past the publication's creation (SELECT "
                    "pg_replication_slot_advance('{}', pg_current_wal_lsn()); changes before "
                    "that are not streamed, backfill copies the rows) or create the slot "
                    "after the publication, with a new state_dir",
                    text, o.publication, o.slot, o.slot));
  }
  if (state == "42704" || state == "55000" || state == "58P01" || state == "42501") {
    // No such slot (dropped meanwhile); a slot invalidated or used by another plugin; WAL
    // the slot needs was removed; no right to replicate.
    return MakeError(ErrorKind::kMismatch,
                     fmt::format("{} (SQLSTATE {}); retrying cannot change that", text, state));
  }
  return MakeError(ErrorKind::kConnection, text);
}

}  // namespace

ReplicationStream::ReplicationStream(boost::asio::io_context& io, PgConnection connection,
                                     Options options, StreamHandlers handlers)
    : io_(io),
      conn_(std::move(connection)),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      socket_(io),
      timer_(io) {}

ReplicationStream::~ReplicationStream() {
  // libpq owns the socket: take it back from Asio before the descriptor would close it.
  if (socket_.is_open()) socket_.release();
}

void ReplicationStream::Start(std::function<void(Result<void>)> done) {
  done_ = std::move(done);
  std::string cmd =
      fmt::format("START_REPLICATION SLOT {} LOGICAL {} ({})", conn_.QuoteIdent(options_.slot),
                  options_.start_lsn.ToString(), PluginOptions(conn_, options_));
  auto started = conn_.ExecSimple("START_REPLICATION", cmd);
  if (!started) {
    Error e = started.error();
    // 55006: another walsender took the slot between the setup check and this command
    // (a second pgfanout, or the old connection not yet gone): worth a retry, not a halt.
    // The daemon waits for the slot as a standby.
    if (SqlStateOf(e) == "55006") e.kind = ErrorKind::kBusy;
    return Finish(std::move(e));
  }
  if (PQresultStatus(started.value().get()) != PGRES_COPY_BOTH) {
    return Finish(MakeError(ErrorKind::kProtocol, "START_REPLICATION did not enter COPY mode"));
  }
  if (PQsetnonblocking(conn_.get(), 1) != 0) {
    return Finish(StreamError(conn_, "cannot switch libpq to non-blocking mode"));
  }
  spdlog::info(
      "streaming slot {} from {}", options_.slot,
      options_.start_lsn.IsZero() ? "its confirmed position" : options_.start_lsn.ToString());
  socket_.assign(PQsocket(conn_.get()));
  ArmTimer();
  ReadAvailable();  // libpq may already hold data read along with the COPY response
}

bool ReplicationStream::SocketReadable() const {
  pollfd pfd{.fd = PQsocket(conn_.get()), .events = POLLIN, .revents = 0};
  return ::poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

void ReplicationStream::WaitReadable() {
  if (finished_) return;
  socket_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [this](boost::system::error_code ec) {
                       if (finished_) return;
                       if (ec) return Finish(MakeError(ErrorKind::kConnection, ec.message()));
                       if (PQconsumeInput(conn_.get()) == 0) {
                         return Finish(StreamError(conn_, "reading"));
                       }
                       ReadAvailable();
                     });
}

void ReplicationStream::ReadAvailable() {
  bool reply_requested = false;
  for (int handled = 0; handled < kMaxMessagesPerTurn; ++handled) {
    char* buf = nullptr;
    int len = PQgetCopyData(conn_.get(), &buf, 1);
    if (len == 0) {
      // Asio waits edge-triggered and PQconsumeInput reads one buffer's worth: bytes may
      // still sit in the socket with no new edge to come. Read on while it has any.
      if (SocketReadable()) {
        if (PQconsumeInput(conn_.get()) == 0) return Finish(StreamError(conn_, "reading"));
        continue;
      }
      // Drained: make it durable, report, wait for more.
      if (auto r = FlushAndReport(reply_requested); !r) return Finish(r.error());
      return WaitReadable();
    }
    if (len == -1) {
      PgResult result(PQgetResult(conn_.get()));
      return Finish(ServerEnded(result.get(), options_));
    }
    if (len < 0) return Finish(StreamError(conn_, "reading CopyData"));
    auto handled_msg = HandleCopyData(buf, len);
    PQfreemem(buf);
    if (!handled_msg) return Finish(handled_msg.error());
    reply_requested = reply_requested || handled_msg.value();
  }
  // More may be buffered inside libpq: make progress durable, then continue after other
  // handlers had a turn.
  if (auto r = FlushAndReport(reply_requested); !r) return Finish(r.error());
  boost::asio::post(io_, [this] {
    if (!finished_) ReadAvailable();
  });
}

Result<bool> ReplicationStream::HandleCopyData(const char* buf, int len) {
  if (len >= 25 && buf[0] == 'w') {
    Lsn wal_start(GetU64(buf + 1));
    Lsn wal_end(GetU64(buf + 9));
    if (wal_end > received_lsn_) received_lsn_ = wal_end;
    PGF_TRY(
        handlers_.on_data(wal_start, std::string_view(buf + 25, static_cast<size_t>(len - 25))));
    return false;
  }
  if (len >= 18 && buf[0] == 'k') {
    Lsn wal_end(GetU64(buf + 1));
    if (wal_end > received_lsn_) received_lsn_ = wal_end;
    // Everything the server decoded before this point has been sent ahead of it.
    if (wal_end > keepalive_lsn_) keepalive_lsn_ = wal_end;
    return buf[17] != 0;
  }
  return MakeError(ErrorKind::kProtocol,
                   fmt::format("unexpected CopyData message '{}' of {} bytes on the "
                               "replication stream",
                               len > 0 ? buf[0] : '?', len));
}

Result<void> ReplicationStream::FlushAndReport(bool force) {
#ifdef PGFANOUT_NEGATIVE_CONTROL
  // The fault suite's negative control, a separate test binary and never the product: it
  // tells the server that all it received is safe *before* the event log has it, so a
  // crash at the failpoint loses events. The suite must see that loss.
  const char* control = std::getenv("PGFANOUT_NEGATIVE_CONTROL");
  const bool confirm_early = control == nullptr || std::string_view(control) == "confirm_early";
  if (confirm_early && received_lsn_ > reported_flush_) {
    durable_lsn_ = received_lsn_;
    PGF_TRY(SendStatus());
    PGF_TRY(FailpointHit("log.after_commit"));
  }
#endif
  PGF_TRY(durable_lsn_, handlers_.flush(keepalive_lsn_));
  auto now = std::chrono::steady_clock::now();
  bool moved = durable_lsn_ > reported_flush_ && now - last_status_ >= kMinStatusGap;
  if (force || moved) {
    PGF_TRY(FailpointHit("log.after_commit"));
    return SendStatus();
  }
  return boost::outcome_v2::success();
}

Result<void> ReplicationStream::SendStatus() {
  char msg[34];
  msg[0] = 'r';
  // write = what we received; flush = apply = only what the event log made durable.
  PutU64(msg + 1, std::max(received_lsn_, durable_lsn_).value());
  PutU64(msg + 9, durable_lsn_.value());
  PutU64(msg + 17, durable_lsn_.value());
  PutU64(msg + 25, static_cast<uint64_t>(NowPostgresMicros()));
  msg[33] = 0;
  if (PQputCopyData(conn_.get(), msg, sizeof msg) != 1) {
    return StreamError(conn_, "sending a status update");
  }
  reported_flush_ = durable_lsn_;
  last_status_ = std::chrono::steady_clock::now();
  return FlushOutput();
}

Result<void> ReplicationStream::FlushOutput() {
  if (writing_) return boost::outcome_v2::success();
  int r = PQflush(conn_.get());
  if (r < 0) return StreamError(conn_, "sending");
  if (r == 0) return boost::outcome_v2::success();
  writing_ = true;
  socket_.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                     [this](boost::system::error_code ec) {
                       writing_ = false;
                       if (finished_) return;
                       if (ec) return Finish(MakeError(ErrorKind::kConnection, ec.message()));
                       if (auto r = FlushOutput(); !r) Finish(r.error());
                     });
  return boost::outcome_v2::success();
}

void ReplicationStream::ArmTimer() {
  timer_.expires_after(options_.status_interval);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || finished_) return;
    auto r = FlushAndReport(true);
    if (!r) return Finish(r.error());
    ArmTimer();
  });
}

void ReplicationStream::Stop() {
  if (finished_) return;
  // Last words: what is complete becomes durable and the server hears how far.
  auto r = FlushAndReport(true);
  if (r) {
    PQsetnonblocking(conn_.get(), 0);
    PQflush(conn_.get());
  }
  Finish(r ? Result<void>(boost::outcome_v2::success()) : Result<void>(r.error()));
}

void ReplicationStream::Finish(Result<void> result) {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  if (socket_.is_open()) {
    socket_.cancel();
    socket_.release();
  }
  if (done_) {
    auto done = std::move(done_);
    boost::asio::post(io_, [done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }
}

}  // namespace pgfanout
