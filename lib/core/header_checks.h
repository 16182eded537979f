// Header checks of new databases: is the file SQLite, and in WAL mode? Add
// reads the 100-byte header of a database it has no saved position for, so
// that a wrong path or a rollback-journal database fails at once with a
// clear error instead of at its first sync.
//
// HeaderChecks spreads the checks of many Adds (Replicator::AddMany) over
// threads: through SQLite's VFS (the only safe way, core/sqlite_files.h) a
// header costs about ten system calls, more than the rest of a new
// database's Add. The adding thread pushes batches while it prepares the
// next Adds; runners (pool workers) check them in order as they come; the
// adding thread then takes each batch in order, checking the next
// unclaimed ones itself while it waits.
//
// Thread-safety: Push, Finish and Take from the adding thread only; Run
// from any threads.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "replite/status.h"
#include "util/thread_annotations.h"

namespace replite {

// OK for an empty file (it becomes a database on its first write).
Status CheckDatabaseHeader(const std::string& path, bool enable_wal);

class HeaderChecks {
 public:
  struct Item {
    std::string path;
    bool enable_wal = false;
    Status status;  // set by the check
  };
  HeaderChecks() = default;
  HeaderChecks(const HeaderChecks&) = delete;
  HeaderChecks& operator=(const HeaderChecks&) = delete;

  // Appends a batch to check; returns its number (0, 1, ...).
  size_t Push(std::vector<Item> items);
  // No batch will be pushed any more: runners end once none is left.
  void Finish();
  // A runner: checks the next unclaimed batch, in order, until none is
  // left and Finish was called.
  void Run();
  // Batch `b`, checked, handed over (each once): while it is not checked,
  // checks the next unclaimed batches here.
  std::vector<Item> Take(size_t b);

 private:
  struct Batch {
    std::vector<Item> items;  // written by the one thread that claimed it, taken once done
    bool done = false;
  };
  // Claims the next batch if one is waiting (under mu_); nullptr if none.
  Batch* ClaimLocked() REQUIRES(mu_);
  void Check(Batch* b);

  Mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> batches_ GUARDED_BY(mu_);  // a deque: pushing keeps references valid
  size_t next_ GUARDED_BY(mu_) = 0;            // the first batch no thread has claimed
  bool finished_ GUARDED_BY(mu_) = false;
};

}  // namespace replite
