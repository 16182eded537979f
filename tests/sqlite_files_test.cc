// [sqlite_files] core/sqlite_files.h: WalStat stats a connection's WAL by
// the descriptor SQLite holds, found by os_unix.c's layout and trusted only
// once proven against a stat by path.
#include <sqlite3.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

#include "core/sqlite_conn.h"
#include "core/sqlite_files.h"
#include "test_util.h"

using namespace replite;

namespace {

struct stat PathStat(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st;
}

bool Same(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

}  // namespace

TEST_CASE("WalStat gives the WAL's stat by SQLite's descriptor as a stat by path does", "[sqlite_files]") {
  test::TempDir dir;
  const std::string db = dir / "a.db";
  test::Writer w(db);
  w.Exec("CREATE TABLE t(v); INSERT INTO t VALUES (randomblob(5000))");
  struct stat st;
  {
    // A database in rollback-journal mode has no WAL handle: nothing to prove.
    const std::string rb = dir / "rollback.db";
    std::string out;
    REQUIRE(test::Sqlite3(rb, "CREATE TABLE t(v); INSERT INTO t VALUES (1)", &out) == 0);
    sqlite3* c = nullptr;
    REQUIRE(sqlite3_open_v2(rb.c_str(), &c, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_exec(c, "SELECT count(*) FROM t", nullptr, nullptr, nullptr) == SQLITE_OK);
    WalStat ws;
    CHECK_FALSE(ws.Prove(c, rb));
    CHECK_FALSE(ws.Stat(c, &st));
    CHECK_FALSE(ws.proven());
    sqlite3_close(c);
  }
  SqliteConn conn;
  REQUIRE(conn.Open(db, false, 1000).ok());
  WalStat ws2;
  REQUIRE(conn.BeginRead().ok());
  REQUIRE(conn.End().ok());
  REQUIRE(ws2.Prove(conn.raw(), db));
  CHECK(ws2.proven());
  REQUIRE(ws2.Stat(conn.raw(), &st));
  CHECK(Same(st, PathStat(db + "-wal")));
  // The application's commits show, between our transactions.
  for (int i = 0; i < 5; i++) {
    const int64_t before = st.st_size;
    w.Exec("INSERT INTO t VALUES (randomblob(9000))");
    REQUIRE(ws2.Stat(conn.raw(), &st));
    CHECK(st.st_size > before);
    CHECK(Same(st, PathStat(db + "-wal")));
  }
  // So does a checkpoint that truncates it.
  w.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  REQUIRE(ws2.Stat(conn.raw(), &st));
  CHECK(st.st_size == 0);
  CHECK(Same(st, PathStat(db + "-wal")));

  // Another connection's WAL handle is not the one proven.
  SqliteConn other;
  REQUIRE(other.Open(db, false, 1000).ok());
  REQUIRE(other.BeginRead().ok());
  REQUIRE(other.End().ok());
  CHECK_FALSE(ws2.Stat(other.raw(), &st));

  // A WAL unlinked from under the connection (by something that is not
  // SQLite): the descriptor names a file the path no longer does.
  REQUIRE(ws2.Stat(conn.raw(), &st));
  REQUIRE(std::remove((db + "-wal").c_str()) == 0);
  CHECK_FALSE(ws2.Stat(conn.raw(), &st));
}
