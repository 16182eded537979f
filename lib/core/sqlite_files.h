// The one place that reads a replicated database's own files (the database,
// its -wal and its -shm). POSIX advisory locks belong to the process, not to
// the descriptor: closing *any* descriptor of a file drops every lock this
// process holds on it, including the application's SQLite locks when the
// library runs inside the application. So nothing here opens or closes a raw
// descriptor on those files:
//  - the database and the WAL are read through the sqlite3_file handles of
//    one of the library's own SQLite connections (SQLITE_FCNTL_FILE_POINTER,
//    SQLITE_FCNTL_JOURNAL_POINTER, then xRead/xFileSize);
//  - the wal-index is read from the connection's mapping (xShmMap);
//  - a hot database's WAL is stat()ed through the descriptor SQLite holds
//    for the library's connection (WalStat: fstat, nothing else);
//  - a database that has no connection yet is opened through SQLite's VFS,
//    whose unix implementation keeps a per-inode table and defers the close
//    of a descriptor while the process holds locks on that file.
// All of this protects the application's locks only when the application and
// replite use the same SQLite library in the process (one inode table): a
// second, statically linked copy of SQLite has its own table.
//
// tests/lint_sqlite_files.sh (a ctest entry) fails if another file of lib/
// opens those paths.
//
// Not thread-safe: a handle is used by the job that uses its connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "replite/status.h"
#include "wal/readable_file.h"
#include "wal/wal_shm.h"

struct sqlite3;
struct sqlite3_file;
struct stat;

namespace replite {

// A file handle owned by a SQLite connection, borrowed for reads (by the
// WAL reader, lib/wal/wal_reader.h, among others). Valid while that
// connection stays open.
class SqliteFileRef : public ReadableFile {
 public:
  SqliteFileRef() = default;
  bool valid() const { return f_ != nullptr; }
  const std::string& path() const override { return path_; }
  Status Size(uint64_t* size) const override;
  // Reads up to n bytes at offset; *got is what the file held there (short
  // at its end).
  Status Read(void* buf, size_t n, uint64_t offset, size_t* got) const override;

  // The database file of `db`'s main schema.
  static Status Database(sqlite3* db, const std::string& db_path, SqliteFileRef* out);
  // The WAL file of `db`'s main schema; SQLite opens it at the connection's
  // first read transaction in WAL mode. Fails if the connection has none.
  static Status Wal(sqlite3* db, const std::string& db_path, SqliteFileRef* out);

 private:
  sqlite3_file* f_ = nullptr;
  std::string path_;
};

// A stat of a connection's WAL file through the descriptor SQLite holds
// (fstat: no path lookup, which on a machine with a million dentries was
// half of a hot database's per-sync system time). SQLite has no API for
// the descriptor: a unix VFS file (os_unix.c's unixFile) begins with its
// io-methods, its VFS, its inode info and then the descriptor, as in every
// release since 3.7; that is trusted for one connection only once Prove
// found it to be the WAL's (same device and inode as a stat by path).
// Nothing ever reads, writes or closes it.
//
// Not thread-safe: used by the job that holds the connection.
class WalStat {
 public:
  // Finds and proves the WAL's descriptor of `db` (open, in WAL mode, the
  // WAL opened by a read transaction); only the first call looks (one stat
  // by path). False: Stat keeps failing.
  bool Prove(sqlite3* db, const std::string& db_path);
  // fstat of the proven descriptor. False (stat by path instead) if none
  // was proven, if `db`'s WAL handle is no longer the one proven, or if
  // the file was unlinked (the path may name another file now).
  bool Stat(sqlite3* db, struct stat* st) const;
  bool proven() const { return fd_ >= 0; }

 private:
  const sqlite3_file* file_ = nullptr;
  int fd_ = -1;
  bool tried_ = false;
};

// The wal-index header's counters (wal/wal_shm.h: mxFrame, nBackfill,
// nBackfillAttempted), read from `db`'s own shared-memory mapping; false if
// it has none. The connection must be in WAL mode and should be inside a
// transaction.
bool ReadWalIndexInfo(sqlite3* db, WalIndexInfo* info);

// Reads up to 100 bytes of the database header of `path`, which may not be
// open in this process, through SQLite's default VFS (see above). *got = 0
// for an empty file.
Status ReadDatabaseHeader(const std::string& path, unsigned char header[100], size_t* got);

// If `file_name` (no directory) is a database's WAL file name, true and
// the database's file name in *db_name (names only: nothing is opened).
bool DatabaseOfWalName(const char* file_name, std::string* db_name);

}  // namespace replite
