// Small POSIX file helpers that turn errno into Status values naming the
// path. Every function is thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "replite/status.h"

namespace replite {

// errno → Status (ENOENT → kNotFound, EACCES/EPERM → kPermissionDenied,
// ENOSPC/EDQUOT → kResourceExhausted, else kIOError).
Status ErrnoStatus(const std::string& what, int err);

// An fd that closes itself.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() { Reset(); }
  ScopedFd(ScopedFd&& o) noexcept : fd_(o.Release()) {}
  ScopedFd& operator=(ScopedFd&& o) noexcept {
    Reset(o.Release());
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

Status OpenFile(const std::string& path, int flags, int mode, ScopedFd* out);
// Reads exactly n bytes at offset unless EOF comes first; *got = bytes read.
Status PRead(int fd, void* buf, size_t n, uint64_t offset, size_t* got, const std::string& path);
Status PWriteAll(int fd, const void* buf, size_t n, uint64_t offset, const std::string& path);
Status WriteAll(int fd, const void* buf, size_t n, const std::string& path);
Status FSync(int fd, const std::string& path);
Status FSyncDir(const std::string& dir);
// mkdir -p; the directories it creates are 0700 (they hold database
// content: spool, state, file:// replicas); existing ones are left as they are.
Status MakeDirs(const std::string& dir);
Status ReadFileToString(const std::string& path, std::string* out);
// temp file in the same directory + fsync + rename + fsync(dir); mode 0600.
Status WriteFileAtomic(const std::string& path, const std::string& data);
bool FileExists(const std::string& path);
std::string DirName(const std::string& path);
std::string BaseName(const std::string& path);
// Absolute, lexically normalised path (no symlink resolution).
std::string AbsolutePath(const std::string& path);
// A unique suffix for temporary files: ".tmp-<pid>-<counter>-<random>".
std::string TempSuffix();
// Removes the files in `dir` named "<stem>.tmp-<pid>-..." (see TempSuffix)
// whose process is gone: what a killed process left behind. An empty stem
// matches any name; with stem_anywhere, "<stem>.tmp-<pid>-" may stand
// anywhere in the name (after any prefix). Files of live processes are left
// alone.
void RemoveDeadTemps(const std::string& dir, const std::string& stem = "", bool stem_anywhere = false);

}  // namespace replite
