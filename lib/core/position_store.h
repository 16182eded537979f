// PositionStore: the positions of every database of a Replicator in one
// small SQLite database (state_dir/positions.db, WAL mode), written in
// batches. A position is saved only after what it names is durable in the
// replica, so after a crash the saved position is never ahead of the store.
//
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "core/position.h"
#include "replite/status.h"

struct sqlite3;

namespace replite {

class PositionStore {
 public:
  PositionStore() = default;
  ~PositionStore();
  Status Open(const std::string& path);
  // The saved position of `db_path` if it was replicating to `replica_url`
  // (a position for another URL is not ours to resume).
  Status Load(const std::string& db_path, const std::string& replica_url, Position* out, bool* found);
  // Queues a write; Flush writes every queued position in one transaction.
  void Put(const std::string& db_path, const std::string& replica_url, const Position& pos);
  Status Flush();

 private:
  std::mutex mu_;
  sqlite3* db_ = nullptr;
  std::map<std::string, std::pair<std::string, std::string>> pending_;  // path -> (url, encoded)
};

}  // namespace replite
