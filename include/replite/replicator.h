// Replicator: one per process. Replicates any number of SQLite databases
// (in WAL mode) to object storage with one shared worker pool, one timer
// thread, one HTTP connection pool and one position store.
//
//   std::unique_ptr<replite::Replicator> r;
//   replite::ReplicatorOptions o;
//   o.replica_url = "file:///var/backups";
//   replite::Status s = replite::Replicator::Open(o, &r);
//   s = r->Add("/data/app.db");          // polled for commits by any process
//   ...
//   s = r->Close();                      // captures what is left, uploads it
//
// Thread-safety: every method may be called from any thread. Callbacks
// (the logger) run on the library's threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "replite/export.h"
#include "replite/options.h"
#include "replite/status.h"

struct sqlite3;

namespace replite {

struct DatabaseStatus {
  std::string path;
  std::string replica_url;
  std::string generation;     // current generation ("" before the first sync)
  uint64_t durable_txid = 0;  // last transaction stored in the replica
  // Last transaction captured: equal to durable_txid, or ahead of it by
  // what waits in the local upload spool while the store is unreachable.
  uint64_t local_txid = 0;
  uint64_t spooled_segments = 0;  // segments waiting in the upload spool
  int64_t durable_ts_ms = 0;  // capture time of durable_txid (0 while segments are spooled)
  uint32_t page_size = 0;
  uint32_t db_pages = 0;
  uint64_t wal_frames = 0;    // frames in the current WAL epoch, all captured
  int64_t last_sync_ms = 0;   // wall-clock time of the last successful sync
  uint64_t generations_started = 0;  // by this Replicator, with reasons logged
  // Generations started in quick succession, each within 10 minutes of the
  // previous one (0: the last one was not). From 2 on the database is
  // reported (a log line with the cause and the fix, the metric
  // replite_generation_churn_total) and each further generation waits a
  // growing delay after the last (30 s doubling to 15 min, unless Sync asks
  // for it): every generation is a full snapshot of the database.
  uint32_t generation_churn = 0;
  int64_t next_generation_not_before_ms = 0;  // while churning: wall-clock time
  uint64_t segments_uploaded = 0;
  uint64_t snapshots_uploaded = 0;
  uint64_t bytes_uploaded = 0;
  uint64_t checkpoints = 0;
  std::string metrics_group;
  bool notified = false;      // driven by Notify/Attach (never polled)
  int64_t pending_since_ms = 0;  // first commit notified but not yet durable (0: none)
  std::string last_error;     // "" when the last sync succeeded
};

// A summary of every database, computed on demand.
struct ReplicatorStatus {
  uint64_t databases = 0;
  uint64_t with_errors = 0;
  uint64_t with_generation_churn = 0;  // DatabaseStatus::generation_churn >= 2
  uint64_t jobs_queued = 0;
  int worker_threads = 0;       // the cap (ReplicatorOptions::worker_threads, within the fd budget)
  int worker_threads_live = 0;  // started on demand and running now (idle ones end after a minute, or
                                // as soon as a burst of connection opens is over)
  // Where the memory goes, part by part (the parts of the metric
  // replite_memory_bytes): "slots" (per-database state with its path),
  // "registry" (the tables finding a slot by path, replica and file),
  // "timers" (the poll/notify heap), "positions" (positions.db's SQLite
  // cache and queued writes), "live_positions" (the positions of databases
  // active in the last ~10 s: an idle database's stays in positions.db
  // only), "connections" (hot databases' kept SQLite
  // connections and WAL frame indexes), "spool_index" (the upload spool's
  // entries), then process-wide: "heap_in_use" and "heap_free" (malloc),
  // "sqlite_all" (all of SQLite's allocations, the application's too when it
  // shares the library) and "rss". Estimates in bytes, see
  // lib/core/memory_report.h (heap_* are 0 under a sanitizer's allocator).
  std::vector<std::pair<std::string, uint64_t>> memory;
  // The databases whose last durable transaction is oldest (largest lag),
  // at most `top_n` of them (see GetSummary).
  std::vector<DatabaseStatus> laggards;
};

class REPLITE_EXPORT Replicator {
 public:
  static Status Open(const ReplicatorOptions& options, std::unique_ptr<Replicator>* out);
  virtual ~Replicator() = default;

  // Starts replicating the database at `path` (absolute or relative; stored
  // absolute). kAlreadyExists if added twice, also under another path to
  // the same file (a symlink or hard link: same st_dev and st_ino), or if
  // its replica is another database's; kFailedPrecondition if it is
  // not in WAL mode (unless options.enable_wal); kNotFound if missing.
  // A new database's first sync (its snapshot) runs on the pool once no
  // database was added for 100 ms (at most 5 s after the Add; Sync,
  // WaitDurable or Notify start it at once), so adding 100,000 is not
  // slowed by their snapshots on the same cores.
  virtual Status Add(const std::string& path, const DatabaseOptions& options) = 0;
  virtual Status Add(const std::string& path) = 0;  // with ReplicatorOptions::defaults

  // Add for each of `paths`, in order: one Status per path, the same as
  // Add's (a failed one does not stop the others). Faster for many new
  // databases: the header of each (is it SQLite, in WAL mode) is read on
  // pool workers (one per core but this thread's) while this thread
  // prepares the next ones, then helps. On 2 cores, 100,000 new databases:
  // 1.4-1.75 s, against 2.0-2.2 s for a loop of Add (bench/README.md).
  virtual std::vector<Status> AddMany(const std::vector<std::string>& paths, const DatabaseOptions& options) = 0;
  virtual std::vector<Status> AddMany(const std::vector<std::string>& paths) = 0;  // with the defaults

  // Stops replicating; waits for a job in flight to end. What was captured
  // stays in the replica; nothing is deleted.
  virtual Status Remove(const std::string& path) = 0;

  // Tells the replicator that the database was just written: a sync is
  // scheduled right away (no polling needed).
  virtual Status Notify(const std::string& path) = 0;

  // Captures every transaction committed before the call and waits until it
  // is durable in the store. *durable_txid receives the replica's last txid.
  virtual Status Sync(const std::string& path, uint64_t* durable_txid = nullptr) = 0;

  // Like Sync, with a deadline: waits until every transaction committed
  // before the call is durable (kTimeout if that takes longer than
  // timeout_ms; the capture goes on). Failed attempts do not end the wait:
  // the library retries (spooling captured changes while the store fails)
  // and the kTimeout message carries the last error. timeout_ms < 0 waits
  // forever. It returns as soon as the capture holding those transactions
  // is in the store, before the checkpoint that may follow it in the same
  // job; Sync returns after that job. Sync, by contrast, also tries the
  // store now (even during its backoff after failures) and returns the
  // first attempt's error.
  virtual Status WaitDurable(const std::string& path, int64_t timeout_ms, uint64_t* durable_txid) = 0;

  // Installs a WAL hook on the application's connection `conn` (to the
  // database at `path`, already added): each commit on it schedules a sync
  // after DatabaseOptions::sync_interval_ms, with no polling. Installing a
  // WAL hook replaces SQLite's automatic checkpoints on that connection
  // (wal_autocheckpoint is implemented as a WAL hook), so the library owns
  // checkpointing for the database. Remove (or Close) uninstalls the hook;
  // the connection must stay open until then or be detached with Detach.
  virtual Status Attach(const std::string& path, struct ::sqlite3* conn) = 0;
  virtual Status Detach(const std::string& path, struct ::sqlite3* conn) = 0;

  // Sync, then a full snapshot (and retention), now.
  virtual Status Snapshot(const std::string& path) = 0;

  // Sync, then a checkpoint of the WAL under the write lock (TRUNCATE when
  // `truncate`), now.
  virtual Status Checkpoint(const std::string& path, bool truncate = false) = 0;

  virtual Status GetStatus(const std::string& path, DatabaseStatus* out) = 0;
  // Totals and the top_n databases that lag most.
  virtual ReplicatorStatus GetSummary(size_t top_n = 10) = 0;
  // Prometheus text exposition of the aggregated metrics. The number of
  // series depends on the number of metrics groups, never on databases.
  virtual std::string Metrics() = 0;
  virtual std::vector<std::string> Databases() = 0;

  // Captures and uploads what is left for every database, saves positions
  // and stops the threads. Threads blocked in Sync or WaitDurable are
  // released: OK if the final capture made their transactions durable, else
  // kCancelled. Further calls return kCancelled. Idempotent.
  virtual Status Close() = 0;
};

}  // namespace replite
