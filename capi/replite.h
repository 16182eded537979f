/*
 * replite C ABI: continuous replication of SQLite databases (WAL mode) to
 * object storage (file://, s3://, gs://, abs://, sftp://), and point-in-time restore.
 *
 * Link with -lreplite (pkg-config: replite). C11 and C++ compatible.
 *
 *   replite_options* o = replite_options_create();
 *   replite_options_set(o, "replica-url", "file:///var/backups", &err);
 *   replite_replicator* r = NULL;
 *   replite_replicator_open(o, &r, &err);
 *   replite_options_destroy(o);              // the replicator keeps a copy
 *   replite_db_add(r, "/data/app.db", NULL, &err);
 *   ...  write to /data/app.db with sqlite3 ...
 *   replite_db_wait_durable(r, "/data/app.db", 5000, &txid, &err);
 *   replite_replicator_close(r, &err);       // flushes, then frees
 *
 * ======================== Rules (they hold for every function) ==========
 *
 * Return values. Functions returning int return REPLITE_OK (0) on success
 * and a negative REPLITE_ERR_* code on failure. Functions returning a
 * pointer return NULL on failure. The code alone tells whether a retry may
 * help (replite_error_retryable).
 *
 * Errors: the `char** errptr` convention of leveldb. errptr may be NULL
 * (the message is then discarded). Otherwise *errptr must be NULL or a
 * message from an earlier call: on failure the old message is freed and
 * *errptr receives a new malloc'd, NUL-terminated message (free it with
 * replite_free); on success *errptr is left untouched.
 *
 * Ownership. Every char* returned (and every *errptr message) belongs to
 * the caller and is freed with replite_free. `const char*` returns
 * (replite_version, replite_error_name) are static: never free them.
 * String arguments are copied; the caller keeps ownership of its buffers.
 * Each handle is freed by exactly one call: replite_options_destroy, or
 * replite_replicator_close / replite_replicator_destroy. The options given
 * to replite_replicator_open are copied, so they may be destroyed or
 * reused right after.
 *
 * Handles. A NULL handle, or one already destroyed / closed, yields
 * REPLITE_ERR_INVALID_ARGUMENT (or NULL for pointer returns), never a crash:
 * live handles are kept in a registry and checked (plus a magic number)
 * before use. Passing a destroyed handle is still a bug in the caller and
 * undefined behaviour in general (its address may be reused by a later
 * handle); the check is a best-effort safety net. Closing or destroying a
 * handle twice is guarded the same way: a second close returns
 * REPLITE_ERR_INVALID_ARGUMENT, a second destroy does nothing.
 *
 * Threading. Every function may be called from any thread, concurrently,
 * including on the same handle. replite_replicator_close may run while other
 * threads are inside calls on the same replicator: those calls finish (or
 * return REPLITE_ERR_CANCELLED) and the memory is released after the last
 * one returns. Blocking calls: replite_db_wait_durable (bounded by its
 * timeout), replite_db_remove, replite_db_snapshot, replite_db_checkpoint,
 * replite_replicator_close, replite_restore and replite_restore_json.
 *
 * Callbacks.
 *  - restore progress: runs on the thread that called replite_restore (or
 *    replite_restore_json), before it returns; never after.
 *  - logger and on-durable (replite_options_set_logger / _on_durable): run
 *    on the library's worker threads, possibly concurrently with each
 *    other; they must not block and must not call
 *    replite_replicator_close. None runs after replite_replicator_close
 *    returns, so `user` may be released then.
 *  - A callback that is accepted (the registering call returned REPLITE_OK)
 *    is honoured: a one-shot callback fires exactly once; a repeated one
 *    fires for every event until the owner is closed. A callback given to
 *    a call that fails is never invoked.
 *
 * Exceptions. No C++ exception crosses this ABI; an unexpected one inside
 * the library becomes REPLITE_ERR_INTERNAL.
 */
#ifndef REPLITE_C_H_
#define REPLITE_C_H_

#include <stddef.h>
#include <stdint.h>

#if defined(REPLITE_BUILDING)
#define REPLITE_C_EXPORT __attribute__((visibility("default")))
#else
#define REPLITE_C_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct sqlite3; /* from <sqlite3.h>; only pointers are used here */

typedef struct replite_options replite_options;       /* opaque */
typedef struct replite_replicator replite_replicator; /* opaque */

/* ---- Error codes: the negation of replite::Code (status.h). ---- */
#define REPLITE_OK 0
#define REPLITE_ERR_INVALID_ARGUMENT -1    /* bad option, URL, path, handle */
#define REPLITE_ERR_NOT_FOUND -2           /* database, object, txid missing */
#define REPLITE_ERR_ALREADY_EXISTS -3      /* restore target exists, added twice */
#define REPLITE_ERR_FAILED_PRECONDITION -4 /* e.g. database not in WAL mode */
#define REPLITE_ERR_CORRUPTION -5          /* checksum mismatch, bad object */
#define REPLITE_ERR_IO -6                  /* local filesystem error (retryable) */
#define REPLITE_ERR_UNAVAILABLE -7         /* store unreachable (retryable) */
#define REPLITE_ERR_PERMISSION_DENIED -8
#define REPLITE_ERR_UNAUTHENTICATED -9
#define REPLITE_ERR_RESOURCE_EXHAUSTED -10 /* disk full, memory cap, fd budget */
#define REPLITE_ERR_CANCELLED -11          /* closed, database removed */
#define REPLITE_ERR_TIMEOUT -12            /* deadline passed (retryable) */
#define REPLITE_ERR_NOT_SUPPORTED -13
#define REPLITE_ERR_INTERNAL -14           /* a bug: please report it */

/* "InvalidArgument", "NotFound", ... for a code; "Unknown" otherwise. */
REPLITE_C_EXPORT const char* replite_error_name(int code);
/* 1 when retrying the same call later may succeed (IO, UNAVAILABLE, TIMEOUT). */
REPLITE_C_EXPORT int replite_error_retryable(int code);

/* "MAJOR.MINOR.PATCH" of the library actually loaded. */
REPLITE_C_EXPORT const char* replite_version(void);

/* Frees a string returned by this library (NULL is allowed). */
REPLITE_C_EXPORT void replite_free(void* p);

/* ---- Options ------------------------------------------------------------
 *
 * replite_options_set keys (values are strings; every key has a default):
 *  Replicator-wide:
 *   "replica-url"      root URL; each database added without its own URL is
 *                      replicated to root + "/" + file name without .db
 *                      (file:///abs/dir, s3://bucket/prefix?endpoint=...,
 *                      gs://bucket/prefix, abs://ACCOUNT@CONTAINER/prefix,
 *                      sftp://USER@HOST:PORT/path?key=PATH).
 *                      Default: none (each database must then name one).
 *   "state-dir"        directory for positions, the snapshot spool and the
 *                      upload spool.
 *                      Default: $XDG_STATE_HOME/replite or
 *                      $HOME/.local/state/replite.
 *   "worker-threads"   cap on the shared worker threads (started on demand),
 *                      1..256. Default: 32.
 *   "max-connections", "max-connections-per-host"
 *                      HTTP pool shared by S3 stores, 1..65536. Default: 32, 16.
 *   "fd-budget"        file descriptors held by databases, 1..1048576.
 *                      Default: 1024.
 *   "malloc-arena-max" at most this many malloc arenas in the whole process
 *                      (glibc's mallopt(M_ARENA_MAX), set when the
 *                      replicator opens; not undone): less memory kept after
 *                      a first-snapshot storm (at 100,000 databases added
 *                      cold: 219 B/db settled with 2, 421 without).
 *                      0..1024, 0 = leave malloc as it is. Default: 0 (the
 *                      CLI sidecar: one per core, at least 2).
 *   "memory-cap"       bytes of captured changes held in memory while being
 *                      encoded and uploaded; a number with an optional K, M
 *                      or G suffix (powers of 1024, "KiB"/"KB" accepted
 *                      too). Default: 256M.
 *   "spool-cap"        bytes of the local upload spool that holds captured
 *                      segments while the store fails (then capture pauses
 *                      and changes wait in the WAL); same syntax. Also the
 *                      cap of the local copies of packs waiting to be
 *                      unpacked (state_dir/unpack). Default: 1G.
 *   "ca-file"          CA bundle for TLS. Default: "" (system bundle).
 *   "verify-tls"       0 or 1 (also true/false, yes/no, on/off). Default: 1.
 *   "position-flush-ms" save positions at most this often. Default: 1000.
 *   "lease-ttl"        leases (one writer per replica, see README): a killed
 *                      holder's lease expires after this long; "0s" turns
 *                      leases off. 0s or 1s..1h. Default: 30s.
 *   "snapshot-verify-max" a generation's first snapshot of a database up to
 *                      this many bytes is checked by SQLite's quick_check
 *                      before it is reported durable; 0 = never. Default: 1G.
 *  Per-database defaults (also accepted by replite_db_add_with):
 *   "sync-interval-ms" batch commits this long after a notification (ending
 *                      on a shared tick of a fifth of it, at most 10 ms,
 *                      rounded down). Default: 50.
 *   "poll-interval-ms" poll the WAL this often for commits by other
 *                      processes; 0 disables polling. Default: 1000.
 *   "snapshot-interval" full snapshot this often. Default: 12h.
 *   "retention"        keep restore points at least this far back. Default: 24h.
 *   "checkpoint-quiet-ms" PASSIVE checkpoint after this long idle. Default: 60000.
 *   "checkpoint-pages" PASSIVE checkpoint above this many WAL frames. Default: 1000.
 *   "truncate-pages"   TRUNCATE checkpoint above this many. Default: 121359.
 *   "metrics-group"    metrics label value (never a database name). Default: "default".
 *   "enable-wal"       0/1: switch a database to WAL mode when added. Default: 0.
 *   "compression-level" zstd level 1..22. Default: 1.
 *   "compaction-levels" "off", or the compaction levels' intervals joined by
 *                      '+', each a multiple of the one before (see
 *                      docs/FORMAT.md, "Compaction levels"). Default: 10s+1m+10m+1h.
 *   "keep-every-txid"  every transaction stays restorable this long; older
 *                      restore points are the compaction levels' boundaries
 *                      and the snapshots. Default: 1h.
 *   "pack-window-ms"   packing (README, "Packing"; docs/FORMAT.md, "Packs"):
 *                      the segments of every database under one replica root
 *                      go into one pack object per this window, durable
 *                      once the pack is stored; 0 = off. 0..60s. Default: 0
 *                      (each tenant's data only under its own prefix).
 *   "pack-max-bytes"   a pack is stored once it holds this much. 64KiB..1GiB.
 *                      Default: 8MiB.
 *   "pack-unpack"      packed segments move into each database's own objects
 *                      this often. Default: 2m.
 *   "pack-compression-level" zstd level of the segments captured for packs,
 *                      -7..-1 (zstd's fast levels) or 1..22; unpacking
 *                      rewrites them at "compression-level". Default: -1.
 *
 * Durations are a number with a unit: ms, s, m, h, d ("90s", "24h"); for the
 * "-ms" keys a plain number is milliseconds too ("snapshot-interval",
 * "retention", "compaction-levels", "keep-every-txid" and "pack-unpack" need
 * the unit).
 * Integers are decimal digits only (no sign, exponent or suffix) and must
 * fit the range given. "state-dir" must not be
 * empty (leave it unset for the default). An unknown key or a malformed value
 * is REPLITE_ERR_INVALID_ARGUMENT with a message naming the key and the
 * accepted form; the options are then unchanged. The CLI's flags follow the
 * same rules (one parser, lib/config/).
 */
/* NULL only when out of memory. */
REPLITE_C_EXPORT replite_options* replite_options_create(void);
REPLITE_C_EXPORT void replite_options_destroy(replite_options* options);
REPLITE_C_EXPORT int replite_options_set(replite_options* options, const char* key, const char* value,
                                         char** errptr);

/* Receives one line per notable event (new generation and why, errors,
 * retention); never secrets. NULL fn restores the default (stderr). */
typedef void (*replite_log_fn)(const char* line, void* user);
REPLITE_C_EXPORT int replite_options_set_logger(replite_options* options, replite_log_fn fn, void* user,
                                                char** errptr);

/* Called after each upload that advances a database's durable txid. NULL fn
 * removes it. */
typedef void (*replite_durable_fn)(const char* db_path, uint64_t durable_txid, void* user);
REPLITE_C_EXPORT int replite_options_set_on_durable(replite_options* options, replite_durable_fn fn, void* user,
                                                    char** errptr);

/* ---- Replicator --------------------------------------------------------- */

/* Starts the shared threads. *out receives the handle, or NULL on failure. */
REPLITE_C_EXPORT int replite_replicator_open(const replite_options* options, replite_replicator** out,
                                             char** errptr);
/* Captures and uploads what is left for every database, saves positions,
 * stops the threads, then frees the handle. The handle is freed even when an
 * error is returned (the error says what could not be flushed). */
REPLITE_C_EXPORT int replite_replicator_close(replite_replicator* r, char** errptr);
/* replite_replicator_close discarding the error. */
REPLITE_C_EXPORT void replite_replicator_destroy(replite_replicator* r);

/* ---- Databases (db_path: absolute or relative to the working directory) -- */

/* Starts replicating db_path (which must be in WAL mode unless "enable-wal").
 * replica_url NULL or "": the root "replica-url" + "/" + file name. A new
 * database's first sync (its snapshot) starts once no database was added
 * for 100 ms (at most 5 s later; a sync, wait-durable or notify call starts
 * it at once), so adding many is not slowed by their snapshots; one with a
 * saved position resumes from it. REPLITE_ERR_ALREADY_EXISTS if added twice
 * (also under another path to the same file: a symlink or hard link),
 * REPLITE_ERR_NOT_FOUND if missing, REPLITE_ERR_FAILED_PRECONDITION if not
 * in WAL mode. */
REPLITE_C_EXPORT int replite_db_add(replite_replicator* r, const char* db_path, const char* replica_url,
                                    char** errptr);
/* Like replite_db_add with per-database options: "key=value" pairs separated
 * by ',' or ';' using the per-database keys above plus "replica-url", e.g.
 * "replica-url=file:///b/app,snapshot-interval=1h". NULL or "": defaults. */
REPLITE_C_EXPORT int replite_db_add_with(replite_replicator* r, const char* db_path, const char* options,
                                         char** errptr);
/* replite_db_add_with for each of the n paths in db_paths, in order (one
 * failing does not stop the others), faster for many new databases: their
 * headers (SQLite? WAL mode?) are read on the workers while this thread
 * goes on with the next ones (100,000 new databases on 2 cores: 1.4-1.75
 * s, against 2.0-2.2 s for a loop of replite_db_add). results: NULL, or n ints that
 * receive each path's code (REPLITE_OK or the error replite_db_add would
 * return). Returns REPLITE_OK if all were added; else the first failure's
 * code, and *errptr says how many failed and the first one's error. Bad
 * options or a NULL path add none. */
REPLITE_C_EXPORT int replite_db_add_many(replite_replicator* r, const char* const* db_paths, size_t n,
                                         const char* options, int* results, char** errptr);
/* Stops replicating; waits for a job in flight. The replica is kept. */
REPLITE_C_EXPORT int replite_db_remove(replite_replicator* r, const char* db_path, char** errptr);
/* Installs a WAL hook on the application's own connection to db_path
 * (already added): each commit schedules a sync, no polling needed. The
 * library then owns checkpointing for that database. The connection must
 * stay open until replite_db_detach, replite_db_remove or close. */
REPLITE_C_EXPORT int replite_db_attach(replite_replicator* r, const char* db_path, struct sqlite3* conn,
                                       char** errptr);
REPLITE_C_EXPORT int replite_db_detach(replite_replicator* r, const char* db_path, struct sqlite3* conn,
                                       char** errptr);
/* Tells the replicator db_path was just written: a sync is scheduled.
 * Never blocks. */
REPLITE_C_EXPORT int replite_db_notify(replite_replicator* r, const char* db_path);
/* Waits until every transaction committed before the call is durable in the
 * store (returning then, before the checkpoint that may follow the capture);
 * *out_txid (may be NULL) = the durable txid, also on TIMEOUT.
 * timeout_ms < 0 waits forever. */
REPLITE_C_EXPORT int replite_db_wait_durable(replite_replicator* r, const char* db_path, int64_t timeout_ms,
                                             uint64_t* out_txid, char** errptr);
/* Sync, then a full snapshot (and retention), now. */
REPLITE_C_EXPORT int replite_db_snapshot(replite_replicator* r, const char* db_path, char** errptr);
/* Sync, then a checkpoint (TRUNCATE when truncate != 0), now. */
REPLITE_C_EXPORT int replite_db_checkpoint(replite_replicator* r, const char* db_path, int truncate,
                                           char** errptr);

/* ---- Introspection (JSON and text are UTF-8, freed with replite_free) ---
 *
 * replite_status_json, db_path given: one object
 *   {"path","replica_url","generation","durable_txid","local_txid",
 *    "spooled_segments","durable_ts_ms",
 *    "durable_time" (RFC 3339 or null),"page_size","db_pages","wal_frames",
 *    "last_sync_ms","generations_started","segments_uploaded",
 *    "snapshots_uploaded","bytes_uploaded","checkpoints","metrics_group",
 *    "last_error" (string or null)}
 * db_path NULL: the summary
 *   {"databases","with_errors","jobs_queued","worker_threads" (the cap),
 *    "worker_threads_live",
 *    "memory_bytes":{"slots","registry","timers","positions","live_positions","connections",
 *      "spool_index","heap_in_use","heap_free","sqlite_all","rss"} (bytes by
 *      part, see ReplicatorStatus::memory in replite/replicator.h),
 *    "laggards":[ <objects as above>, at most 10, most lagging first ]}
 */
REPLITE_C_EXPORT char* replite_status_json(replite_replicator* r, const char* db_path, char** errptr);
/* Prometheus text exposition of the aggregated metrics. */
REPLITE_C_EXPORT char* replite_metrics_text(replite_replicator* r, char** errptr);
/* JSON array of the paths being replicated. */
REPLITE_C_EXPORT char* replite_databases_json(replite_replicator* r, char** errptr);

/* ---- Restore (no replicator needed) -------------------------------------- */

/* Rebuilds the database replicated at replica_url into output_path (written
 * beside it, verified, then renamed into place: never a partial file).
 * options: NULL or "" = the latest transaction; otherwise "key=value" pairs
 * separated by ',' or ';':
 *   "txid=N"             exactly this transaction
 *   "timestamp=RFC3339"  the last transaction at or before this UTC time
 *   "overwrite=1"        replace an existing output_path (default 0:
 *                        REPLITE_ERR_ALREADY_EXISTS)
 *   "parallelism=N"      parallel object fetches, 1..256 (default 4)
 *   "stop-at-last-good=1" when an object the target needs is damaged or
 *                        missing, restore the last transaction the good
 *                        objects before it hold instead of failing (default
 *                        0: REPLITE_ERR_CORRUPTION or REPLITE_ERR_NOT_FOUND
 *                        naming the object). A damaged snapshot still fails.
 *                        replite_restore_json says where and why it stopped.
 * progress (may be NULL) is called with (bytes done, bytes total) on the
 * calling thread as objects are applied (from 0 again if a restore stopping
 * at the last good txid has to rebuild the file). */
typedef void (*replite_progress_fn)(uint64_t done, uint64_t total, void* user);
REPLITE_C_EXPORT int replite_restore(const char* replica_url, const char* output_path, const char* options,
                                     replite_progress_fn progress, void* user, char** errptr);
/* replite_restore returning what was restored, as a JSON object (NULL on
 * failure):
 *   {"generation","txid","requested_txid","ts_ms","time" (RFC 3339),
 *    "page_size","pages","checksum_verified","objects","bytes",
 *    "stopped_early" (true only with stop-at-last-good, when txid <
 *    requested_txid),"bad_object" (its key, or null: missing or none),
 *    "stop_reason" (string or null)} */
REPLITE_C_EXPORT char* replite_restore_json(const char* replica_url, const char* output_path, const char* options,
                                            replite_progress_fn progress, void* user, char** errptr);
/* JSON array of the generations stored at replica_url, oldest first:
 *   [{"id","first_txid","last_txid","first_ts_ms","last_ts_ms","snapshots",
 *     "segments","compacted","bytes"}] ("segments": per-sync ones;
 *     "compacted": objects of the compaction levels) */
REPLITE_C_EXPORT char* replite_generations_json(const char* replica_url, char** errptr);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* REPLITE_C_H_ */
