/* Misuse of the C ABI must give clean errors, never a crash: NULL handles
 * and arguments everywhere, NULL errptr, bad option keys and values, double
 * close/destroy, use after close, close racing with calls on other threads,
 * restore onto an existing file. Plain C11; prints "N passed, N failed". */
#define _XOPEN_SOURCE 700
#include <ftw.h>
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

/* NULL text: any message. */
static int has_text(const char* err, const char* text) {
  return text == NULL || (err != NULL && strstr(err, text) != NULL);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

#define CHECK(cond)                                                             \
  do {                                                                          \
    if (cond) {                                                                 \
      passed++;                                                                 \
    } else {                                                                    \
      failed++;                                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                           \
  } while (0)

/* `call` (using &err) returns `want` and, for errors, sets a message that
 * contains `text` (NULL: any message). */
#define EXPECT(want, text, call)                                                                        \
  do {                                                                                                  \
    char* err = NULL;                                                                                   \
    int rc_ = (call);                                                                                   \
    int ok_ = rc_ == (want) && (rc_ == 0 ? err == NULL : err != NULL) &&                                \
              has_text(err, (text));                        \
    if (ok_) {                                                                                          \
      passed++;                                                                                         \
    } else {                                                                                            \
      failed++;                                                                                         \
      fprintf(stderr, "%s:%d: %s -> %d (%s) \"%s\"; want %d with \"%s\"\n", __FILE__, __LINE__, #call, rc_, \
              replite_error_name(rc_), err ? err : "(none)", (want), (text) ? (text) : "");            \
    }                                                                                                   \
    replite_free(err);                                                                                  \
  } while (0)

#define INVALID REPLITE_ERR_INVALID_ARGUMENT

static void exec_sql(const char* path, const char* sql) {
  sqlite3* db = NULL;
  char* msg = NULL;
  if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
      sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    fprintf(stderr, "sql failed: %s: %s\n", sql, msg ? msg : sqlite3_errmsg(db));
    exit(2);
  }
  sqlite3_close(db);
}

static int rm_entry(const char* path, const struct stat* sb, int flag, struct FTW* ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void test_null_handles(void) {
  char* err = NULL;
  uint64_t txid = 7;
  sqlite3* fake = (sqlite3*)&err; /* never dereferenced: the handle is checked first */
  EXPECT(INVALID, "options handle", replite_options_set(NULL, "worker-threads", "2", &err));
  EXPECT(INVALID, "options handle", replite_options_set_logger(NULL, NULL, NULL, &err));
  EXPECT(INVALID, "options handle", replite_options_set_on_durable(NULL, NULL, NULL, &err));
  replite_options_destroy(NULL);
  replite_replicator* r = (replite_replicator*)&txid;
  EXPECT(INVALID, "options handle", replite_replicator_open(NULL, &r, &err));
  CHECK(r == NULL); /* *out is cleared on failure */
  EXPECT(INVALID, "replicator handle", replite_replicator_close(NULL, &err));
  replite_replicator_destroy(NULL);
  EXPECT(INVALID, "replicator handle", replite_db_add(NULL, "/x.db", NULL, &err));
  EXPECT(INVALID, "replicator handle", replite_db_add_with(NULL, "/x.db", "", &err));
  EXPECT(INVALID, "replicator handle", replite_db_remove(NULL, "/x.db", &err));
  EXPECT(INVALID, "replicator handle", replite_db_attach(NULL, "/x.db", fake, &err));
  EXPECT(INVALID, "replicator handle", replite_db_detach(NULL, "/x.db", fake, &err));
  CHECK(replite_db_notify(NULL, "/x.db") == INVALID);
  EXPECT(INVALID, "replicator handle", replite_db_wait_durable(NULL, "/x.db", 0, &txid, &err));
  CHECK(txid == 0);
  EXPECT(INVALID, "replicator handle", replite_db_snapshot(NULL, "/x.db", &err));
  EXPECT(INVALID, "replicator handle", replite_db_checkpoint(NULL, "/x.db", 0, &err));
  /* A handle that was never ours (here: a stack address) is not a crash either. */
  replite_replicator* bogus = (replite_replicator*)&txid;
  EXPECT(INVALID, "replicator handle", replite_db_add(bogus, "/x.db", NULL, &err));
  EXPECT(INVALID, "options handle", replite_options_set((replite_options*)&txid, "worker-threads", "2", &err));

  /* Pointer-returning calls: NULL plus a message. */
  CHECK(replite_status_json(NULL, NULL, &err) == NULL && err != NULL && strstr(err, "replicator handle"));
  CHECK(replite_metrics_text(NULL, &err) == NULL && err != NULL);
  CHECK(replite_databases_json(NULL, &err) == NULL && err != NULL);
  CHECK(replite_generations_json(NULL, &err) == NULL && err != NULL && strstr(err, "replica_url is NULL"));
  replite_free(err);
  err = NULL;

  /* errptr may be NULL: only the code is reported. */
  CHECK(replite_options_set(NULL, "k", "v", NULL) == INVALID);
  CHECK(replite_status_json(NULL, NULL, NULL) == NULL);
  CHECK(replite_restore(NULL, NULL, NULL, NULL, NULL, NULL) == INVALID);

  replite_free(NULL);
  CHECK(strcmp(replite_error_name(REPLITE_OK), "OK") == 0);
  CHECK(strcmp(replite_error_name(REPLITE_ERR_NOT_FOUND), "NotFound") == 0);
  CHECK(strcmp(replite_error_name(REPLITE_ERR_INTERNAL), "Internal") == 0);
  CHECK(strcmp(replite_error_name(-99), "Unknown") == 0 && strcmp(replite_error_name(5), "Unknown") == 0);
  CHECK(replite_error_retryable(REPLITE_ERR_UNAVAILABLE) && replite_error_retryable(REPLITE_ERR_TIMEOUT));
  CHECK(!replite_error_retryable(REPLITE_ERR_INVALID_ARGUMENT) && !replite_error_retryable(REPLITE_OK));
}

static void test_bad_options(void) {
  replite_options* o = replite_options_create();
  CHECK(o != NULL);
  /* Each bad value names its key and the accepted form. */
  static const char* bad[][3] = {
      {"no-such-key", "1", "unknown option \"no-such-key\""},
      {"worker-threads", "0", "1..256"},
      {"worker-threads", "257", "1..256"},
      {"worker-threads", "abc", "\"worker-threads\""},
      {"worker-threads", "-3", "integer"},
      {"worker-threads", "99999999999999999999999", "integer"},
      {"worker-threads", " 2", "integer"},
      {"max-connections", "", "\"max-connections\""},
      {"fd-budget", "1.5", "\"fd-budget\""},
      {"memory-cap", "12X", "K, M or G"},
      {"memory-cap", "0", "positive"},
      {"memory-cap", "99999999999G", "\"memory-cap\""},
      {"spool-cap", "12X", "K, M or G"},
      {"snapshot-interval", "5y", "duration"},
      {"snapshot-interval", "h", "duration"},
      {"snapshot-interval", "0s", "positive"},
      {"snapshot-interval", "86400000", "with a unit"}, /* only the -ms keys take bare milliseconds */
      {"retention", "24", "with a unit"},
      {"state-dir", "", "\"state-dir\""},
      {"retention", "-1h", "\"retention\""},
      {"sync-interval-ms", "fast", "\"sync-interval-ms\""},
      {"enable-wal", "maybe", "0 or 1"},
      {"verify-tls", "2", "\"verify-tls\""},
      {"compression-level", "23", "1..22"},
      {"pack-compression-level", "0", "-7 to -1 (fast) or 1 to 22"},
      {"pack-compression-level", "-8", "\"pack-compression-level\""},
      {"pack-compression-level", "--1", "\"pack-compression-level\""},
      {"pack-compression-level", "+1", "\"pack-compression-level\""},
      {"metrics-group", "", "\"metrics-group\""},
      {"replica-url", "relative/dir", "\"replica-url\""},
      {"replica-url", "ftp://host/x", "\"replica-url\""},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    EXPECT(INVALID, bad[i][2], replite_options_set(o, bad[i][0], bad[i][1], &err));
  EXPECT(INVALID, "key is NULL", replite_options_set(o, NULL, "1", &err));
  EXPECT(INVALID, "value is NULL", replite_options_set(o, "worker-threads", NULL, &err));

  /* leveldb's errptr rules: a failure replaces (and frees) the old message;
   * a success leaves it as it was. */
  char* err = NULL;
  CHECK(replite_options_set(o, "worker-threads", "0", &err) == INVALID && err != NULL);
  CHECK(replite_options_set(o, "memory-cap", "x", &err) == INVALID && err != NULL && strstr(err, "memory-cap"));
  char* before = err;
  CHECK(replite_options_set(o, "worker-threads", "2", &err) == REPLITE_OK && err == before);
  replite_free(err);

  /* Destroyed twice, used after destroy: errors, not crashes. */
  replite_options_destroy(o);
  replite_options_destroy(o);
  EXPECT(INVALID, "options handle", replite_options_set(o, "worker-threads", "2", &err));
  replite_replicator* r = NULL;
  EXPECT(INVALID, "options handle", replite_replicator_open(o, &r, &err));
  CHECK(r == NULL);
}

/* Other threads keep calling while the handle is closed under them. */
struct racer {
  replite_replicator* r;
  const char* db;
  atomic_int stop;
  atomic_int calls;
  atomic_int bad_codes;
};
static void* race_calls(void* arg) {
  struct racer* x = arg;
  while (!atomic_load(&x->stop)) {
    int rc1 = replite_db_notify(x->r, x->db);
    int rc2 = replite_db_wait_durable(x->r, x->db, 50, NULL, NULL);
    char* js = replite_status_json(x->r, x->db, NULL);
    replite_free(js);
    /* Before close OK (or TIMEOUT); during it CANCELLED; after it INVALID. */
    if ((rc1 != 0 && rc1 != INVALID && rc1 != REPLITE_ERR_CANCELLED) ||
        (rc2 != 0 && rc2 != INVALID && rc2 != REPLITE_ERR_CANCELLED && rc2 != REPLITE_ERR_TIMEOUT))
      atomic_fetch_add(&x->bad_codes, 1);
    atomic_fetch_add(&x->calls, 1);
  }
  return NULL;
}

static void test_replicator_misuse(const char* dir) {
  char db[1024], plain[1024], missing[1024], state[1024], root[1024], url[1100], out[1024];
  snprintf(db, sizeof db, "%s/wal.db", dir);
  snprintf(plain, sizeof plain, "%s/rollback.db", dir);
  snprintf(missing, sizeof missing, "%s/missing.db", dir);
  snprintf(state, sizeof state, "%s/state", dir);
  snprintf(root, sizeof root, "file://%s/replica", dir);
  snprintf(url, sizeof url, "%s/wal", root);
  snprintf(out, sizeof out, "%s/restored.db", dir);
  exec_sql(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  exec_sql(plain, "CREATE TABLE t(x); INSERT INTO t VALUES (1);"); /* rollback journal */

  replite_options* o = replite_options_create();
  EXPECT(0, NULL, replite_options_set(o, "state-dir", state, &err));
  EXPECT(0, NULL, replite_options_set(o, "poll-interval-ms", "0", &err));
  EXPECT(0, NULL, replite_options_set(o, "worker-threads", "2", &err));
  replite_replicator* r = NULL;
  EXPECT(INVALID, "out is NULL", replite_replicator_open(o, NULL, &err));

  /* No root replica-url: a database must then name its own. */
  EXPECT(0, NULL, replite_replicator_open(o, &r, &err));
  EXPECT(INVALID, "no replica URL", replite_db_add(r, db, NULL, &err));
  EXPECT(0, NULL, replite_replicator_close(r, &err));

  EXPECT(0, NULL, replite_options_set(o, "replica-url", root, &err));
  EXPECT(0, NULL, replite_replicator_open(o, &r, &err));
  replite_options_destroy(o);

  EXPECT(INVALID, "db_path is NULL", replite_db_add(r, NULL, NULL, &err));
  EXPECT(REPLITE_ERR_NOT_FOUND, "missing.db", replite_db_add(r, missing, NULL, &err));
  EXPECT(REPLITE_ERR_FAILED_PRECONDITION, "WAL", replite_db_add(r, plain, NULL, &err));
  EXPECT(INVALID, "\"replica_url\"", replite_db_add(r, db, "not a url", &err));
  EXPECT(INVALID, "not key=value", replite_db_add_with(r, db, "snapshot-interval", &err));
  EXPECT(INVALID, "unknown database option \"worker-threads\"", replite_db_add_with(r, db, "worker-threads=2", &err));
  EXPECT(INVALID, "\"retention\"", replite_db_add_with(r, db, "retention=forever", &err));
  EXPECT(REPLITE_ERR_NOT_FOUND, NULL, replite_db_wait_durable(r, db, 10, NULL, &err)); /* not added yet */
  CHECK(replite_db_notify(r, db) == REPLITE_ERR_NOT_FOUND);
  CHECK(replite_db_notify(r, NULL) == INVALID);
  { /* add_many: each path's code in its place; a bad option or a NULL path adds none */
    const char* paths[3] = {missing, plain, missing};
    int res[3] = {1, 1, 1};
    EXPECT(REPLITE_ERR_NOT_FOUND, "3 of 3 databases not added; the first, #0",
           replite_db_add_many(r, paths, 3, NULL, res, &err));
    CHECK(res[0] == REPLITE_ERR_NOT_FOUND && res[1] == REPLITE_ERR_FAILED_PRECONDITION && res[2] == REPLITE_ERR_NOT_FOUND);
    const char* with_null[2] = {db, NULL};
    EXPECT(INVALID, "db_paths[1] is NULL", replite_db_add_many(r, with_null, 2, NULL, res, &err));
    CHECK(res[0] == INVALID && res[1] == INVALID);
    const char* one[1] = {db};
    EXPECT(INVALID, "unknown database option", replite_db_add_many(r, one, 1, "bogus=1", NULL, &err));
    EXPECT(INVALID, "db_paths is NULL", replite_db_add_many(r, NULL, 2, NULL, NULL, &err));
    EXPECT(0, NULL, replite_db_add_many(r, NULL, 0, NULL, NULL, &err));
    EXPECT(INVALID, "replicator handle", replite_db_add_many(NULL, one, 1, NULL, NULL, &err));
  }
  EXPECT(0, NULL, replite_db_add_with(r, db, " , retention=1h ;; ", &err)); /* empty items are skipped */
  {
    const char* paths[2] = {plain, db};
    int res[2] = {1, 1};
    EXPECT(REPLITE_ERR_FAILED_PRECONDITION, "2 of 2", replite_db_add_many(r, paths, 2, "retention=1h", res, &err));
    CHECK(res[0] == REPLITE_ERR_FAILED_PRECONDITION && res[1] == REPLITE_ERR_ALREADY_EXISTS);
  }
  EXPECT(INVALID, "conn is NULL", replite_db_attach(r, db, NULL, &err));
  EXPECT(0, NULL, replite_db_wait_durable(r, db, 10000, NULL, &err)); /* NULL out_txid allowed */
  char* js = replite_status_json(r, missing, NULL);
  CHECK(js == NULL);

  /* Close while other threads are inside calls on the same handle. */
  struct racer x = {r, db, 0, 0, 0};
  pthread_t th[3];
  for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, race_calls, &x);
  while (atomic_load(&x.calls) < 10) sleep_ms(1);
  EXPECT(0, NULL, replite_replicator_close(r, &err));
  int calls_at_close = atomic_load(&x.calls);
  while (atomic_load(&x.calls) < calls_at_close + 30) sleep_ms(1); /* they keep using the dead handle */
  atomic_store(&x.stop, 1);
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  CHECK(atomic_load(&x.bad_codes) == 0);

  /* Use after close, double close, destroy after close: all errors. */
  EXPECT(INVALID, "replicator handle", replite_replicator_close(r, &err));
  replite_replicator_destroy(r);
  EXPECT(INVALID, "replicator handle", replite_db_add(r, db, NULL, &err));
  CHECK(replite_db_notify(r, db) == INVALID);
  CHECK(replite_metrics_text(r, NULL) == NULL);

  /* Restore: bad arguments and options. */
  EXPECT(INVALID, "output_path is NULL", replite_restore(url, NULL, NULL, NULL, NULL, &err));
  EXPECT(INVALID, "\"txid\"", replite_restore(url, out, "txid=abc", NULL, NULL, &err));
  EXPECT(INVALID, "\"txid\"", replite_restore(url, out, "txid=0", NULL, NULL, &err));
  EXPECT(INVALID, "\"timestamp\"", replite_restore(url, out, "timestamp=yesterday", NULL, NULL, &err));
  EXPECT(INVALID, "unknown restore option \"follow\"", replite_restore(url, out, "follow=1", NULL, NULL, &err));
  EXPECT(INVALID, "exclusive", replite_restore(url, out, "txid=1,timestamp=2026-01-01T00:00:00Z", NULL, NULL, &err));
  EXPECT(INVALID, "not key=value", replite_restore(url, out, "latest", NULL, NULL, &err));
  CHECK(access(out, F_OK) != 0);
  /* Onto an existing file (the source itself, here): refused, untouched. */
  EXPECT(REPLITE_ERR_ALREADY_EXISTS, "exists", replite_restore(url, db, NULL, NULL, NULL, &err));
  EXPECT(0, NULL, replite_restore(url, out, NULL, NULL, NULL, &err));
  EXPECT(REPLITE_ERR_ALREADY_EXISTS, "exists", replite_restore(url, out, "overwrite=0", NULL, NULL, &err));
  /* Nothing was ever replicated here. */
  char empty[1100], out2[1100];
  snprintf(empty, sizeof empty, "%s/empty-replica", root);
  snprintf(out2, sizeof out2, "%s/restored2.db", dir);
  char* err = NULL;
  CHECK(replite_restore(empty, out2, NULL, NULL, NULL, &err) < 0 && err != NULL && access(out2, F_OK) != 0);
  replite_free(err);
}

int main(void) {
  test_null_handles();
  test_bad_options();
  const char* tmp = getenv("TMPDIR");
  char dir[512];
  snprintf(dir, sizeof dir, "%s/replite-capi-misuse-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  test_replicator_misuse(dir);
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
