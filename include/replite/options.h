// Options for a Replicator and for each database it replicates. Every field
// has an in-class default and says it in a `Default:` comment.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "replite/sys/object_store.h"

namespace replite {

class Env;

struct DatabaseOptions {
  // Where this database's replica lives. Default: "" = the Replicator's
  // replica_url + "/" + the database file name without its ".db"/".sqlite"
  // /".sqlite3" extension (e.g. file:///backups + /data/app.db →
  // file:///backups/app). One replica serves one database: Add refuses a
  // database whose replica URL another added database already uses (two
  // files named app.db, or app.db and app.sqlite, under one root) with
  // kAlreadyExists naming both, and a derived name that is not a valid path
  // segment ("." or "..") with kInvalidArgument.
  std::string replica_url;
  // Switch a database that is not in WAL mode to WAL when added.
  // Default: false (such a database is refused with an error naming the fix).
  bool enable_wal = false;
  // Take a full snapshot this often (a new restore base; older objects can
  // then be deleted by retention). A restore reads the
  // snapshot and one top-level (hourly) compacted object per hour since:
  // with 12 h, a database at one commit per second restores from at most
  // ~41 objects (with 24 h, ~53 just before the snapshot). Default: 12 h.
  int64_t snapshot_interval_ms = 12ll * 3600 * 1000;
  // Keep restore points of at least this far back: every txid of the last
  // keep_every_txid_ms, then the compaction levels' boundaries and the
  // snapshots (every txid when compaction is off). Default: 24 h.
  int64_t retention_ms = 24ll * 3600 * 1000;
  // Compaction levels (docs/FORMAT.md, "Compaction levels"): level 1
  // merges the segments stored over its interval into one object, each
  // further level merges (its interval / the previous one's) objects of the
  // level below. Only a compacted object's last txid is a restore point, so
  // a restore reads the latest snapshot, a few compacted objects and the
  // per-sync segments of the last interval. Compaction runs in the
  // database's sync job once per level 1 interval, only after a sync that
  // stored something (an idle database makes no request); the first run
  // after a start comes within one interval of the first change, spread by
  // database so that databases restarted together do not all compact in
  // the same second. Empty = no compaction (every txid stays
  // restorable for the whole retention).
  // Default: {10 s, 1 min, 10 min, 1 h}: at one commit per second the
  // latest restore then reads the snapshot, at most 23 hourly objects and
  // about 30 finer ones (with {30 s, 5 min, 1 h}: about 87, 30 of them
  // per-sync segments).
  std::vector<int64_t> compaction_levels_ms = {10 * 1000, 60 * 1000, 10 * 60 * 1000, 3600 * 1000};
  // Every transaction stays restorable at least this long: an object of a
  // level below the top is deleted once an object of the next level covers
  // it and that object's last capture is this old. Then restore points are
  // the level boundaries (older than this: those of level 3, ~10 min;
  // older than twice this: the top level's, ~1 h) and the snapshots, within the
  // retention window. Default: 1 h.
  int64_t keep_every_txid_ms = 3600 * 1000;
  // PASSIVE checkpoint once the WAL holds this many frames. Default: 1000.
  uint32_t checkpoint_pages = 1000;
  // TRUNCATE checkpoint (shrinks the WAL file) above this. Default: 121359.
  uint32_t truncate_pages = 121359;
  // PASSIVE checkpoint after this long without new frames. Default: 60 s.
  int64_t checkpoint_quiet_ms = 60 * 1000;
  // Poll the WAL this often to find commits of other processes (one stat
  // per poll; 0 disables polling: use Notify/Sync). Default: 1 s.
  int64_t poll_interval_ms = 1000;
  // zstd level for segments and snapshots. Default: 1.
  int compression_level = 1;
  // After Notify (or a commit seen by an Attach-ed connection's WAL hook),
  // wait this long to batch further commits into one segment (ending on a
  // shared tick of a fifth of it, at most 10 ms, rounded down: databases
  // notified within one tick are synced together). Default: 50 ms.
  int64_t sync_interval_ms = 50;
  // Metrics label value this database is counted under (e.g. a tenant
  // tier). Series never carry database names. Default: "default".
  std::string metrics_group = "default";
  // Packing (docs/FORMAT.md, "Packs"): the segments of every database
  // added with a non-zero window whose replicas share a root (and store)
  // go into one pack object per window, or per pack_max_bytes, whichever
  // comes first: one PUT for many databases instead of one per sync and
  // database. WaitDurable, Sync and on_durable then answer once the pack
  // holding the transaction is stored (at most the window after the first
  // Notify of the pack's oldest change, plus the store's time: the sync
  // interval before the capture is inside the window, not added to it).
  // Each database's segments leave the packs for objects under its own
  // prefix within pack_unpack_ms (one object per database and run), and a
  // pack is deleted once all its members are out. Stored packs wait for
  // that in memory up to memory_cap / 8, past it in state_dir/unpack (up
  // to ReplicatorOptions::spool_cap of copies; past that, and always for
  // the built-in file:// store, they are read back from the store by
  // ranges when unpacked). Until then a database's
  // recent changes are also in <root>/.replite-packs/, where anyone who may
  // read that prefix reads every member's: keep tenants that must not share
  // it on separate roots, or leave packing off for them. A segment larger
  // than a quarter of pack_max_bytes, snapshots and new generations are
  // stored per database as without packing. 0 = off. Default: off (each
  // tenant's data only under its own prefix, durable one upload after the
  // commit); turn it on where store requests cost more than that.
  int64_t pack_window_ms = 0;
  uint64_t pack_max_bytes = 8ull << 20;
  int64_t pack_unpack_ms = 120 * 1000;
  // zstd level of the segments captured for packs (those of at most a
  // quarter of pack_max_bytes of pages), -7..-1 (zstd's fast levels) or
  // 1..22. A member is compressed on its own as its commit is captured
  // and stays in packs only until unpacked, when each database's run of
  // members is rewritten at compression_level (a run of one member keeps
  // its bytes until compaction rewrites it). At -1 a one-page member
  // takes about half of level 1's CPU (zstd is the capture's largest
  // single part) and ~1.6x its bytes (bench/README.md, many_dbs).
  // Default: -1.
  int pack_compression_level = -1;
};

struct ReplicatorOptions {
  // Root replica URL for databases added without their own
  // (file:///abs/dir, s3://bucket/prefix?..., abs://ACCOUNT@CONTAINER/prefix).
  // Default: "" (each database must then name its replica_url).
  std::string replica_url;
  // Cap on the shared worker threads for every database. Workers start on
  // demand (a job that finds none idle starts one) and end after a minute
  // idle (at once when a burst of connection opens is over: see
  // core/burst_trim.h), so a process with a few databases runs one or two. A worker
  // spends most of a sync waiting: in fsync (local directory store), on
  // page-cache misses, or for the HTTP answer (S3), so this is the store's
  // IO concurrency more than CPU. Concurrent fsyncs share the disk's
  // flushes: after a 100 ms stall of the disk, 4 workers at 1,000 syncs/s
  // took 2-3 times the stall to drain the queue, 64 kept the lag within
  // the stall (bench/README.md, many_dbs). Each running job holds up to 16
  // descriptors of fd_budget, so at most fd_budget / 16 workers start, and
  // the budget left after 16 per worker keeps hot databases' connections
  // (7 each: the kept connection and the one holding the read mark). Many
  // hot databases on a local disk: 64 with fd_budget >= 1024 + 7 per hot
  // database. Default: 32.
  int worker_threads = 32;
  // Directory for the position store (positions.db) and the spool of
  // snapshots being uploaded. Default: "" = $XDG_STATE_HOME/replite or
  // $HOME/.local/state/replite.
  std::string state_dir;
  // Options for databases added without their own. Default: as above.
  DatabaseOptions defaults;
  // HTTP connection pool shared by every S3 store. Default: 32 / 16.
  int max_connections = 32;
  int max_connections_per_host = 16;
  // TLS: CA bundle path ("" = system) and verification. Default: verify.
  std::string ca_file;
  bool verify_tls = true;
  // Write positions to the position store at most this often. Default: 1 s.
  int64_t position_flush_ms = 1000;
  // Called after each upload that advances a database's durable txid, on a
  // worker thread; must not block. Default: none.
  std::function<void(const std::string& path, uint64_t durable_txid)> on_durable;
  // Global budget of file descriptors held by idle or hot databases (jobs
  // open what they need and close it after). Default: 1024.
  int fd_budget = 1024;
  // Global cap on memory for captured changes being encoded and uploaded,
  // bytes. Split evenly among the workers: a segment larger than a job's
  // share is built in the spool directory and streamed. Compaction takes
  // two more eighths of it: objects just stored, kept for the next merge
  // instead of read back, and one merge at a time whose inputs exceed a
  // job's share. Default: 256 MiB.
  uint64_t memory_cap = 256ull << 20;
  // At most this many malloc arenas in the process (glibc's
  // mallopt(M_ARENA_MAX)), set by Open. glibc gives threads that allocate
  // at once arenas of their own, up to 8 per core; after a first-snapshot
  // storm the workers' arenas keep fragments that malloc_trim cannot give
  // back (bench/README.md, many_dbs: 100,000 databases added cold, settled
  // RSS per database with 2 and without). This changes the allocator of the
  // whole process, the application's threads included (arenas that exist
  // already stay), and a later Open does not undo it: 0 leaves malloc as it
  // is. Without glibc it does nothing. Default: 0 (the CLI sidecar, whose
  // process is the library's own, sets one per core, at least 2).
  int malloc_arena_max = 0;
  // Cap on the local upload spool (state_dir/upload-spool): while the store
  // fails, captured segments are written there (so the WAL can still be
  // checkpointed) and uploaded in order once it answers. When the spool is
  // full, capture pauses and changes wait in the WAL (which then grows);
  // nothing is dropped. The local copies of stored packs waiting to be
  // unpacked (DatabaseOptions::pack_window_ms) have a cap of the same size
  // of their own. Default: 1 GiB.
  uint64_t spool_cap = 1ull << 30;
  // Leases (one writer per replica): before writing a replica the
  // Replicator takes its lease object (<replica>/lease) and keeps it alive
  // with a heartbeat (<replica parent>/.replite/instances/<instance id>,
  // one PUT every lease_ttl_ms / 4 for all databases under one parent). A
  // replica whose lease another live instance holds is not written: the
  // database's status names the holder until it stops (Close releases at
  // once; a killed holder's lease expires after lease_ttl_ms). A holder
  // that cannot renew for 3/4 of the ttl stops writing until it can. Hosts'
  // clocks must agree within lease_ttl_ms / 4. 0 = no leases (only when
  // nothing else can ever write the same replicas). Default: 30 s.
  int64_t lease_ttl_ms = 30000;
  // A generation's first snapshot (which has no captured state to be
  // compared with, unlike later ones, whose checksum must equal the
  // captured state's) is checked before it can be reported durable when
  // the database is at most this large: its pages are copied to the spool
  // directory as they are read and SQLite's PRAGMA quick_check runs on the
  // copy (a torn read, pages from two moments, passes every hash but not
  // this). Costs one more write and read of the database's size per new
  // generation (bench/snapshot_bench). 0 = never. Default: 1 GiB.
  uint64_t snapshot_verify_max_bytes = 1ull << 30;
  // Clock and test hooks. Default: nullptr = Env::Default().
  Env* env = nullptr;
  // Opens the store of replica_url (at Open) and of each database's own
  // DatabaseOptions::replica_url (at Add) instead of the built-in backends
  // (see ObjectStoreFactory in replite/sys/object_store.h). Default: empty
  // = the built-in file, s3, gs and abs stores.
  ObjectStoreFactory store_factory;
  // Receives one line per notable event (new generation and its reason,
  // errors, retention). Never receives secrets. Default: nullptr = stderr.
  std::function<void(const std::string& line)> logger;
};

}  // namespace replite
