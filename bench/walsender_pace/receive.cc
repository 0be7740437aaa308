// The walsender's pace: a replication client that asks for exactly what pgfanout asks
// (START_REPLICATION … LOGICAL with the same plugin options), reads every CopyData message
// and throws the payloads away, answers keepalives, reports what it received each time
// the socket is drained (as pgfanout does) and confirms the end position once it has it.
// It writes nothing, unlike pg_recvlogical (one write() per message to its output): the
// baseline the decode and end-to-end ratios in BENCHMARKS.md are taken against.
//
//   receive_only "<conninfo with replication=database>" <slot> <endpos X/X>
//                "<plugin options, as in START_REPLICATION (…)>"
// Prints: seconds messages bytes
//
// Measured on the 2-core bench machine (100k single-row transactions): how the client
// reads changes the walsender's speed. Waking for every message (this client, as is)
// took 2.1 s; pausing 200 µs after each drain, so reads come in larger gulps, 1.6 s; 3 ms,
// 5.0 s (the walsender then waits for socket space); pgfanout (a drain, an fsync, a
// report) 1.2-1.3 s on the same WAL. So this is the pace of a client that does nothing
// but read as messages come, not a bound no client can pass. PACE_DRAIN_PAUSE_US sets
// the pause (default 0) to repeat that.
#include <libpq-fe.h>
#include <sys/select.h>
#include <unistd.h>

#include <cstdlib>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

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

bool ParseLsn(const char* text, uint64_t& out) {
  unsigned hi = 0, lo = 0;
  if (std::sscanf(text, "%X/%X", &hi, &lo) != 2) return false;
  out = (uint64_t{hi} << 32) | lo;
  return true;
}

// Standby status update: received = flushed = applied = `lsn`.
bool SendStatus(PGconn* conn, uint64_t lsn) {
  char buf[34];
  buf[0] = 'r';
  PutU64(buf + 1, lsn);
  PutU64(buf + 9, lsn);
  PutU64(buf + 17, lsn);
  PutU64(buf + 25, 0);
  buf[33] = 0;
  return PQputCopyData(conn, buf, sizeof buf) == 1 && PQflush(conn) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s CONNINFO SLOT ENDPOS PLUGIN_OPTIONS\n", argv[0]);
    return 2;
  }
  uint64_t endpos = 0;
  if (!ParseLsn(argv[3], endpos)) {
    std::fprintf(stderr, "endpos %s is not an LSN\n", argv[3]);
    return 2;
  }
  PGconn* conn = PQconnectdb(argv[1]);
  if (PQstatus(conn) != CONNECTION_OK) {
    std::fprintf(stderr, "connect: %s", PQerrorMessage(conn));
    return 1;
  }
  const auto started = std::chrono::steady_clock::now();
  const std::string cmd = std::string("START_REPLICATION SLOT \"") + argv[2] + "\" LOGICAL 0/0 (" +
                          argv[4] + ")";
  PGresult* r = PQexec(conn, cmd.c_str());
  if (PQresultStatus(r) != PGRES_COPY_BOTH) {
    std::fprintf(stderr, "START_REPLICATION: %s", PQerrorMessage(conn));
    return 1;
  }
  PQclear(r);
  uint64_t received = 0, reported = 0, messages = 0, bytes = 0;
  const char* pause_env = std::getenv("PACE_DRAIN_PAUSE_US");
  const useconds_t drain_pause_us = pause_env ? static_cast<useconds_t>(std::atoi(pause_env)) : 0;
  while (received < endpos) {
    char* buf = nullptr;
    const int len = PQgetCopyData(conn, &buf, 1);
    if (len == 0) {
      // The socket is drained: report what was received, as pgfanout reports after each
      // drain (a walsender that never hears back paces itself differently), then wait.
      if (received > reported) {
        if (!SendStatus(conn, received)) return 1;
        reported = received;
      }
      if (drain_pause_us > 0) usleep(drain_pause_us);
      fd_set fds;
      FD_ZERO(&fds);
      FD_SET(PQsocket(conn), &fds);
      if (select(PQsocket(conn) + 1, &fds, nullptr, nullptr, nullptr) < 0 ||
          PQconsumeInput(conn) == 0) {
        std::fprintf(stderr, "reading: %s", PQerrorMessage(conn));
        return 1;
      }
      continue;
    }
    if (len < 0) {
      std::fprintf(stderr, "stream ended at %" PRIX64 ": %s", received, PQerrorMessage(conn));
      return 1;
    }
    ++messages;
    bytes += static_cast<uint64_t>(len);
    if (buf[0] == 'w' && len >= 25) {
      const uint64_t end = GetU64(buf + 9);
      if (end > received) received = end;
    } else if (buf[0] == 'k' && len >= 18) {
      const uint64_t end = GetU64(buf + 1);
      if (end > received) received = end;
      if (buf[17] != 0 && !SendStatus(conn, received)) return 1;
    }
    PQfreemem(buf);
  }
  if (!SendStatus(conn, received)) return 1;  // confirm, as a consumer does at the end
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%.3f %" PRIu64 " %" PRIu64 "\n", seconds, messages, bytes);
  PQfinish(conn);
  return 0;
}
