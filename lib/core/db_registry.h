// DbRegistry: the databases of one Replicator. Owns the slots (ids are
// reused after Remove) and the indexes from path, replica URL and file
// identity to a slot. The slots' mutable fields (DbSlot `// guarded`) are
// guarded by the process's stripe locks, by slot id (DbSlot::stripe()): no
// mutex per database. The maps are behind one reader-writer lock; lookups
// share it. Lock order: a stripe is never held while taking the registry
// lock's writer side, nor two stripes at once.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/db_slot.h"
#include "replica/replica_ref.h"
#include "replite/status.h"
#include "util/flat_id_table.h"
#include "util/thread_annotations.h"

namespace replite {

// A counted reference to a slot (util/ref_ptr.h: 8 bytes, the count in the
// slot): the registry holds one, a queued or running job another, so a
// removed database's slot lives until its job is done.
using SlotPtr = RefPtr<DbSlot>;

// A database's replica name under the replica root: its file name without
// .db/.sqlite/.sqlite3.
std::string ReplicaNameFor(const std::string& db_path);
// Where a database's replica lives: its own URL, or the replica root +
// its name (built from the path: a job resolves it once and passes the
// ReplicaRef down).
ReplicaRef ReplicaRefOf(const DbSlot& s);

class DbRegistry {
 public:

  // Gives `slot` an id and makes it findable, unless another slot has its
  // path, is the same file (st_dev, st_ino: a symlink, a hard link) or
  // replicates to the same `url` (kAlreadyExists, saying which and why).
  Status Insert(const SlotPtr& slot, const std::string& url) EXCLUDES(mu_);
  // Forgets `slot` (inserted with `url`); its id may be reused.
  void Erase(const DbSlot& slot, const std::string& url) EXCLUDES(mu_);

  SlotPtr Find(const std::string& abs_path) const EXCLUDES(mu_);
  SlotPtr ById(uint32_t id) const EXCLUDES(mu_);
  std::vector<SlotPtr> All() const EXCLUDES(mu_);
  std::vector<std::string> Paths() const EXCLUDES(mu_);  // sorted
  size_t size() const EXCLUDES(mu_);
  // Heap bytes of the slots (each with its path, and its target and extra
  // when present) and of the registry's own tables: counted as slots come
  // and go, so a metrics scrape costs O(1), not a walk of every slot.
  void MemoryBytes(uint64_t* slots, uint64_t* tables) EXCLUDES(mu_);
  // The slot's DbExtra, made (and counted) if absent.
  DbExtra& Extra(DbSlot& s) REQUIRES(s.stripe());

  // Wakes every waiter of every stripe (Close).
  void NotifyAll();

 private:
  static uint32_t FileHash(const DbSlot& s) { return Fold32(s.file_key * 0x9e3779b97f4a7c15ull); }
  // A path's hash from its directory and file name, so that a slot's is
  // computed without building its path (the tables ask for it again when
  // they grow or shift entries).
  static uint32_t PathHash(std::string_view dir, std::string_view name) {
    return Fold32(std::hash<std::string_view>()(dir) * 0x9e3779b97f4a7c15ull ^ std::hash<std::string_view>()(name));
  }
  static uint32_t PathHash(std::string_view p);
  static uint32_t PathHash(const DbSlot& s) { return PathHash(s.dir.str(), s.name.view()); }
  static uint32_t UrlHash(const std::string& u) { return Fold32(std::hash<std::string>()(u)); }
  static uint32_t UrlHash(const DbSlot& s) { return UrlHash(ReplicaRefOf(s).url); }
  uint32_t FindPath(std::string_view p) const REQUIRES_SHARED(mu_);

  mutable SharedMutex mu_;  // guards the maps below
  std::vector<SlotPtr> slots_ GUARDED_BY(mu_);
  std::vector<uint32_t> free_ids_ GUARDED_BY(mu_);
  // Ids by hash, the keys in the slots (util/flat_id_table.h: 4 bytes an
  // entry, not a node each).
  FlatIdTable by_path_ GUARDED_BY(mu_);  // PathHash of DbSlot::path
  FlatIdTable by_url_ GUARDED_BY(mu_);   // hash of the replica URL
  FlatIdTable by_file_ GUARDED_BY(mu_);  // hash of (st_dev, st_ino) at Add
  std::atomic<uint64_t> slot_bytes_{0};  // MemoryBytes' `slots`, kept by Insert, Erase and Extra
};

}  // namespace replite
