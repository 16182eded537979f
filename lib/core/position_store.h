// PositionStore: the positions of every database of a Replicator in one
// small SQLite database (state_dir/positions.db, WAL mode), written in
// batches. A position is saved only after what it names is durable in the
// replica or in the local upload spool (fsynced), so after a crash the saved
// position is never ahead of the store plus the spool.
//
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "core/position.h"
#include "replite/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace replite {

class PositionStore {
 public:
  PositionStore();
  ~PositionStore();
  Status Open(const std::string& path);
  // The saved position of `db_path` if it was replicating to `replica_url`
  // (a position for another URL is not ours to resume).
  // Also returns the WAL size and mtime seen at that capture, so that a
  // restart does not open a database whose WAL did not change.
  // With `session`: the session state Put with it by this PositionStore
  // (zero if none was, or another one saved it: it is this Replicator's).
  // Reads on a connection of its own: never waits for a flush's write and
  // fsync (an Add during a first-snapshot storm), and sees the batch a
  // flush is writing. Up to kLoadsPerRead Loads share one read transaction
  // (a burst of Adds takes SQLite's file locks once, not per database); a
  // Flush ends it once its batch is written, so what a Load reads there is
  // never older than what left inflight_.
  Status Load(const std::string& db_path, const std::string& replica_url, Position* out, bool* found,
              int64_t* wal_size, int64_t* wal_mtime_ns, SessionState* session = nullptr);
  // Queues a write; Flush writes every queued position in one transaction.
  // `session` (a parked database's) is saved after the position's fields,
  // tagged with this store's random session id: Position::Decode ignores it.
  void Put(const std::string& db_path, const std::string& replica_url, const Position& pos, int64_t wal_size,
           int64_t wal_mtime_ns, const SessionState* session = nullptr);
  Status Flush();
  static constexpr int kLoadsPerRead = 256;
  // SQLite's accounting of positions.db's connection (its page cache) as of
  // the last Open, Flush or ReleaseMemory, and the queued writes: O(1), and
  // never waits for a flush in progress.
  uint64_t MemoryBytes();
  // Gives back the connection's unused cache pages (after a burst).
  void ReleaseMemory();

 private:
  std::mutex flush_mu_;  // serializes Flush (and guards db_'s writes)
  std::mutex mu_;        // guards pending_, inflight_
  std::mutex read_mu_;   // guards rdb_ and load_
  sqlite3* db_ = nullptr;
  sqlite3* rdb_ = nullptr;  // Load's own connection: not blocked by a flush
  struct Pending {
    std::string url, pos;
    int64_t wal_size, wal_mtime;
  };
  std::map<std::string, Pending> pending_;
  std::map<std::string, Pending>* inflight_ = nullptr;  // the batch a Flush is writing (guarded by mu_)
  uint64_t pending_bytes_ = 0;           // heap bytes of pending_ (guarded by mu_)
  // positions.db held no row at Open and no Flush has written since: Load
  // finds nothing there, and does not read it (a cold start's 100,000 Adds
  // each skip a query). Guarded by mu_.
  bool none_saved_ = false;
  std::atomic<uint64_t> rconn_bytes_{0};  // SqliteConnBytes(rdb_), updated under read_mu_
  std::atomic<uint64_t> conn_bytes_{0};   // SqliteConnBytes(db_), updated under flush_mu_
  sqlite3_stmt* load_ = nullptr;
  int read_loads_ = 0;  // Loads in rdb_'s open read transaction (0: none open), guarded by read_mu_
  static constexpr int kCheckpointPages = 1000;  // SQLite's autocheckpoint default
  bool checkpoint_due_ = false;  // the WAL reached kCheckpointPages (set in COMMIT, guarded by flush_mu_)
  void EndReadLocked();  // ends rdb_'s read transaction (read_mu_ held)
  const uint64_t session_;  // tags the session states this store saves (random, per PositionStore)
};

}  // namespace replite
