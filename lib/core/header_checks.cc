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

size_t HeaderChecks::Push(std::vector<Item> items) {
  MutexLock l(mu_);
  batches_.push_back(Batch{std::move(items), false});
  cv_.notify_all();
  return batches_.size() - 1;
}

void HeaderChecks::Finish() {
  MutexLock l(mu_);
  finished_ = true;
  cv_.notify_all();
}

HeaderChecks::Batch* HeaderChecks::ClaimLocked() {
  return next_ < batches_.size() ? &batches_[next_++] : nullptr;
}

void HeaderChecks::Check(Batch* b) {
  for (Item& it : b->items) it.status = CheckDatabaseHeader(it.path, it.enable_wal);
  MutexLock l(mu_);
  b->done = true;
  cv_.notify_all();
}

void HeaderChecks::Run() {
  for (;;) {
    Batch* b;
    {
      MutexLock l(mu_);
      cv_.wait(l.native(), [&]() REQUIRES(mu_) { return next_ < batches_.size() || finished_; });
      b = ClaimLocked();
      if (b == nullptr) return;  // finished, none left
    }
    Check(b);
  }
}

std::vector<HeaderChecks::Item> HeaderChecks::Take(size_t i) {
  for (;;) {
    Batch* b = nullptr;
    {
      MutexLock l(mu_);
      // Batch i, or a later one, is unclaimed: check it here; else wait.
      if (!batches_[i].done && (b = ClaimLocked()) == nullptr)
        cv_.wait(l.native(), [&]() REQUIRES(mu_) { return batches_[i].done; });
      if (batches_[i].done) return std::move(batches_[i].items);
    }
    Check(b);
  }
}

}  // namespace replite
