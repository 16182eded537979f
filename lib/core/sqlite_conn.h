// The library's own SQLite connections to a replicated database. They are
// opened per job and closed after it (an idle database holds no file
// descriptor), never write into the user's data, and set a busy timeout
// so that the application's locks make us wait or skip, never fail it.
//
// Not thread-safe: one job uses a connection at a time.
#pragma once

#include <string>

#include "replite/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace replite {

class SqliteConn {
 public:
  SqliteConn() = default;
  ~SqliteConn();
  SqliteConn(const SqliteConn&) = delete;
  SqliteConn& operator=(const SqliteConn&) = delete;

  // Opens `path` read-write (never creates it). Checks that it is a SQLite
  // database in WAL mode; with enable_wal, switches a database in another
  // journal mode to WAL first.
  Status Open(const std::string& path, bool enable_wal, int busy_timeout_ms);
  void Close();
  bool is_open() const { return db_ != nullptr; }

  Status Exec(const std::string& sql);
  // BEGIN + a read of the schema: starts a read transaction that pins the
  // WAL at its current end (no checkpoint passes it, no restart).
  Status BeginRead();
  // BEGIN IMMEDIATE: takes the write lock (no commit can happen until End).
  Status BeginWrite();
  Status End();  // ROLLBACK (we never change anything)
  bool in_txn() const { return in_txn_; }

  // sqlite3_wal_checkpoint_v2; mode is SQLITE_CHECKPOINT_*.
  Status Checkpoint(int mode, int* log_frames, int* ckpt_frames);
  void SetBusyTimeout(int ms);
  sqlite3* raw() { return db_; }

 private:
  Status Error(const std::string& what);
  // Steps a statement prepared once per connection (BEGIN, the schema read,
  // ROLLBACK: a hot database runs them on every capture, and parsing them
  // each time was a visible part of a capture's CPU). Re-prepared by SQLite
  // itself when the schema changes.
  Status Step(int which, const char* sql);
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmts_[3] = {nullptr, nullptr, nullptr};
  std::string path_;
  bool in_txn_ = false;
};

}  // namespace replite
