// [locks] replite never undermines SQLite's own locking (issue 19, item 1).
// POSIX advisory locks belong to the process: closing any descriptor of the
// database, -wal or -shm drops every lock the process holds on that file,
// the application's included. Each case runs replite beside an application
// on SQLite's defaults and checks, from another process (the sqlite3
// program), that the application's locks still stand after replite worked.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "replite/replite.h"
#include "test_util.h"
#include "util/file_util.h"

using namespace replite;

namespace {

std::unique_ptr<Replicator> OpenReplicator(const test::TempDir& dir) {
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.worker_threads = 2;
  o.defaults.replica_url = dir.url("replica");
  o.defaults.poll_interval_ms = 0;  // the test drives syncs
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  return r;
}

std::string Count(const std::string& db) {
  std::string out;
  int rc = test::Sqlite3(db, "SELECT count(*) FROM t", &out);
  INFO(out);
  REQUIRE(rc == 0);
  return out;
}

uint64_t SyncOk(Replicator& r, const std::string& db) {
  uint64_t txid = 0;
  Status s = r.Sync(db, &txid);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return txid;
}

}  // namespace

// The audit's first scenario: replite in the application's process; a
// read-only query in another process ends and, finding no other connection's
// lock on the database, checkpoints and deletes the WAL the application
// still writes into (its later commits then go to a deleted file: lost).
TEST_CASE("a reader process that exits beside the application does not take the application's WAL away", "[locks]") {
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::Writer w(db, 1000);  // SQLite's default autocheckpoint
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  for (int i = 0; i < 5; i++) w.Exec("INSERT INTO t(v) VALUES ('before " + std::to_string(i) + "')");
  auto r = OpenReplicator(dir);
  REQUIRE(r->Add(db).ok());  // reads the database header
  SyncOk(*r, db);            // reads the database and the WAL
  CHECK(Count(db) == "5\n");  // another process reads and exits
  struct stat st;
  CHECK(::stat((db + "-wal").c_str(), &st) == 0);  // the application's WAL is still there
  for (int i = 0; i < 20; i++) w.Exec("INSERT INTO t(v) VALUES ('after " + std::to_string(i) + "')");
  const uint64_t txid = SyncOk(*r, db);
  // What a process starting now (or the application after a crash) finds.
  CHECK(Count(db) == "25\n");
  REQUIRE(r->Close().ok());
  RestoreResult rr;
  const std::string restored = test::RestoreContent(dir.url("replica"), dir / "restored.db", 0, &rr);
  CHECK(rr.txid == txid);
  CHECK(restored == test::DumpContent(db));
}

// The second scenario: the application holds the write lock (BEGIN
// IMMEDIATE) while replite captures; another process must still be kept out.
TEST_CASE("while the application holds the write lock and replite syncs, another process cannot write", "[locks]") {
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::Writer w(db, 1000);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  for (int i = 0; i < 50; i++) w.Exec("INSERT INTO t(v) VALUES ('" + std::string(200, 'a' + i % 26) + "')");
  auto r = OpenReplicator(dir);
  REQUIRE(r->Add(db).ok());
  SyncOk(*r, db);
  REQUIRE(r->Checkpoint(db).ok());  // pages now come from the database file
  // Changes pages that are in the database file, not the WAL: the capture
  // reads their old versions from the database file and then the wal-index.
  w.Exec("UPDATE t SET v = 'changed' WHERE id % 3 = 0");
  w.Exec("BEGIN IMMEDIATE");
  w.Exec("INSERT INTO t(v) VALUES ('inside the application''s transaction')");
  SyncOk(*r, db);
  std::string out;
  int rc = test::Sqlite3(db, "BEGIN IMMEDIATE; INSERT INTO t(v) VALUES ('intruder'); COMMIT;", &out);
  CHECK(rc != 0);
  CHECK(out.find("locked") != std::string::npos);
  w.Exec("COMMIT");
  CHECK(Count(db) == "51\n");
  CHECK(test::IntegrityCheck(db) == "ok\n");
  REQUIRE(r->Close().ok());
}

// The third scenario: the CLI beside short-lived writer processes. replite's
// own kept connection holds a shared lock, so an exiting writer is not the
// last connection and leaves the WAL alone; if replite dropped that lock,
// every exit would checkpoint and delete the WAL before replite captured it
// (a new generation each time).
TEST_CASE("replite replicate beside exiting writer processes keeps one generation", "[locks][cli]") {
  test::TempDir dir;
  const std::string cli = REPLITE_CLI_PATH, db = dir / "app.db", url = dir.url("backup");
  {
    test::Writer w(db);
    w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  }
  pid_t pid = test::Spawn({cli, "replicate", "-state", dir / "state", "-poll-ms", "20", db, url});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // first sync done
  for (int i = 0; i < 6; i++) {
    std::string out;
    // autocheckpoint off: only an exit that believes it is last checkpoints.
    int rc = test::Sqlite3(db, "PRAGMA busy_timeout=5000; PRAGMA wal_autocheckpoint=0; INSERT INTO t(v) VALUES ('writer " +
                                   std::to_string(i) + "');", &out);
    INFO(out);
    REQUIRE(rc == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  REQUIRE(kill(pid, SIGTERM) == 0);
  CHECK(test::Wait(pid) == 0);
  std::string out;
  std::string cmd = "'" + cli + "' generations '" + url + "'";
  REQUIRE(test::Shell(cmd, &out) == 0);
  INFO(out);
  const auto lines = std::count(out.begin(), out.end(), '\n');
  CHECK(lines == 2);  // the header and one generation
  CHECK(test::DumpContent(db) == test::RestoreContent(url, dir / "restored.db", 0));
}

TEST_CASE("polling beside 100 sqlite3 writer processes on SQLite's defaults reports no corruption", "[locks]") {
  // Issue 13, item 4: this logged "database disk image is malformed" from
  // replite's reads while the database was fine (the writers' exits took
  // the WAL away from under replite once its locks were dropped).
  test::TempDir dir;
  const std::string db = dir / "app.db";
  {
    test::Writer w(db, /*autocheckpoint=*/1000);
    w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  }
  test::LogCapture log;
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.defaults.replica_url = dir.url("replica");
  o.defaults.poll_interval_ms = 20;
  o.logger = log.Logger();
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  REQUIRE(r->Add(db).ok());
  REQUIRE(r->Sync(db).ok());
  for (int i = 0; i < 100; i++) {
    std::string out;
    // A busy timeout, as README asks of every writer sharing the database:
    // replite's checkpoints take the write lock for a few milliseconds.
    int rc = test::Sqlite3(db, "PRAGMA busy_timeout=5000; INSERT INTO t(v) VALUES ('writer " + std::to_string(i) + "');",
                           &out);
    INFO(out);
    REQUIRE(rc == 0);
  }
  REQUIRE(r->Sync(db).ok());
  DatabaseStatus st;
  REQUIRE(r->GetStatus(db, &st).ok());
  CHECK(st.generations_started == 1);
  REQUIRE(r->Close().ok());
  for (const auto& l : log.Lines()) {
    INFO(l);
    CHECK(l.find("malformed") == std::string::npos);
    CHECK(l.find("Corruption") == std::string::npos);
  }
  CHECK(test::DumpContent(db) == test::RestoreContent(dir.url("replica"), dir / "restored.db", 0));
}
