// A file read by offset: what the WAL reader reads from. For a live
// database it is one of SQLite's own file handles (core/sqlite_files.h:
// SqliteFileRef), never a raw descriptor, because closing any descriptor of
// a -wal file drops every POSIX lock this process holds on it; tests read
// WAL bytes held in memory.
//
// Thread-safety: as the implementation's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "replite/status.h"

namespace replite {

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  virtual Status Size(uint64_t* size) const = 0;
  // Reads up to n bytes at offset; *got is what the file held there (short
  // at its end, 0 past it).
  virtual Status Read(void* buf, size_t n, uint64_t offset, size_t* got) const = 0;
  // The file's name, for messages.
  virtual const std::string& path() const = 0;
};

}  // namespace replite
