#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <functional>

#include <span>
#include <string>
#include <vector>

#include "src/sinks/jsonl/jsonl_formatter.h"
#include "src/sinks/sink.h"

namespace pgfanout {

// Appends one JSON object per event to a file (see README.md for the line format).
//
// Effectively once across crashes: the cursor token is the file length that the cursor
// covers. Open() truncates the file back to it, so lines written after the last stored
// cursor (a crash between fsync and cursor store) are written again exactly once. Before
// the first cursor with a token, the file's length at the first Open() (BaselineToken,
// stored by OpenSinkAtCursor) plays that part.
class JsonlSink final : public Sink {
 public:
  // `truncate_scope`: the tenants a per-tenant sink serves (empty for "*"); its TRUNCATE
  // lines name them, as the truncate applies to their rows only.
  // `datasync` makes written lines durable (fdatasync; a test passes a wrapper that also
  // notes how much of the file each call covered, to simulate a power cut).
  explicit JsonlSink(std::string path, std::vector<std::string> truncate_scope = {},
                     std::function<int(int fd)> datasync = ::fdatasync)
      : path_(std::move(path)),
        truncate_scope_(std::move(truncate_scope)),
        datasync_(std::move(datasync)) {}
  ~JsonlSink() override;

  Result<std::optional<TargetPosition>> Open(const std::optional<SinkCursor>& stored,
                                             const Lineage& lineage) override;
  Result<std::string> Write(std::span<const ChangeEvent> events) override;
  std::string BaselineToken() const override { return std::to_string(offset_); }
  bool HoldsConnection() const override { return false; }
  void Stop() override;

  // Appends the JSON line for `event` (with its trailing newline) to `out`.
  static void FormatEvent(const ChangeEvent& event, fmt::memory_buffer& out,
                          std::span<const std::string> truncate_scope = {});

 private:
  std::string path_;
  std::vector<std::string> truncate_scope_;
  std::function<int(int fd)> datasync_;
  int fd_ = -1;
  uint64_t offset_ = 0;  // file length covered by what has been written and synced
  JsonlFormatter formatter_;
};

}  // namespace pgfanout
