#include "test/unit/checkpoints/power_cut_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace pgfanout::testing {
namespace {

// Tracks how far the file was written, and notes the length at each sync that returns.
class TrackedFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedFile(std::unique_ptr<rocksdb::FSWritableFile> target, const PowerCutFs& fs,
              std::string path, uint64_t size)
      : FSWritableFileOwnerWrapper(std::move(target)), fs_(fs), path_(std::move(path)),
        size_(size) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    auto s = target()->Append(data, options, dbg);
    if (s.ok()) size_ += data.size();
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    auto s = target()->Append(data, options, info, dbg);
    if (s.ok()) size_ += data.size();
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    auto s = target()->PositionedAppend(data, offset, options, dbg);
    if (s.ok()) size_ = std::max(size_, offset + data.size());
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    auto s = target()->PositionedAppend(data, offset, options, info, dbg);
    if (s.ok()) size_ = std::max(size_, offset + data.size());
    return s;
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    auto s = target()->Truncate(size, options, dbg);
    if (s.ok()) size_ = size;
    return s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    auto s = target()->Sync(options, dbg);
    if (s.ok()) Synced();
    return s;
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    auto s = target()->Fsync(options, dbg);
    if (s.ok()) Synced();
    return s;
  }

 private:
  void Synced() { fs_.Note("S\t" + path_ + "\t" + std::to_string(size_) + "\n"); }

  const PowerCutFs& fs_;
  std::string path_;
  uint64_t size_ = 0;
};

}  // namespace

PowerCutFs::PowerCutFs(std::shared_ptr<rocksdb::FileSystem> target, std::string journal)
    : FileSystemWrapper(std::move(target)) {
  journal_fd_ = ::open(journal.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

PowerCutFs::~PowerCutFs() {
  if (journal_fd_ >= 0) ::close(journal_fd_);
}

void PowerCutFs::Note(const std::string& line) const {
  if (journal_fd_ >= 0) (void)!::write(journal_fd_, line.data(), line.size());
}

rocksdb::IOStatus PowerCutFs::NewWritableFile(const std::string& path,
                                              const rocksdb::FileOptions& options,
                                              std::unique_ptr<rocksdb::FSWritableFile>* result,
                                              rocksdb::IODebugContext* dbg) {
  auto s = target()->NewWritableFile(path, options, result, dbg);
  if (s.ok()) {
    Note("C\t" + path + "\n");
    *result = std::make_unique<TrackedFile>(std::move(*result), *this, path, 0);
  }
  return s;
}

rocksdb::IOStatus PowerCutFs::ReopenWritableFile(const std::string& path,
                                                 const rocksdb::FileOptions& options,
                                                 std::unique_ptr<rocksdb::FSWritableFile>* result,
                                                 rocksdb::IODebugContext* dbg) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  auto s = target()->ReopenWritableFile(path, options, result, dbg);
  if (s.ok()) {
    // What it held before was on disk already (it was synced, or came from before).
    Note("S\t" + path + "\t" + std::to_string(ec ? 0 : size) + "\n");
    *result = std::make_unique<TrackedFile>(std::move(*result), *this, path, ec ? 0 : size);
  }
  return s;
}

rocksdb::IOStatus PowerCutFs::ReuseWritableFile(const std::string& path,
                                                const std::string& old_path,
                                                const rocksdb::FileOptions& options,
                                                std::unique_ptr<rocksdb::FSWritableFile>* result,
                                                rocksdb::IODebugContext* dbg) {
  auto s = target()->ReuseWritableFile(path, old_path, options, result, dbg);
  if (s.ok()) {
    Note("C\t" + path + "\n");
    *result = std::make_unique<TrackedFile>(std::move(*result), *this, path, 0);
  }
  return s;
}

uint64_t CutPower(const std::string& journal) {
  std::map<std::string, uint64_t> synced;
  std::ifstream in(journal);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string kind, path, size;
    std::getline(fields, kind, '\t');
    std::getline(fields, path, '\t');
    std::getline(fields, size, '\t');
    if (kind == "C") synced[path] = 0;
    if (kind == "S") synced[path] = std::stoull(size);
  }
  uint64_t dropped = 0;
  for (const auto& [path, size] : synced) {
    std::error_code ec;
    const auto now = std::filesystem::file_size(path, ec);
    if (ec || now <= size) continue;  // deleted or renamed since, or nothing unsynced
    dropped += now - size;
    std::filesystem::resize_file(path, size, ec);
  }
  return dropped;
}

}  // namespace pgfanout::testing
