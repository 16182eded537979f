#include "core/sqlite_conn.h"

#include <sqlite3.h>

#include "util/file_util.h"

namespace replite {

SqliteConn::~SqliteConn() { Close(); }

void SqliteConn::Close() {
  if (db_) {
    if (in_txn_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    for (sqlite3_stmt*& st : stmts_) {
      sqlite3_finalize(st);
      st = nullptr;
    }
    sqlite3_close_v2(db_);
    db_ = nullptr;
    in_txn_ = false;
  }
}

Status SqliteConn::Error(const std::string& what) {
  int rc = db_ ? sqlite3_extended_errcode(db_) : SQLITE_ERROR;
  std::string msg = "database " + path_ + ": " + what + ": " + (db_ ? sqlite3_errmsg(db_) : "no connection");
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Status::Unavailable(msg + " (the database is locked; will retry)");
    case SQLITE_NOTADB: return Status::Corruption(msg + " (is this a SQLite database?)");
    case SQLITE_CORRUPT: return Status::Corruption(msg);
    case SQLITE_CANTOPEN: return Status::NotFound(msg);
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH: return Status::PermissionDenied(msg);
    case SQLITE_FULL: return Status::ResourceExhausted(msg);
    default: return Status::IOError(msg);
  }
}

Status SqliteConn::Open(const std::string& path, bool enable_wal, int busy_timeout_ms) {
  Close();
  path_ = path;
  if (!FileExists(path)) return Status::NotFound("database " + path + " does not exist");
  int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = Error("open");
    Close();
    return s;
  }
  // Small footprint: hot databases keep this connection open between syncs
  // (ConnCache), and it only ever reads the schema and takes locks (pages
  // are read from the files directly), so no lookaside and a tiny cache.
  sqlite3_db_config(db_, SQLITE_DBCONFIG_LOOKASIDE, nullptr, 0, 0);
  sqlite3_exec(db_, "PRAGMA cache_size=-1", nullptr, nullptr, nullptr);  // no bulk preallocation: ~48 KB per connection
  sqlite3_busy_timeout(db_, busy_timeout_ms);
  // Our connection must never checkpoint on its own: checkpoints are
  // decided by the replicator after capture.
  sqlite3_wal_autocheckpoint(db_, 0);
  sqlite3_stmt* st = nullptr;
  rc = sqlite3_prepare_v2(db_, "PRAGMA journal_mode", -1, &st, nullptr);
  std::string mode;
  if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    mode = t ? reinterpret_cast<const char*>(t) : "";
  }
  if (st) sqlite3_finalize(st);
  if (rc != SQLITE_OK || mode.empty()) {
    Status s = Error("read journal mode");
    Close();
    return s;
  }
  if (mode != "wal") {
    if (!enable_wal) {
      Close();
      return Status::FailedPrecondition("database " + path + " is in journal_mode=" + mode +
                                        ", not WAL: run `sqlite3 " + path +
                                        " 'PRAGMA journal_mode=WAL'` or set enable_wal (CLI: -enable-wal)");
    }
    Status s = Exec("PRAGMA journal_mode=WAL");
    if (!s.ok()) {
      Close();
      return s;
    }
  }
  return Status::OK();
}

Status SqliteConn::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (err) sqlite3_free(err);
  if (rc != SQLITE_OK) return Error(sql);
  return Status::OK();
}

Status SqliteConn::Step(int which, const char* sql) {
  sqlite3_stmt*& st = stmts_[which];
  if (!st && sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) {
    st = nullptr;
    return Error(sql);
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
  }
  // The error is the connection's until the reset (which returns it too).
  Status s = rc == SQLITE_DONE ? Status::OK() : Error(sql);
  sqlite3_reset(st);
  return s;
}

Status SqliteConn::BeginRead() {
  Status s = Step(0, "BEGIN");
  if (!s.ok()) return s;
  in_txn_ = true;
  s = Step(1, "SELECT 1 FROM sqlite_schema LIMIT 1");
  if (!s.ok()) End();
  return s;
}

Status SqliteConn::BeginWrite() {
  Status s = Exec("BEGIN IMMEDIATE");
  if (s.ok()) in_txn_ = true;
  return s;
}

Status SqliteConn::End() {
  if (!in_txn_) return Status::OK();
  in_txn_ = false;
  return Step(2, "ROLLBACK");
}

void SqliteConn::SetBusyTimeout(int ms) { sqlite3_busy_timeout(db_, ms); }

Status SqliteConn::Checkpoint(int mode, int* log_frames, int* ckpt_frames) {
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, mode, log_frames, ckpt_frames);
  if (rc != SQLITE_OK) return Error("checkpoint");
  return Status::OK();
}

}  // namespace replite
