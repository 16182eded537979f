/* Replicate a SQLite database through the C ABI, wait until what was written
 * is durable, and print its status.
 *
 *   replite_example_c [WORK_DIR]     (default: a new directory under /tmp)
 *
 * The database is WORK_DIR/app.db; its replica is file://WORK_DIR/replica/app.
 * Exits non-zero if any step fails. */
#define _XOPEN_SOURCE 700
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "replite.h"

/* Reports a failed step; err comes from the library (freed here). */
static int fail(const char* step, int rc, char* err) {
  fprintf(stderr, "%s failed: %s (%s)\n", step, err ? err : "?", replite_error_name(rc));
  replite_free(err);
  return 1;
}

int main(int argc, char** argv) {
  char dir[512] = "/tmp/replite-example-XXXXXX";
  if (argc > 1) {
    snprintf(dir, sizeof dir, "%s", argv[1]);
    mkdir(dir, 0700); /* may exist already */
  } else if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  char db_path[600], replica[600], state[600];
  snprintf(db_path, sizeof db_path, "%s/app.db", dir);
  snprintf(replica, sizeof replica, "file://%s/replica", dir);
  snprintf(state, sizeof state, "%s/state", dir);

  /* The application's own connection; replite needs WAL mode. */
  sqlite3* app = NULL;
  if (sqlite3_open(db_path, &app) != SQLITE_OK || sqlite3_busy_timeout(app, 5000) != SQLITE_OK ||
      sqlite3_exec(app, "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS notes(body TEXT);", NULL, NULL,
                   NULL) != SQLITE_OK) {
    fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(app));
    return 1;
  }

  /* One replicator per process; options are copied by open. */
  char* err = NULL;
  int rc;
  replite_options* opts = replite_options_create();
  if ((rc = replite_options_set(opts, "replica-url", replica, &err)) != REPLITE_OK ||
      (rc = replite_options_set(opts, "state-dir", state, &err)) != REPLITE_OK ||
      (rc = replite_options_set(opts, "worker-threads", "2", &err)) != REPLITE_OK)
    return fail("options", rc, err);
  replite_replicator* r = NULL;
  rc = replite_replicator_open(opts, &r, &err);
  replite_options_destroy(opts);
  if (rc != REPLITE_OK) return fail("open", rc, err);

  /* Add the database (replicated to <replica-url>/app) and attach the app's
   * connection: each commit on it schedules an upload, no polling. */
  if ((rc = replite_db_add(r, db_path, NULL, &err)) != REPLITE_OK ||
      (rc = replite_db_attach(r, db_path, app, &err)) != REPLITE_OK) {
    replite_replicator_destroy(r);
    return fail("add", rc, err);
  }

  /* Write, then wait (at most 10 s) until those commits are in the replica. */
  sqlite3_exec(app, "INSERT INTO notes VALUES ('hello'), ('world');", NULL, NULL, NULL);
  uint64_t txid = 0;
  if ((rc = replite_db_wait_durable(r, db_path, 10000, &txid, &err)) != REPLITE_OK) {
    replite_replicator_destroy(r);
    return fail("wait_durable", rc, err);
  }
  printf("durable up to txid %llu\n", (unsigned long long)txid);

  /* Status as JSON (pass NULL instead of db_path for the summary). */
  char* status = replite_status_json(r, db_path, &err);
  if (status == NULL) {
    replite_replicator_destroy(r);
    return fail("status", REPLITE_ERR_INTERNAL, err);
  }
  printf("%s\n", status);
  replite_free(status);

  /* Close flushes what is left and detaches the hook; then close SQLite. */
  rc = replite_replicator_close(r, &err);
  sqlite3_close(app);
  if (rc != REPLITE_OK) return fail("close", rc, err);
  return 0;
}
