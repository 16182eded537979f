// Segment sinks that stage in the spool directory: the files a capture
// writes (snapshots, and segments too big for memory) before the upload.
// They are the library's own files, never the database's (see
// core/sqlite_files.h for how those are read).
//
// Not thread-safe: one capture uses a sink at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "format/segment.h"
#include "replite/status.h"
#include "util/file_util.h"

namespace replite {

// A segment written to a new file (created or truncated, mode 0600). Every
// kWritebackBytes appended, the kernel is asked to start writing them out
// (sync_file_range, no wait), so the fsync that makes the object durable
// finds little left to write instead of the whole file.
class FileSink final : public SegmentSink {
 public:
  static constexpr uint64_t kWritebackBytes = 8u << 20;
  Status Open(const std::string& path);
  using SegmentSink::Append;
  Status Append(const char* d, size_t n) override;
  Status WriteAt(uint64_t off, const std::string& d) override;
  uint64_t Size() const override { return size_; }

 private:
  std::string path_;
  ScopedFd fd_;
  uint64_t size_ = 0;
  uint64_t writeback_from_ = 0;  // appended bytes before this were handed to writeback
};

// A segment under construction: in memory when small, in a spool file when
// the pages it holds exceed the per-job memory limit (a VACUUM of a big
// database is one transaction of every page). The file is removed unless
// moved out.
class SegmentOut {
 public:
  SegmentOut() = default;
  SegmentOut(const SegmentOut&) = delete;
  SegmentOut& operator=(const SegmentOut&) = delete;
  ~SegmentOut();
  Status Open(uint64_t raw_estimate, uint64_t memory_limit_bytes, const std::string& spool_dir);
  SegmentSink* sink() { return file_ ? static_cast<SegmentSink*>(file_.get()) : &mem_; }
  // Hands over the result: the bytes (in memory) or the file's path.
  void MoveTo(std::string* bytes, std::string* path);

 private:
  StringSink mem_;
  std::unique_ptr<FileSink> file_;
  std::string path_;
};

}  // namespace replite
