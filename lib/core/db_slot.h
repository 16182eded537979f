// DbSlot: everything a Replicator keeps per database, sized for 100,000 of
// them: no thread, timer object, mutex, buffer or connection of its own,
// 144 bytes in a slab cell (issue 20: no control block, no stripe pointer,
// a 16-byte file name, its count inside, no Position or session state
// while idle: core/slot_park.cc; its own replica URL, if any, in its
// DbConfig). Fields below `// guarded` are
// protected by the stripe lock of the slot's id, `stripe()` (one of
// kSlotStripes process-wide mutexes: no pointer to it kept per slot):
// GUARDED_BY makes the clang stage (scripts/thread_safety.sh) check it.
// The rest is immutable after Add. `state` changes only through
// ReplicatorImpl::SetJobState (core/scheduler.cc).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/position.h"
#include "store/store_health.h"
#include "replite/options.h"
#include "replite/sys/object_store.h"
#include "store/replica_url.h"
#include "util/interned_dir.h"
#include "util/ref_ptr.h"
#include "util/short_name.h"
#include "util/thread_annotations.h"

struct sqlite3;

namespace replite {

// A database's own replica URL (DatabaseOptions::replica_url), opened.
struct DbTarget {
  ReplicaUrl url;
  std::string url_str;
  std::shared_ptr<ObjectStore> store;
  std::shared_ptr<StoreHealth> health;
};

// Shared by every database added with the same options (normally all).
// Options naming a replica URL are one database's (two databases cannot
// share a replica: DbRegistry::Insert refuses the second), so its target
// lives here, not in every slot. Immutable once made.
struct DbConfig {
  RefCount refs;  // (RefPtr)
  DatabaseOptions opts;
  ReplicaUrl root;                     // replica root; a database's prefix is root/<name>
  std::shared_ptr<ObjectStore> store;  // for databases without their own URL
  std::shared_ptr<StoreHealth> health;  // of `store`
  std::shared_ptr<const DbTarget> target;  // opts.replica_url's, or null: root + name
};

// Rarely present: what only some databases need.
struct DbExtra {
  std::string last_error;
  Code last_code = Code::kOk;
  std::vector<std::pair<sqlite3*, void*>> hooks;  // Attach-ed connections and their hook contexts
};

enum class JobState : uint8_t { kIdle, kQueued, kRunning };

// The locks guarding the slots' `// guarded` fields, by id, shared by every
// Replicator of the process (ids are per Replicator: two slots of two
// Replicators may share a stripe, which only costs contention, since no
// stripe is held while taking another, nor while calling the
// application), and the condition variable of each, signalled under it
// when those fields change.
constexpr uint32_t kSlotStripes = 256;
struct SlotLocks {
  Mutex mu[kSlotStripes];
  std::condition_variable cv[kSlotStripes];
};
// Never destroyed: a Replicator may be closed during static destruction.
inline SlotLocks& TheSlotLocks() {
  static SlotLocks* l = new SlotLocks;
  return *l;
}

struct DbSlot {
  // Slots come from one process-wide Slab (util/slab.h: no malloc header,
  // packed together), or from operator new under a sanitizer (which then
  // checks their use). Defined in core/db_registry.cc.
  static void* operator new(size_t n);
  static void operator delete(void* p);
  static uint64_t CellBytes();  // what one slot takes

  // The absolute path, as the directory (shared with the other databases
  // in it) and the file name (held inline up to 15 bytes).
  InternedDir dir;
  ShortName name;
  std::string path() const {
    std::string p = dir.str();
    p += '/';
    p += name.view();
    return p;
  }
  bool PathIs(std::string_view p) const {
    const std::string& d = dir.str();
    const std::string_view n = name.view();
    return p.size() == d.size() + 1 + n.size() && p.compare(0, d.size(), d) == 0 && p[d.size()] == '/' &&
           p.compare(d.size() + 1, n.size(), n) == 0;
  }
  void SetPath(const std::string& abs_path) {
    const size_t k = abs_path.rfind('/');
    dir = InternedDir(std::string_view(abs_path).substr(0, k == std::string::npos ? 0 : k));
    name = std::string_view(abs_path).substr(k == std::string::npos ? 0 : k + 1);
  }
  RefPtr<const DbConfig> cfg;
  const DbTarget* target() const { return cfg->target.get(); }  // null: cfg->root + name
  // The file at Add (st_dev, st_ino), as FileKey packs them: another path
  // to it is the same database.
  uint64_t file_key = 0;
  uint32_t id = 0;  // set by DbRegistry::Insert
  RefCount refs;  // (SlotPtr: core/db_registry.h)
  // The lock guarding the fields below (and the condition variable
  // signalled under it when they change).
  Mutex& stripe() const RETURN_CAPABILITY(TheSlotLocks().mu[id % kSlotStripes]) {
    return TheSlotLocks().mu[id % kSlotStripes];
  }
  std::condition_variable& cv() const { return TheSlotLocks().cv[id % kSlotStripes]; }

  // guarded (ordered by size so that no padding is left: 100,000 slots)
  JobState state GUARDED_BY(stripe()) = JobState::kIdle;  // changed only by ReplicatorImpl::SetJobState
  uint8_t poll_shift GUARDED_BY(stripe()) = 0;       // poll interval = base << shift (adaptive back-off)
  uint8_t gen_churn GUARDED_BY(stripe()) = 0;        // generations started in quick succession (see DatabaseStatus)
  bool rerun : 1 GUARDED_BY(stripe()) = false;
  bool removed : 1 GUARDED_BY(stripe()) = false;
  bool notify_pending : 1 GUARDED_BY(stripe()) = false;
  bool notified : 1 GUARDED_BY(stripe()) = false;        // Notify/Attach seen: never polled again
  bool watched : 1 GUARDED_BY(stripe()) = false;         // its directory has an inotify watch (core/dir_watch.h)
  bool wake_pending : 1 GUARDED_BY(stripe()) = false;    // a change wakeup is armed (batched like Notify)
  bool want_snapshot : 1 GUARDED_BY(stripe()) = false;
  bool want_checkpoint : 1 GUARDED_BY(stripe()) = false;
  bool want_truncate : 1 GUARDED_BY(stripe()) = false;
  bool want_probe : 1 GUARDED_BY(stripe()) = false;
  bool has_error : 1 GUARDED_BY(stripe()) = false;
  // pos is known not to lag the store: this process shipped from it, started
  // its generation, or compared it with the store's last txid. A position
  // loaded after a crash may lag (positions are saved in batches); until
  // checked, an unknown WAL epoch is not adopted without that comparison.
  bool pos_checked : 1 GUARDED_BY(stripe()) = false;
  // The lease was taken over from another instance: what it wrote may be
  // ahead of pos, so the next capture starts a new generation above it.
  bool lease_taken_over : 1 GUARDED_BY(stripe()) = false;
  // The quiet-checkpoint timer of a notified database is armed (one entry
  // per database, moved forward while it keeps changing: core/scheduler.cc).
  bool quiet_armed : 1 GUARDED_BY(stripe()) = false;
  // Parked: its position is valid(), and has frames of the WAL epoch not
  // yet checkpointed (frames > 0, no restart expected).
  bool parked_valid : 1 GUARDED_BY(stripe()) = false;
  bool parked_frames : 1 GUARDED_BY(stripe()) = false;
  // Segments handed to a pack (replica/packer.h) and not yet stored: the
  // position is not saved, the frames not checkpointed and durable_txid not
  // advanced past them until they are.
  uint16_t pack_pending GUARDED_BY(stripe()) = 0;
  uint32_t last_gen_s GUARDED_BY(stripe()) = 0;      // wall-clock second the last generation started (0: none yet)
  // Parked: the wall-clock second from which the next snapshot may be due
  // (rounded down; 0: none until the next change).
  uint32_t parked_snap_s GUARDED_BY(stripe()) = 0;
  uint32_t spooled GUARDED_BY(stripe()) = 0;         // segments waiting in the upload spool (captured, not yet durable)
  uint32_t req_seq GUARDED_BY(stripe()) = 0;
  uint32_t done_seq GUARDED_BY(stripe()) = 0;
  // The req_seq of the last job whose capture became durable: WaitDurable
  // callers up to it return then, not after the checkpoint that follows.
  uint32_t durable_seq GUARDED_BY(stripe()) = 0;
  // The newest request answered by a job while segments were in packs: it
  // becomes durable_seq once they are stored.
  uint32_t pack_seq GUARDED_BY(stripe()) = 0;
  // The armed poll timer entry (TimerKind::kPoll; 0: none): stale entries
  // carry another value (wrapping after 2^32 arms: a stale entry taken for
  // the armed one would only poll early).
  uint32_t timer_seq GUARDED_BY(stripe()) = 0;
  int64_t wal_size GUARDED_BY(stripe()) = -1;        // WAL stat at the last capture
  int64_t wal_mtime_ns GUARDED_BY(stripe()) = -1;
  int64_t last_change_ms GUARDED_BY(stripe()) = 0;   // last capture that found something
  int64_t notified_at_ms GUARDED_BY(stripe()) = 0;   // first Notify not yet covered by a sync
  // Captured (durable, or spooled after durable_txid), while the database
  // is active: null while it is parked (core/slot_park.cc), when the
  // position store's answer for it (PositionStore::Load: a position, or
  // none) is exactly its position, which is durable (durable_txid, nothing
  // spooled or in a pack), and the parked_* fields stand for what the
  // cheap path of a sync reads of it. With it, the session state (status
  // counters, lease epoch, last compaction: saved with it while parked).
  // 144 bytes an active database, 8 an idle one.
  std::unique_ptr<LivePosition> pos GUARDED_BY(stripe());
  // The session state, while active (every job that finds work, upload
  // and pack store is: they hold a position in memory). Null while parked.
  SessionState* session() REQUIRES(stripe()) { return pos ? &pos->session : nullptr; }
  uint64_t durable_txid GUARDED_BY(stripe()) = 0;    // last transaction in the store
  std::unique_ptr<DbExtra> extra GUARDED_BY(stripe());
};

// (st_dev, st_ino) in 64 bits: exactly when the device number is below 2^23
// and the inode number below 2^40 (Linux's usual devices and filesystems),
// else hashed with the top bit set (two files would then be taken for one
// with a probability of about N^2 / 2^64: Add would refuse the second).
inline uint64_t FileKey(uint64_t dev, uint64_t ino) {
  if (dev < (uint64_t(1) << 23) && ino < (uint64_t(1) << 40)) return dev << 40 | ino;
  uint64_t h = (dev * 0x9e3779b97f4a7c15ull) ^ ino;
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 29;
  return h | uint64_t(1) << 63;
}

}  // namespace replite
