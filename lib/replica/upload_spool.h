// UploadSpool: segments captured while the store cannot take them, kept on
// local disk until they are uploaded (DESIGN.md invariant 3: bounded
// resources). Spooling lets a database's WAL be checkpointed during a store
// outage (the WAL stays bounded by the checkpoint policy) and keeps nothing
// captured in memory; when the spool reaches its cap, capture pauses and
// the changes wait in the WAL instead. Nothing is ever dropped.
//
// Layout: <dir>/<key>/<gen>-<first>-<last>.seg (16 hex digits each), where
// <key> is a hash of the database path and its replica URL (a database
// re-added with another replica does not mix the two). Append writes a temp
// file, fsyncs it, renames it and fsyncs the directory before returning: a
// spooled segment survives a crash, so the position naming it may be saved
// (and its frames checkpointed) after Append returns.
//
// Thread-safety: every method may be called concurrently; the per-database
// ones (Append, List) by one caller per database at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "format/segment.h"
#include "replite/status.h"

namespace replite {

struct SpoolEntry {
  std::string generation;  // 16 hex digits
  uint64_t first_txid = 0, last_txid = 0;
  uint64_t bytes = 0;
  std::string path;  // the segment file, ready for ObjectStore::PutFile
};

// What Open found for one database (left by an earlier process).
struct SpoolBacklog {
  uint32_t entries = 0;
  uint64_t bytes = 0;
  uint64_t first_txid = 0;  // smallest spooled txid
  uint64_t last_txid = 0;   // largest spooled txid
};

class UploadSpool {
 public:
  // Scans `dir` once (a directory per database with a backlog; databases
  // without one cost nothing) and removes leftover temp files.
  Status Open(const std::string& dir, uint64_t cap_bytes);

  // The backlog an earlier process left for this database; forgets it (call
  // once, when the database is added).
  SpoolBacklog TakeBacklog(const std::string& db_path, const std::string& replica_url);

  // Remembers the backlog of a database being removed, so that adding it
  // again (in this process) uploads it: the inverse of TakeBacklog.
  void ReturnBacklog(const std::string& db_path, const std::string& replica_url);

  // Spools one encoded segment, from memory (`data`) or from a file built
  // by capture (`file`, moved into the spool). kResourceExhausted when the
  // spool would exceed its cap.
  Status Append(const std::string& db_path, const std::string& replica_url, const SegmentHeader& h,
                const std::string* data, const std::string* file);

  // The database's spooled segments, oldest first.
  Status List(const std::string& db_path, const std::string& replica_url, std::vector<SpoolEntry>* out);

  // Forgets an entry after its upload.
  void Remove(const SpoolEntry& e);

  uint64_t bytes() const { return bytes_.load(); }
  uint64_t entries() const { return entries_.load(); }
  uint64_t cap() const { return cap_; }
  // Heap bytes of the backlog table (util/memory_size.h).
  uint64_t MemoryBytes();

 private:
  std::string DirFor(const std::string& db_path, const std::string& replica_url) const;

  std::string dir_;
  uint64_t cap_ = 0;
  std::atomic<uint64_t> bytes_{0}, entries_{0};
  std::mutex mu_;
  std::unordered_map<std::string, SpoolBacklog> backlog_;  // by directory name
};

}  // namespace replite
