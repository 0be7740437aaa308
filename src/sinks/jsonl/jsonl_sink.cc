#include "src/sinks/jsonl/jsonl_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "src/core/failpoint.h"

namespace pgfanout {
namespace {

Error IoError(const std::string& what, const std::string& path) {
  return MakeError(ErrorKind::kSink, fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

}  // namespace

JsonlSink::~JsonlSink() { Stop(); }

void JsonlSink::FormatEvent(const ChangeEvent& ev, fmt::memory_buffer& out,
                            std::span<const std::string> truncate_scope) {
  JsonlFormatter().Format(ev, out, truncate_scope);
}

Result<std::optional<TargetPosition>> JsonlSink::Open(const std::optional<SinkCursor>& stored,
                                                  const Lineage&) {
  Stop();
  std::error_code dir_error;
  auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, dir_error);
  if (dir_error) {
    return MakeError(ErrorKind::kSink,
                     fmt::format("cannot create directory {} for the JSONL sink: {}",
                                 parent.string(), dir_error.message()));
  }
  // O_NOFOLLOW: a symbolic link put where the file goes would send the rows elsewhere.
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd_ < 0 && errno == ELOOP) {
    return MakeError(ErrorKind::kMismatch,
                     fmt::format("{} is a symbolic link; the JSONL sink writes only to a file of "
                                 "its own (name the file itself in path:)",
                                 path_));
  }
  if (fd_ < 0) return IoError("cannot open JSONL sink file", path_);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return IoError("cannot stat", path_);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (!stored || stored->token.empty()) {
    // A new sink: keep what the file holds and append after it. An empty token means the
    // same: the cursor moved past events this sink's filter skipped before its first write.
    offset_ = size;
    return std::optional<TargetPosition>();
  }
  uint64_t covered = 0;
  const auto& token = stored->token;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), covered);
  if (ec != std::errc() || end != token.data() + token.size()) {
    // Retrying cannot mend a corrupt cursor: stop this sink and say so.
    return MakeError(ErrorKind::kMismatch,
                     fmt::format("JSONL sink cursor token '{}' is not a file length", token));
  }
  if (size < covered) {
    return MakeError(ErrorKind::kMismatch,
                     fmt::format("{} holds {} bytes but its cursor ({}) covers {}: the file was "
                                 "truncated or replaced outside pgfanout; restore it, or move it "
                                 "away and run `pgfanout replay` for this sink",
                                 path_, size, stored->applied.ToString(), covered));
  }
  // Lines past the cursor were written but never acknowledged: drop them, they come again.
  if (size > covered && (::ftruncate(fd_, static_cast<off_t>(covered)) != 0 || ::fsync(fd_) != 0)) {
    return IoError("cannot truncate", path_);
  }
  offset_ = covered;
  return std::optional<TargetPosition>();
}

Result<std::string> JsonlSink::Write(std::span<const ChangeEvent> events) {
  if (fd_ < 0) return MakeError(ErrorKind::kSink, "JSONL sink written before Open");
  // A batch's own buffer: with thousands of sinks, one kept per sink at the size of its
  // largest batch held hundreds of MiB (bench/e2e_tenants.sh).
  fmt::memory_buffer buffer;
  size_t half = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    formatter_.Format(events[i], buffer, truncate_scope_);
    if (i == events.size() / 2) half = buffer.size();
  }
  auto write_all = [&](size_t from, size_t to) -> Result<void> {
    while (from < to) {
      ssize_t n =
          ::pwrite(fd_, buffer.data() + from, to - from, static_cast<off_t>(offset_ + from));
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("cannot write", path_);
      }
      from += static_cast<size_t>(n);
    }
    return boost::outcome_v2::success();
  };
  PGF_TRY(write_all(0, half));
  PGF_TRY(FailpointHit("sink.mid_write"));
  PGF_TRY(write_all(half, buffer.size()));
  if (datasync_(fd_) != 0) return IoError("cannot fsync", path_);
  offset_ += buffer.size();
  PGF_TRY(FailpointHit("sink.after_write"));
  return std::to_string(offset_);
}

void JsonlSink::Stop() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace pgfanout
