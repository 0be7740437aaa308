#pragma once

#include <rocksdb/file_system.h>

#include <memory>
#include <string>

namespace pgfanout::testing {

// A RocksDB file system that simulates a power cut: the page cache goes, what was synced
// stays. Every file RocksDB writes through it is noted in a journal (a plain file the
// test reads afterwards) when created and each time a Sync or Fsync of it returns, with
// the length synced. RangeSync (a hint, with no promise about metadata) does not count.
//
// The process using it is killed; then CutPower(journal) truncates each noted file to
// the length its last sync covered (0 when it was never synced), which is what a disk
// holds after the power went out at that moment. A kill -9 alone keeps the page cache,
// which is why it cannot show a missing fsync.
class PowerCutFs : public rocksdb::FileSystemWrapper {
 public:
  PowerCutFs(std::shared_ptr<rocksdb::FileSystem> target, std::string journal);
  ~PowerCutFs() override;

  const char* Name() const override { return "PowerCutFs"; }
  rocksdb::IOStatus NewWritableFile(const std::string& path, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& path,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& path, const std::string& old_path,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;

  // One journal line, written with a single write() to a file opened O_APPEND.
  void Note(const std::string& line) const;

 private:
  int journal_fd_ = -1;
};

// Truncates every file the journal names to its last synced length. Returns how many
// bytes were dropped in all.
uint64_t CutPower(const std::string& journal);

}  // namespace pgfanout::testing
