// Header checks of new databases: is the file SQLite, and in WAL mode? Add
// reads the 100-byte header of a database it has no saved position for, so
// that a wrong path or a rollback-journal database fails at once with a
// clear error instead of at its first sync.
//
// HeaderChecks runs the checks of a batch of Adds (Replicator::AddMany) on
// another thread while the adding thread goes on with the next batch:
// through SQLite's VFS (the only safe way, core/sqlite_files.h) a header
// costs about ten system calls, half of a new database's Add.
//
// Thread-safety: Run and Wait may be called from any threads; whichever
// comes first runs the checks, Wait returns once they are done.
#pragma once

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
  explicit HeaderChecks(std::vector<Item> items) : items_(std::move(items)) {}
  HeaderChecks(const HeaderChecks&) = delete;
  HeaderChecks& operator=(const HeaderChecks&) = delete;

  // Checks every item unless another thread has started to.
  void Run();
  // The items, checked: runs the checks here if no thread has started them.
  const std::vector<Item>& Wait();

 private:
  Mutex mu_;
  std::condition_variable cv_;
  bool started_ GUARDED_BY(mu_) = false;
  bool done_ GUARDED_BY(mu_) = false;
  std::vector<Item> items_;  // written by the one thread that runs the checks, read after done_
};

}  // namespace replite
