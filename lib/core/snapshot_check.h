// SnapshotCheck: proves that a snapshot's pages form a sound database before
// the snapshot can be reported durable. Every hash in a snapshot is computed
// over the pages as read, so pages read from two moments (the torn
// snapshots of issue 19: a read transaction that no longer protected them)
// pass every hash and fail only at restore. The pages are written to a
// scratch copy in the spool directory as the snapshot reads them, and
// SQLite's own PRAGMA quick_check runs on that copy (b-tree structure,
// overflow chains, freelist, page usage: what a torn read breaks).
//
// Cost: one more write and read of the database's size on the spool disk
// per generation start (later snapshots are compared with the captured
// state's checksum instead); databases above the caller's size limit are
// not checked.
//
// Not thread-safe: one capture uses it at a time.
#pragma once

#include <cstdint>
#include <string>

#include "replite/status.h"
#include "util/file_util.h"

namespace replite {

class SnapshotCheck {
 public:
  SnapshotCheck() = default;
  SnapshotCheck(const SnapshotCheck&) = delete;
  SnapshotCheck& operator=(const SnapshotCheck&) = delete;
  ~SnapshotCheck();  // removes the scratch copy

  Status Open(const std::string& spool_dir, uint32_t page_size);
  bool active() const { return fd_.valid(); }
  Status AddPage(uint32_t pgno, const std::string& page);
  // kCorruption naming what quick_check found.
  Status Finish(uint32_t pages);

 private:
  std::string path_;
  ScopedFd fd_;
  uint32_t page_size_ = 0;
};

}  // namespace replite
