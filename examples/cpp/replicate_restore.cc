// The C++ API used directly: open a Replicator, add a database, attach the
// application's own sqlite3 connection, write, wait until durable, print the
// status, close, then restore the replica into a new file and check it.
//
//   replite_example_cpp [WORK_DIR]     (default: a new directory under /tmp)
//
// Exits non-zero if any step fails.
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <string>

#include "replite/replite.h"

namespace {

int Fail(const char* step, const replite::Status& s) {
  std::fprintf(stderr, "%s failed: %s\n", step, s.ToString().c_str());
  return 1;
}

bool Exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK) return true;
  std::fprintf(stderr, "sqlite: %s: %s\n", sql, sqlite3_errmsg(db));
  return false;
}

long long Count(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_stmt* st = nullptr;
  long long n = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "SELECT count(*) FROM notes", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  char tmpl[] = "/tmp/replite-example-cpp-XXXXXX";
  std::string dir;
  if (argc > 1) {
    dir = argv[1];
    ::mkdir(dir.c_str(), 0700);  // may exist already
  } else if (::mkdtemp(tmpl) != nullptr) {
    dir = tmpl;
  } else {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string db_path = dir + "/app.db";
  const std::string replica = "file://" + dir + "/replica/app";

  // The application's connection, in WAL mode (required by replite).
  sqlite3* app = nullptr;
  if (sqlite3_open(db_path.c_str(), &app) != SQLITE_OK || sqlite3_busy_timeout(app, 5000) != SQLITE_OK ||
      !Exec(app, "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS notes(body TEXT)"))
    return 1;

  // One Replicator per process; each option has a documented default.
  replite::ReplicatorOptions options;
  options.state_dir = dir + "/state";
  options.worker_threads = 2;
  std::unique_ptr<replite::Replicator> r;
  replite::Status s = replite::Replicator::Open(options, &r);
  if (!s.ok()) return Fail("Open", s);

  // This database goes to its own replica URL; Attach hooks the app's
  // connection so each commit schedules an upload (no polling).
  replite::DatabaseOptions db_options;
  db_options.replica_url = replica;
  if (!(s = r->Add(db_path, db_options)).ok()) return Fail("Add", s);
  if (!(s = r->Attach(db_path, app)).ok()) return Fail("Attach", s);

  if (!Exec(app, "INSERT INTO notes VALUES ('one'), ('two'), ('three')")) return 1;
  uint64_t txid = 0;
  if (!(s = r->WaitDurable(db_path, /*timeout_ms=*/10000, &txid)).ok()) return Fail("WaitDurable", s);

  replite::DatabaseStatus st;
  if (!(s = r->GetStatus(db_path, &st)).ok()) return Fail("GetStatus", s);
  std::printf("durable txid %llu, generation %s, %llu bytes uploaded\n", (unsigned long long)txid,
              st.generation.c_str(), (unsigned long long)st.bytes_uploaded);

  // Close uploads what is left and removes the hook; then close SQLite.
  s = r->Close();
  sqlite3_close(app);
  if (!s.ok()) return Fail("Close", s);

  // Restore the latest state into a new file and compare.
  const std::string restored = dir + "/restored.db";
  replite::RestoreResult result;
  if (!(s = replite::Restore(replica, restored, replite::RestoreOptions(), &result)).ok()) return Fail("Restore", s);
  const long long rows = Count(restored);
  std::printf("restored txid %llu: %lld rows\n", (unsigned long long)result.txid, rows);
  if (rows != 3 || result.txid != txid) {
    std::fprintf(stderr, "restored database differs: %lld rows at txid %llu\n", rows,
                 (unsigned long long)result.txid);
    return 1;
  }
  return 0;
}
