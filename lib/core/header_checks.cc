#include "core/header_checks.h"

#include <cstring>

#include "core/sqlite_files.h"

namespace replite {

// Read through SQLite's VFS, not a raw descriptor, whose close would drop
// the application's locks (core/sqlite_files.h).
Status CheckDatabaseHeader(const std::string& path, bool enable_wal) {
  unsigned char h[100];
  size_t got = 0;
  Status s = ReadDatabaseHeader(path, h, &got);
  if (!s.ok()) return s;
  if (got == 0) return Status::OK();  // an empty file becomes a database on first write
  if (got < 100 || std::memcmp(h, "SQLite format 3", 16) != 0)
    return Status::Corruption("database " + path + " is not a SQLite database (bad header): check the path");
  if ((h[18] != 2 || h[19] != 2) && !enable_wal)
    return Status::FailedPrecondition("database " + path + " is not in WAL mode: run `sqlite3 " + path +
                                      " 'PRAGMA journal_mode=WAL'` or set enable_wal (CLI: -enable-wal)");
  return Status::OK();
}

void HeaderChecks::Run() {
  {
    MutexLock l(mu_);
    if (started_) return;
    started_ = true;
  }
  for (Item& it : items_) it.status = CheckDatabaseHeader(it.path, it.enable_wal);
  MutexLock l(mu_);
  done_ = true;
  cv_.notify_all();
}

const std::vector<HeaderChecks::Item>& HeaderChecks::Wait() {
  Run();
  MutexLock l(mu_);
  cv_.wait(l.native(), [&]() REQUIRES(mu_) { return done_; });
  return items_;
}

}  // namespace replite
