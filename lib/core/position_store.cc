#include "core/position_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <random>

#include "core/memory_report.h"
#include "util/file_util.h"
#include "util/text_fields.h"

namespace replite {
namespace {

// Each connection's page cache, bounded (SQLite's default is 2 MB each):
// a Load touches the B-tree's interior pages and one leaf, which the OS's
// page cache holds anyway; a flush's batch is written in key order.
constexpr const char* kCachePragma = "PRAGMA cache_size=-256";

// A parked database's session state follows its position's fields:
// " | <session hex> bytes last_sync_ms segments snapshots checkpoints
// generations lease_epoch compacted_s".
constexpr const char* kSessionMark = " | ";

std::string EncodeSession(uint64_t session, const SessionState& c) {
  char buf[192];
  std::snprintf(buf, sizeof buf, "%s%016" PRIx64 " %" PRIu64 " %" PRId64 " %" PRIu32 " %" PRIu32 " %" PRIu32
                " %" PRIu32 " %" PRIu32 " %" PRIu32, kSessionMark, session, c.bytes, c.last_sync_ms, c.segments,
                c.snapshots, c.checkpoints, c.generations, c.lease_epoch, c.compacted_s);
  return buf;
}

std::string_view ColumnText(sqlite3_stmt* st, int col) {
  const char* t = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
  return t ? std::string_view(t, size_t(sqlite3_column_bytes(st, col))) : std::string_view();
}

SessionState DecodeSession(uint64_t session, std::string_view s) {
  SessionState c;
  const size_t at = s.find(kSessionMark);
  if (at == std::string::npos) return c;
  uint64_t tag = 0;
  SessionState r;
  TextFields f(s.substr(at + 3));
  if (f.Number(&tag, 16) && f.Number(&r.bytes) && f.Number(&r.last_sync_ms) && f.Number(&r.segments) &&
      f.Number(&r.snapshots) && f.Number(&r.checkpoints) && f.Number(&r.generations) && f.Number(&r.lease_epoch) &&
      f.Number(&r.compacted_s) && tag == session)
    c = r;
  return c;
}

}  // namespace

PositionStore::PositionStore() : session_(std::random_device{}() * 0x9e3779b97f4a7c15ull ^ std::random_device{}()) {}

PositionStore::~PositionStore() {
  Flush();
  if (load_) sqlite3_finalize(load_);
  if (rdb_) sqlite3_close_v2(rdb_);
  if (db_) sqlite3_close_v2(db_);
}

Status PositionStore::Open(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  const bool created = !FileExists(path);
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    if (db_) sqlite3_close_v2(db_);
    db_ = nullptr;
    return Status::IOError("position store " + path + ": " + msg + " (check state_dir)");
  }
  // SQLite creates files 0644 (less the umask); positions name every
  // database: private, like the rest of the state dir. Before the first
  // statement, so that its -wal and -shm (which take the file's mode) are too.
  if (created && ::chmod(path.c_str(), 0600) != 0) {
    const int err = errno;
    sqlite3_close_v2(db_);
    db_ = nullptr;
    return ErrnoStatus("position store " + path + ": chmod 0600", err);
  }
  sqlite3_busy_timeout(db_, 10000);
  char* err = nullptr;
  int rc = sqlite3_exec(db_,
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                        "CREATE TABLE IF NOT EXISTS positions(path TEXT PRIMARY KEY, url TEXT NOT NULL, "
                        "pos TEXT NOT NULL, wal_size INTEGER NOT NULL DEFAULT -1, wal_mtime INTEGER NOT NULL DEFAULT -1)",
                        nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : "error";
    sqlite3_free(err);
    return Status::IOError("position store " + path + ": " + msg);
  }
  sqlite3_exec(db_, kCachePragma, nullptr, nullptr, nullptr);
  // Checkpoints run in Flush, after the readers' transactions end (see
  // there), not inside COMMIT where SQLite's autocheckpoint would run them.
  sqlite3_wal_hook(
      db_,
      [](void* arg, sqlite3*, const char*, int pages) {
        if (pages >= kCheckpointPages) static_cast<PositionStore*>(arg)->checkpoint_due_ = true;
        return SQLITE_OK;
      },
      this);
  {
    sqlite3_stmt* any = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT 1 FROM positions LIMIT 1", -1, &any, nullptr) == SQLITE_OK)
      none_saved_ = sqlite3_step(any) == SQLITE_DONE;
    sqlite3_finalize(any);
  }
  // Stores written by an earlier version lack the WAL stat columns.
  for (const char* col : {"wal_size", "wal_mtime"}) {
    std::string sql = std::string("ALTER TABLE positions ADD COLUMN ") + col + " INTEGER NOT NULL DEFAULT -1";
    sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);  // fails harmlessly when present
  }
  // The reader connection for Load (WAL mode: it reads while a flush writes).
  std::lock_guard<std::mutex> rl(read_mu_);
  if (sqlite3_open_v2(path.c_str(), &rdb_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    std::string msg = rdb_ ? sqlite3_errmsg(rdb_) : "out of memory";
    if (rdb_) sqlite3_close_v2(rdb_);
    rdb_ = nullptr;
    return Status::IOError("position store " + path + ": " + msg);
  }
  sqlite3_busy_timeout(rdb_, 10000);
  sqlite3_exec(rdb_, kCachePragma, nullptr, nullptr, nullptr);
  if (sqlite3_prepare_v2(rdb_, "SELECT url, pos, wal_size, wal_mtime FROM positions WHERE path = ?", -1, &load_,
                         nullptr) != SQLITE_OK)
    return Status::IOError(std::string("position store: ") + sqlite3_errmsg(rdb_));
  conn_bytes_ = SqliteConnBytes(db_);
  rconn_bytes_ = SqliteConnBytes(rdb_);
  return Status::OK();
}

Status PositionStore::Load(const std::string& db_path, const std::string& url, Position* out, bool* found,
                           int64_t* wal_size, int64_t* wal_mtime, SessionState* session) {
  *found = false;
  if (session) *session = SessionState();
  auto from = [&](const Pending& p) {
    if (p.url == url && Position::Decode(p.pos, out)) {
      *found = true;
      *wal_size = p.wal_size;
      *wal_mtime = p.wal_mtime;
      if (session) *session = DecodeSession(session_, p.pos);
    }
    return Status::OK();
  };
  {
    // Queued, or in the batch a flush is writing: the newest is there.
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = pending_.find(db_path); it != pending_.end()) return from(it->second);
    if (inflight_)
      if (auto it = inflight_->find(db_path); it != inflight_->end()) return from(it->second);
    if (none_saved_) return Status::OK();
  }
  // Otherwise what is saved is the newest: read it on the reader
  // connection, which a flush in progress (its fsync) does not block.
  std::lock_guard<std::mutex> rl(read_mu_);
  if (!rdb_) return Status::OK();
  sqlite3_reset(load_);
  if (read_loads_ >= kLoadsPerRead) EndReadLocked();
  if (read_loads_ == 0 && sqlite3_exec(rdb_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK)
    return Status::IOError(std::string("position store: ") + sqlite3_errmsg(rdb_));
  read_loads_++;
  sqlite3_bind_text(load_, 1, db_path.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(load_);
  Status st;
  if (rc == SQLITE_ROW) {
    // (Views of the row: valid until the reset below.)
    const std::string_view u = ColumnText(load_, 0), p = ColumnText(load_, 1);
    if (u == url && Position::Decode(p, out)) {
      *found = true;
      *wal_size = sqlite3_column_int64(load_, 2);
      *wal_mtime = sqlite3_column_int64(load_, 3);
      if (session) *session = DecodeSession(session_, p);
    }
  } else if (rc != SQLITE_DONE) {
    st = Status::IOError(std::string("position store: ") + sqlite3_errmsg(rdb_));
  }
  sqlite3_reset(load_);
  if (!st.ok()) EndReadLocked();
  rconn_bytes_ = SqliteConnBytes(rdb_);
  return st;
}

void PositionStore::EndReadLocked() {
  if (read_loads_ == 0) return;
  sqlite3_reset(load_);
  sqlite3_exec(rdb_, "COMMIT", nullptr, nullptr, nullptr);
  read_loads_ = 0;
}

namespace {

// Heap bytes of one pending_ entry: the map node and its strings.
template <typename Node>
uint64_t PendingBytes(const std::string& path, const Node& p) {
  return MallocChunk(32 + sizeof(path) + sizeof(Node)) + StringHeap(path) + StringHeap(p.url) + StringHeap(p.pos);
}

}  // namespace

void PositionStore::Put(const std::string& db_path, const std::string& url, const Position& pos, int64_t wal_size,
                        int64_t wal_mtime, const SessionState* session) {
  std::string text = pos.Encode();
  if (session) text += EncodeSession(session_, *session);
  std::lock_guard<std::mutex> l(mu_);
  auto [it, added] = pending_.try_emplace(db_path);
  if (!added) pending_bytes_ -= PendingBytes(it->first, it->second);
  it->second = Pending{url, std::move(text), wal_size, wal_mtime};
  pending_bytes_ += PendingBytes(it->first, it->second);
}

Status PositionStore::Flush() {
  // One flush at a time; Put is blocked only while the queue is swapped
  // out, never while SQLite writes and syncs (workers Put after every sync).
  std::lock_guard<std::mutex> fl(flush_mu_);
  std::map<std::string, Pending> batch;
  {
    std::unique_lock<std::mutex> l(mu_);
    if (!db_ || pending_.empty()) {
      l.unlock();
      // (Nothing to write: a burst's read transaction ends here too, so
      // it never outlives a flush interval and holds back no checkpoint.)
      std::lock_guard<std::mutex> rl(read_mu_);
      EndReadLocked();
      return Status::OK();
    }
    batch.swap(pending_);
    pending_bytes_ = 0;
    none_saved_ = false;  // (the batch stays findable in inflight_ until written)
    inflight_ = &batch;  // Load still finds these until they are saved
  }
  {
    // No Load's read transaction from before this write: one begun while
    // it runs finds the WAL wholly checkpointed (by the last Flush, below)
    // and reads the database file, so it holds back no restart of the WAL.
    std::lock_guard<std::mutex> rl(read_mu_);
    EndReadLocked();
  }
  struct Landed {  // the batch is saved or queued again: no longer in flight
    PositionStore* ps;
    ~Landed() {
      std::lock_guard<std::mutex> l(ps->mu_);
      ps->inflight_ = nullptr;
    }
  } landed{this};
  Status s;
  sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO positions(path, url, pos, wal_size, wal_mtime) VALUES (?, ?, ?, ?, ?)",
                         -1, &st, nullptr) != SQLITE_OK) {
    s = Status::IOError(std::string("position store: ") + sqlite3_errmsg(db_));
  } else {
    for (const auto& [path, v] : batch) {
      sqlite3_bind_text(st, 1, path.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 2, v.url.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 3, v.pos.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 4, v.wal_size);
      sqlite3_bind_int64(st, 5, v.wal_mtime);
      if (sqlite3_step(st) != SQLITE_DONE) {
        s = Status::IOError(std::string("position store: ") + sqlite3_errmsg(db_));
        break;
      }
      sqlite3_reset(st);
    }
    sqlite3_finalize(st);
  }
  if (s.ok() && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK) {
    conn_bytes_ = SqliteConnBytes(db_);
    {
      // Before the batch leaves inflight_ (`landed`): a Load that no longer
      // finds it there reads a transaction begun after this commit.
      std::lock_guard<std::mutex> rl(read_mu_);
      EndReadLocked();
    }
    if (checkpoint_due_) {
      // Every reader's snapshot now includes this commit, so the
      // checkpoint copies every frame, and the next write restarts the WAL
      // from its beginning (it stays near kCheckpointPages).
      checkpoint_due_ = false;
      sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
    return s;
  }
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  if (s.ok()) s = Status::IOError(std::string("position store commit: ") + sqlite3_errmsg(db_));
  conn_bytes_ = SqliteConnBytes(db_);
  // Not saved: queue them again, unless a newer position arrived meanwhile.
  std::lock_guard<std::mutex> l(mu_);
  inflight_ = nullptr;  // (moved from below: `landed` then finds it cleared)
  for (auto& [path, v] : batch) {
    auto [it, added] = pending_.emplace(path, std::move(v));
    if (added) pending_bytes_ += PendingBytes(it->first, it->second);
  }
  return s;
}

uint64_t PositionStore::MemoryBytes() {
  std::lock_guard<std::mutex> l(mu_);
  return conn_bytes_.load() + rconn_bytes_.load() + pending_bytes_;
}

void PositionStore::ReleaseMemory() {
  {
    std::lock_guard<std::mutex> fl(flush_mu_);
    if (db_) {
      sqlite3_db_release_memory(db_);
      conn_bytes_ = SqliteConnBytes(db_);
    }
  }
  std::lock_guard<std::mutex> rl(read_mu_);
  if (rdb_) {
    EndReadLocked();
    sqlite3_db_release_memory(rdb_);
    rconn_bytes_ = SqliteConnBytes(rdb_);
  }
}

}  // namespace replite
