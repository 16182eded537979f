// Small helpers shared by the benchmarks.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace replite::bench {

// Steady-clock seconds.
inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Runs `sql`; exits the benchmark on failure.
inline void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite: %s: %s\n", sql.c_str(), err ? err : "?");
    std::exit(1);
  }
}

// Creates `path`: a WAL database with `mb` MB of 4 KiB rows (half random,
// half zeros) in t(id, k, v) with an index on k, checkpointed. Returns it
// open.
inline sqlite3* MakeRowsDb(const std::string& path, int mb) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  Exec(db, "PRAGMA journal_mode=WAL");
  Exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB)");
  Exec(db, "CREATE INDEX t_k ON t(k)");
  Exec(db, "BEGIN");
  for (int i = 0; i < mb * 256; i++)
    Exec(db, "INSERT INTO t(k, v) VALUES ('key-" + std::to_string(i * 7919 % 1000003) +
                 "', randomblob(2000) || zeroblob(2000))");
  Exec(db, "COMMIT");
  Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  return db;
}

}  // namespace replite::bench
