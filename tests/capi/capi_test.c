/* End-to-end test of the C ABI, in plain C11: replicate a database written
 * with sqlite3 to a file:// replica (and to S3 when REPLITE_CAPI_S3_URL names
 * a bucket root, e.g. on moto), wait until durable, read status and metrics,
 * remove and close, then restore at the latest transaction, at a txid and at
 * a time, and onto an existing file; a replica missing a segment restores
 * only with "stop-at-last-good", which replite_restore_json reports. SQLite
 * is the oracle: integrity_check and row counts are compared with what the
 * source held at each point.
 * Prints "N passed, N failed"; exits non-zero on any failure. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "replite.h"

static int passed, failed;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) {                                                            \
      passed++;                                                            \
    } else {                                                               \
      failed++;                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                      \
  } while (0)

/* Checks that `call` (which takes &err) returns `want`; prints the error. */
#define CHECK_RC(want, call)                                                              \
  do {                                                                                    \
    char* err = NULL;                                                                     \
    int rc_ = (call);                                                                     \
    if (rc_ == (want)) {                                                                  \
      passed++;                                                                           \
    } else {                                                                              \
      failed++;                                                                           \
      fprintf(stderr, "%s:%d: %s returned %d (%s), want %d: %s\n", __FILE__, __LINE__, #call, rc_, \
              replite_error_name(rc_), (want), err ? err : "(no message)");               \
    }                                                                                     \
    replite_free(err);                                                                    \
  } while (0)

#define CHECK_OK(call) CHECK_RC(REPLITE_OK, call)

static void exec_sql(sqlite3* db, const char* sql) {
  char* msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    fprintf(stderr, "sql failed: %s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    exit(2);  /* the test's own setup failed: nothing else is meaningful */
  }
}

/* First column of the first row as an integer, or -1. */
static long long query_int(const char* path, const char* sql) {
  sqlite3* db = NULL;
  sqlite3_stmt* st = NULL;
  long long v = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static int integrity_ok(const char* path) {
  sqlite3* db = NULL;
  sqlite3_stmt* st = NULL;
  int ok = 0;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    ok = strcmp((const char*)sqlite3_column_text(st, 0), "ok") == 0;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return ok;
}

/* The application's connection to a new database in WAL mode, after `sql`.
 * Like every application sharing a database it sets a busy timeout: replite
 * takes the write lock for a few milliseconds around snapshots and
 * checkpoints. */
static sqlite3* open_app(const char* path, const char* sql) {
  sqlite3* db = NULL;
  CHECK(sqlite3_open(path, &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  exec_sql(db, "PRAGMA journal_mode=WAL;");
  exec_sql(db, sql);
  return db;
}

static int file_exists(const char* path) { return access(path, F_OK) == 0; }

static int rm_entry(const char* path, const struct stat* sb, int flag, struct FTW* ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

/* ---- callbacks ---- */

static atomic_int log_lines;
static void on_log(const char* line, void* user) {
  (void)line;
  atomic_fetch_add(&log_lines, 1);
  atomic_fetch_add((atomic_int*)user, 0); /* user pointer passed through */
}

static _Atomic unsigned long long durable_max;
static void on_durable(const char* path, uint64_t txid, void* user) {
  (void)path;
  atomic_fetch_add((atomic_int*)user, 1);
  unsigned long long cur = atomic_load(&durable_max);
  while (txid > cur && !atomic_compare_exchange_weak(&durable_max, &cur, txid)) {
  }
}

struct progress_state {
  pthread_t caller;
  int calls;
  int wrong_thread;
  uint64_t last_done, last_total;
};
static void on_progress(uint64_t done, uint64_t total, void* user) {
  struct progress_state* p = user;
  p->calls++;
  if (!pthread_equal(p->caller, pthread_self())) p->wrong_thread++;
  p->last_done = done;
  p->last_total = total;
}

/* Every documented option key accepts a well-formed value. */
static void test_option_keys(void) {
  static const char* kv[][2] = {
      {"replica-url", "file:///tmp/replite-capi-keys"}, {"state-dir", "/tmp/x"}, {"worker-threads", "3"},
      {"max-connections", "8"}, {"max-connections-per-host", "4"}, {"sync-interval-ms", "20"},
      {"poll-interval-ms", "0"}, {"snapshot-interval", "90s"}, {"snapshot-interval", "500ms"},
      {"snapshot-interval", "86400s"}, {"retention", "24h"}, {"retention", "7d"}, {"checkpoint-pages", "500"},
      {"truncate-pages", "10000"}, {"fd-budget", "64"}, {"memory-cap", "64M"}, {"memory-cap", "1G"},
      {"memory-cap", "4096"}, {"memory-cap", "512KiB"}, {"spool-cap", "2G"}, {"metrics-group", "tier-1"}, {"enable-wal", "1"},
      {"enable-wal", "0"}, {"compression-level", "3"}, {"ca-file", ""}, {"verify-tls", "0"},
      {"verify-tls", "true"}, {"checkpoint-quiet-ms", "1m"}, {"position-flush-ms", "250"}, {"replica-url", ""},
      {"pack-compression-level", "-1"}, {"pack-compression-level", "-7"}, {"pack-compression-level", "19"},
  };
  replite_options* o = replite_options_create();
  CHECK(o != NULL);
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    char* err = NULL;
    int rc = replite_options_set(o, kv[i][0], kv[i][1], &err);
    if (rc != REPLITE_OK) fprintf(stderr, "option %s=%s: %s\n", kv[i][0], kv[i][1], err);
    CHECK(rc == REPLITE_OK);
    replite_free(err);
  }
  replite_options_destroy(o);
}

static int contains(const char* hay, const char* needle) { return hay != NULL && strstr(hay, needle) != NULL; }

/* Replicates one database to root_url + "/app" and restores it. */
static void run_e2e(const char* dir, const char* root_url) {
  char db_path[1024], state[1024], url[1024], out1[1024], out2[1024], out3[1024], needle[256];
  snprintf(db_path, sizeof db_path, "%s/app.db", dir);
  snprintf(state, sizeof state, "%s/state", dir);
  /* root + "/" + file name without .db; a query string stays at the end. */
  const char* q = strchr(root_url, '?');
  snprintf(url, sizeof url, "%.*s/app%s", (int)(q ? q - root_url : (long)strlen(root_url)), root_url, q ? q : "");
  snprintf(out1, sizeof out1, "%s/restored-latest.db", dir);
  snprintf(out2, sizeof out2, "%s/restored-txid.db", dir);
  snprintf(out3, sizeof out3, "%s/restored-time.db", dir);
  fprintf(stderr, "e2e: %s -> %s\n", db_path, url);

  /* The application's database, in WAL mode, with its own connection. */
  sqlite3* app = open_app(db_path, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);");
  exec_sql(app, "INSERT INTO t(v) VALUES ('a'), ('b'), ('c');");

  atomic_int log_user = 0, durable_user = 0;
  atomic_store(&durable_max, 0);
  replite_options* o = replite_options_create();
  CHECK_OK(replite_options_set(o, "replica-url", root_url, &err));
  CHECK_OK(replite_options_set(o, "state-dir", state, &err));
  CHECK_OK(replite_options_set(o, "worker-threads", "2", &err));
  CHECK_OK(replite_options_set(o, "poll-interval-ms", "0", &err)); /* the test drives syncs */
  CHECK_OK(replite_options_set(o, "sync-interval-ms", "10", &err));
  CHECK_OK(replite_options_set_logger(o, on_log, &log_user, &err));
  CHECK_OK(replite_options_set_on_durable(o, on_durable, &durable_user, &err));

  replite_replicator* r = NULL;
  CHECK_OK(replite_replicator_open(o, &r, &err));
  CHECK(r != NULL);
  replite_options_destroy(o); /* the replicator holds a copy */
  if (r == NULL) return;

  { /* added through the batch call (replite_db_add: the other tests) */
    const char* paths[1] = {db_path};
    int res[1] = {1};
    CHECK_OK(replite_db_add_many(r, paths, 1, NULL, res, &err));
    CHECK(res[0] == REPLITE_OK);
  }
  CHECK_RC(REPLITE_ERR_ALREADY_EXISTS, replite_db_add(r, db_path, NULL, &err));
  CHECK_OK(replite_db_attach(r, db_path, app, &err));

  /* Point 1: wait until what is committed is durable. */
  exec_sql(app, "BEGIN; INSERT INTO t(v) VALUES ('d'); INSERT INTO t(v) VALUES ('e'); COMMIT;");
  uint64_t txid1 = 0;
  CHECK_OK(replite_db_wait_durable(r, db_path, 10000, &txid1, &err));
  CHECK(txid1 > 0);
  const long long rows1 = query_int(db_path, "SELECT count(*) FROM t");
  CHECK(rows1 == 5);

  /* Point 2: more transactions, a notify, and wait again. */
  for (int i = 0; i < 20; i++) exec_sql(app, "INSERT INTO t(v) VALUES (hex(randomblob(300)));");
  CHECK_OK(replite_db_notify(r, db_path));
  uint64_t txid2 = 0;
  CHECK_OK(replite_db_wait_durable(r, db_path, 10000, &txid2, &err));
  CHECK(txid2 >= txid1 + 20);
  const long long rows2 = query_int(db_path, "SELECT count(*) FROM t");
  CHECK(rows2 == 25);

  /* on_durable saw txid2 (it runs before waiters are woken; allow a moment). */
  for (int i = 0; i < 100 && atomic_load(&durable_max) < txid2; i++) sleep_ms(10);
  if (atomic_load(&durable_max) != txid2)
    fprintf(stderr, "on_durable max %llu, txid2 %llu\n", atomic_load(&durable_max), (unsigned long long)txid2);
  CHECK(atomic_load(&durable_max) == txid2);
  CHECK(atomic_load(&durable_user) > 0);
  CHECK(atomic_load(&log_lines) > 0); /* at least "new generation" */

  /* Status of one database, then the summary; both JSON. */
  char* err = NULL;
  char* js = replite_status_json(r, db_path, &err);
  CHECK(js != NULL);
  snprintf(needle, sizeof needle, "\"durable_txid\":%llu,", (unsigned long long)txid2);
  CHECK(contains(js, needle));
  snprintf(needle, sizeof needle, "\"local_txid\":%llu,\"spooled_segments\":0,", (unsigned long long)txid2);
  CHECK(contains(js, needle));
  CHECK(contains(js, "\"last_error\":null"));
  CHECK(contains(js, "\"metrics_group\":\"default\""));
  CHECK(contains(js, "\"durable_time\":\"20"));
  if (js) printf("status: %s\n", js);
  replite_free(js);
  js = replite_status_json(r, NULL, &err);
  CHECK(contains(js, "\"databases\":1,"));
  CHECK(contains(js, "\"laggards\":[{\"path\":"));
  CHECK(contains(js, "\"worker_threads\":2"));
  CHECK(contains(js, "\"memory_bytes\":{\"slots\":"));
  CHECK(contains(js, "\"rss\":"));
  replite_free(js);
  js = replite_databases_json(r, &err);
  CHECK(js != NULL && js[0] == '[' && contains(js, "/app.db\""));
  replite_free(js);
  CHECK(err == NULL);
  js = replite_status_json(r, "/no/such/database.db", &err);
  CHECK(js == NULL && contains(err, "NotFound"));
  replite_free(err);
  err = NULL;

  char* metrics = replite_metrics_text(r, &err);
  CHECK(contains(metrics, "# TYPE replite_"));
  CHECK(contains(metrics, "replite_transactions_total{group=\"default\"}"));
  CHECK(!contains(metrics, "app.db")); /* series never name databases */
  replite_free(metrics);

  /* Snapshot and checkpoint on demand; then the replica has a generation. */
  CHECK_OK(replite_db_snapshot(r, db_path, &err));
  CHECK_OK(replite_db_checkpoint(r, db_path, 1, &err));
  js = replite_generations_json(url, &err);
  CHECK(contains(js, "[{\"id\":\""));
  snprintf(needle, sizeof needle, "\"last_txid\":%llu,", (unsigned long long)txid2);
  CHECK(contains(js, needle));
  replite_free(js);

  /* Remove: the database is no longer known; the replica stays. */
  CHECK_OK(replite_db_detach(r, db_path, app, &err));
  CHECK_OK(replite_db_remove(r, db_path, &err));
  CHECK_RC(REPLITE_ERR_NOT_FOUND, replite_db_remove(r, db_path, &err));
  CHECK_RC(REPLITE_ERR_NOT_FOUND, replite_db_wait_durable(r, db_path, 100, NULL, &err));
  CHECK_RC(REPLITE_ERR_NOT_FOUND, replite_db_notify(r, db_path));

  /* Added again with per-database options, then closed: close flushes the
   * last transactions written after the add without any wait. */
  CHECK_OK(replite_db_add_with(r, db_path, "snapshot-interval=1h; metrics-group=tenants", &err));
  exec_sql(app, "INSERT INTO t(v) VALUES ('last');");
  const long long rows3 = query_int(db_path, "SELECT count(*) FROM t");
  CHECK(rows3 == 26);
  CHECK_OK(replite_replicator_close(r, &err));
  sqlite3_close(app);

  /* Time of the last write, rounded up: "timestamp=" restores it. */
  char ts[64], opt[128];
  time_t now = time(NULL) + 2;
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);

  /* Restore at the latest transaction, with progress on this thread. */
  struct progress_state ps = {pthread_self(), 0, 0, 0, 0};
  CHECK_OK(replite_restore(url, out1, NULL, on_progress, &ps, &err));
  CHECK(ps.calls > 0 && ps.wrong_thread == 0 && ps.last_done == ps.last_total && ps.last_total > 0);
  CHECK(integrity_ok(out1));
  CHECK(query_int(out1, "SELECT count(*) FROM t") == rows3);

  /* Restore at txid1: the rows the source held then. */
  snprintf(opt, sizeof opt, "txid=%llu", (unsigned long long)txid1);
  CHECK_OK(replite_restore(url, out2, opt, NULL, NULL, &err));
  CHECK(integrity_ok(out2));
  CHECK(query_int(out2, "SELECT count(*) FROM t") == rows1);

  /* Restore as of a time (after every write): the latest again. */
  snprintf(opt, sizeof opt, "timestamp=%s", ts);
  CHECK_OK(replite_restore(url, out3, opt, NULL, NULL, &err));
  CHECK(query_int(out3, "SELECT count(*) FROM t") == rows3);

  /* Onto an existing file: refused and left alone, unless overwrite=1. */
  CHECK_RC(REPLITE_ERR_ALREADY_EXISTS, replite_restore(url, out2, NULL, NULL, NULL, &err));
  CHECK(query_int(out2, "SELECT count(*) FROM t") == rows1);
  CHECK_OK(replite_restore(url, out2, "overwrite=1", NULL, NULL, &err));
  CHECK(query_int(out2, "SELECT count(*) FROM t") == rows3);

  /* A txid past the end: an error, and no output file. */
  char out4[1100];
  snprintf(out4, sizeof out4, "%s/restored-missing.db", dir);
  char* rerr = NULL;
  int rc = replite_restore(url, out4, "txid=99999999", NULL, NULL, &rerr);
  CHECK(rc < 0 && rerr != NULL && !file_exists(out4));
  replite_free(rerr);
}

/* Status JSON stays valid for any path: quotes, backslashes and control
 * characters are escaped, invalid UTF-8 becomes U+FFFD. */
static void test_json_escaping(const char* dir) {
  char db_path[700], state[700], url[700];
  snprintf(db_path, sizeof db_path, "%s/q\"b\\s\x01\xff.db", dir);
  snprintf(state, sizeof state, "%s/state-json", dir);
  snprintf(url, sizeof url, "file://%s/replica-json", dir);
  sqlite3* db = open_app(db_path, "CREATE TABLE t(x);");
  replite_options* o = replite_options_create();
  CHECK_OK(replite_options_set(o, "state-dir", state, &err));
  CHECK_OK(replite_options_set(o, "metrics-group", "a\"b", &err));
  replite_replicator* r = NULL;
  CHECK_OK(replite_replicator_open(o, &r, &err));
  replite_options_destroy(o);
  CHECK_OK(replite_db_add(r, db_path, url, &err));
  CHECK_OK(replite_db_wait_durable(r, db_path, 10000, NULL, &err));
  char* js = replite_status_json(r, db_path, NULL);
  CHECK(contains(js, "/q\\\"b\\\\s\\u0001\xef\xbf\xbd.db\","));
  CHECK(contains(js, "\"metrics_group\":\"a\\\"b\""));
  replite_free(js);
  js = replite_databases_json(r, NULL);
  CHECK(contains(js, "\\u0001\xef\xbf\xbd.db\"]"));
  replite_free(js);
  CHECK_OK(replite_replicator_close(r, &err));
  sqlite3_close(db);
}

/* Removes the segment of `gen_dir` holding txid; 1 if one was removed. */
static int remove_segment_holding(const char* gen_dir, unsigned long long txid) {
  char seg_dir[1300], path[1600];
  snprintf(seg_dir, sizeof seg_dir, "%s/segments", gen_dir);
  DIR* d = opendir(seg_dir);
  if (d == NULL) return 0;
  int removed = 0;
  struct dirent* e;
  while (!removed && (e = readdir(d)) != NULL) {
    unsigned long long first = 0, last = 0;
    if (sscanf(e->d_name, "%16llx-%16llx.seg", &first, &last) == 2 && first <= txid && txid <= last) {
      snprintf(path, sizeof path, "%s/%s", seg_dir, e->d_name);
      removed = unlink(path) == 0;
    }
  }
  closedir(d);
  return removed;
}

/* The only generation directory under a file:// replica at `replica_dir`. */
static int only_generation(const char* replica_dir, char* out, size_t size) {
  char gens[900];
  snprintf(gens, sizeof gens, "%s/generations", replica_dir);
  DIR* d = opendir(gens);
  if (d == NULL) return 0;
  int n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++, snprintf(out, size, "%s/%s", gens, e->d_name);
  closedir(d);
  return n == 1;
}

/* A replica missing a middle segment: refused by default (NOT_FOUND, no
 * output); with "stop-at-last-good=1" restored up to the txid before the
 * gap, and replite_restore_json says so. */
static void test_stop_at_last_good(const char* dir) {
  char db_path[700], state[700], replica_dir[700], url[800], out[700], gen_dir[1200], opt[64];
  snprintf(db_path, sizeof db_path, "%s/gap.db", dir);
  snprintf(state, sizeof state, "%s/state-gap", dir);
  snprintf(replica_dir, sizeof replica_dir, "%s/replica-gap", dir);
  snprintf(url, sizeof url, "file://%s", replica_dir);
  snprintf(out, sizeof out, "%s/restored-gap.db", dir);
  sqlite3* app = open_app(db_path, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);");
  replite_options* o = replite_options_create();
  CHECK_OK(replite_options_set(o, "state-dir", state, &err));
  CHECK_OK(replite_options_set(o, "poll-interval-ms", "0", &err));
  CHECK_OK(replite_options_set(o, "sync-interval-ms", "1", &err));
  replite_replicator* r = NULL;
  CHECK_OK(replite_replicator_open(o, &r, &err));
  replite_options_destroy(o);
  if (r == NULL) return;
  CHECK_OK(replite_db_add(r, db_path, url, &err));
  CHECK_OK(replite_db_attach(r, db_path, app, &err));
  /* One transaction per segment: txid[i] holds i + 1 rows. */
  uint64_t txid[5] = {0};
  for (int i = 0; i < 5; i++) {
    exec_sql(app, "INSERT INTO t(v) VALUES (hex(randomblob(100)));");
    CHECK_OK(replite_db_wait_durable(r, db_path, 10000, &txid[i], &err));
  }
  CHECK_OK(replite_db_detach(r, db_path, app, &err));
  CHECK_OK(replite_replicator_close(r, &err));
  sqlite3_close(app);
  CHECK(txid[1] < txid[2] && txid[2] < txid[3]);

  CHECK(only_generation(replica_dir, gen_dir, sizeof gen_dir));
  CHECK(remove_segment_holding(gen_dir, txid[2]));
  CHECK_RC(REPLITE_ERR_NOT_FOUND, replite_restore(url, out, NULL, NULL, NULL, &err));
  CHECK(!file_exists(out));
  CHECK_RC(REPLITE_ERR_INVALID_ARGUMENT, replite_restore(url, out, "stop-at-last-good=perhaps", NULL, NULL, &err));

  char* err = NULL;
  char* js = replite_restore_json(url, out, "stop-at-last-good=1", NULL, NULL, &err);
  if (js == NULL) fprintf(stderr, "replite_restore_json: %s\n", err ? err : "?");
  CHECK(js != NULL && err == NULL);
  if (js) printf("restore: %s\n", js);
  snprintf(opt, sizeof opt, "\"txid\":%llu,", (unsigned long long)txid[1]);
  CHECK(contains(js, opt));
  snprintf(opt, sizeof opt, "\"requested_txid\":%llu,", (unsigned long long)txid[4]);
  CHECK(contains(js, opt));
  CHECK(contains(js, "\"stopped_early\":true,\"bad_object\":null,\"stop_reason\":\"missing object: "));
  replite_free(js);
  CHECK(integrity_ok(out));
  CHECK(query_int(out, "SELECT count(*) FROM t") == 2);

  /* Without damage before the target, nothing stops. */
  snprintf(opt, sizeof opt, "txid=%llu,stop-at-last-good=1,overwrite=1", (unsigned long long)txid[1]);
  js = replite_restore_json(url, out, opt, NULL, NULL, &err);
  CHECK(contains(js, "\"stopped_early\":false,\"bad_object\":null,\"stop_reason\":null}"));
  replite_free(js);
}

int main(void) {
  printf("replite %s\n", replite_version());
  CHECK(replite_version() != NULL && strchr(replite_version(), '.') != NULL);
  test_option_keys();

  const char* tmp = getenv("TMPDIR");
  char dir[512];
  snprintf(dir, sizeof dir, "%s/replite-capi-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  char root[1100];
  snprintf(root, sizeof root, "file://%s/replica", dir);
  run_e2e(dir, root);
  test_json_escaping(dir);
  test_stop_at_last_good(dir);

  /* S3 (e.g. moto): REPLITE_CAPI_S3_URL=s3://bucket/prefix?endpoint=...; the
   * credentials come from the usual AWS_* environment variables. */
  const char* s3 = getenv("REPLITE_CAPI_S3_URL");
  if (s3 != NULL && *s3 != '\0') {
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/s3", dir);
    CHECK(mkdir(sub, 0700) == 0);
    run_e2e(sub, s3);
  } else {
    printf("S3 part skipped: REPLITE_CAPI_S3_URL is not set\n");
  }

  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
