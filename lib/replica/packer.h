// Packer: one pack group's packs (format/pack.h, replica/pack_catalog.h).
// Sync jobs Add the segments of many databases; the open pack is sealed
// when its window has passed (the Replicator's timer calls Flush) or it
// reaches max_bytes, and packs are stored one at a time, in the order they
// were sealed, so a database's segments become durable in txid order. Once a
// pack is stored, `stored` is called with its members (in order): they are
// durable. A pack whose PUT fails is kept and retried (Flush again, after the
// store's backoff); no member is added meanwhile (Add refuses), so memory
// stays bounded by what was open when the store failed.
//
// Stored packs wait for Unpack: every database's members of all of them
// are merged into one segment object under its own prefix per consecutive
// txid run (transactions kept: every txid stays a restore point; a run
// past run_bytes() is split at a member), written create-only, then the
// packs are deleted. A stored pack's body stays in memory while the stored
// packs' bytes fit unpack_bytes; past it, it is written to a file in
// spill_dir (a local copy of what is durable in the store: no fsync; after
// a crash the store's copy is read) or, without one or past spill_cap, its
// members are read back from the store by ranges. Unpack also finds packs nobody in this
// process wrote (a crashed process, another instance) older than
// `foreign_after_ms`, copies each to spill_dir (one GET) and does the
// same.
//
// Memory while unpacking stays near unpack_bytes however many packs wait:
// the databases are taken in passes (a hash of the member name), each pass
// holding only its members' index entries, and a run's members are read
// (from memory, the spill file or the store) only by the thread writing its
// object, kUnpackThreads at a time.
//
// Thread-safety: safe for concurrent use. `stored` runs on the thread that
// called Flush, without the Packer's lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "format/pack.h"
#include "format/segment.h"
#include "replica/pack_catalog.h"
#include "replite/status.h"
#include "replite/sys/object_store.h"
#include "util/thread_annotations.h"

namespace replite {

struct PackMember {
  uint32_t db_id = 0;       // the Replicator's slot id (durability goes there)
  std::string db_prefix;    // the replica's prefix: its member name, where unpack writes
  SegmentHeader header;     // of `segment`
  std::string segment;      // the segment object
  std::shared_ptr<void> note;  // the caller's, handed back to `stored` (e.g. the position to save)
  // When the oldest change in `segment` was first seen (the clock of
  // now_ms; 0: now). The pack window counts from the oldest member's:
  // batching before the capture (a sync interval) does not add to it. At
  // most half a window is credited (a capture that fell further behind
  // does not seal packs at once).
  int64_t since_ms = 0;
};

struct PackerConfig {
  std::string pack_dir;            // PackDirOf(the members' prefixes)
  int64_t window_ms = 500;
  uint64_t max_bytes = 8ull << 20;
  int64_t unpack_ms = 120 * 1000;  // stored packs wait this long
  uint64_t unpack_bytes = 64ull << 20;  // stored packs kept in memory for unpacking, at most
  std::string spill_dir;           // stored packs past unpack_bytes wait here (empty: read back from the store)
  // The local copies' bytes at once, at most: past it a stored pack is
  // read back from the store by ranges. Counted in spill_used, which the
  // Packers of one process share (null: this Packer's own count).
  uint64_t spill_cap = UINT64_MAX;
  std::shared_ptr<std::atomic<uint64_t>> spill_used;
  int zstd_level = 1;              // of the unpacked segment objects
};

struct UnpackStats {
  uint64_t packs = 0, foreign_packs = 0, objects_written = 0, objects_existing = 0, bytes_written = 0;
  uint64_t passes = 0;            // over the databases (more when the waiting members' index entries exceed unpack_bytes)
  uint64_t peak_member_bytes = 0;  // of members read and held at once while writing objects
};

class Packer {
 public:
  using StoredFn = std::function<void(std::vector<PackMember>& members, const std::string& pack_key, uint64_t bytes)>;
  Packer(std::shared_ptr<ObjectStore> store, PackerConfig cfg, StoredFn stored, std::function<int64_t()> now_ms);
  ~Packer();  // removes its files in spill_dir (the packs stay in the store)

  enum class AddResult { kAdded, kAddedFirst, kAddedFull, kRefused };
  // kAddedFirst: the member opened a new pack or moved its seal time
  // earlier (arm a timer for *seal_at_ms: the oldest member's since_ms +
  // window_ms);
  // kAddedFull: the open pack reached max_bytes (call Flush soon);
  // kRefused: a stored pack failed and waits to be retried (`m` is left
  // as it was: the caller keeps its segment).
  AddResult Add(PackMember&& m, int64_t* seal_at_ms = nullptr);
  // Seals the open pack if its window has passed (or `all`), then stores
  // what is sealed, in order. Returns the first failure (the pack stays,
  // in order, for the next Flush). One Flush stores at a time; a second
  // caller returns at once.
  Status Flush(bool all);
  // Moves the members of stored packs into per-database objects (written
  // create-only: one already there is the same) when the oldest waited
  // unpack_ms (or `now`), then deletes those packs. With foreign_after_ms
  // > 0, also the packs this Packer did not store that are older.
  Status Unpack(bool now, int64_t foreign_after_ms, UnpackStats* stats);
  const PackerConfig& config() const { return cfg_; }
  // The most member bytes one unpacked object gathers (more: split).
  uint64_t run_bytes() const;
  uint64_t memory_bytes() const;
  // Stored packs waiting in spill_dir (files), and their bytes.
  size_t spilled_packs() const;
  uint64_t spilled_bytes() const;
  size_t pending_members() const;
  // The db_id of every member not yet stored (with repeats).
  std::vector<uint32_t> PendingDbIds() const;
  // A stored pack failed and waits to be retried.
  bool failing() const;
  // True when nothing is open, sealed or waiting to be unpacked.
  bool idle() const;

 private:
  struct Pack {
    std::string key;
    int64_t created_ms = 0;
    int64_t seal_at_ms = 0;          // open pack: sealed by Flush from then on
    uint64_t bytes = 0;
    uint64_t index_offset = 0;
    // Sealed: the finished pack; stored: kept in memory for unpacking
    // (within unpack_bytes), else empty and read from `spill` or the store.
    std::string body;
    std::vector<PackMember> members;  // open and sealed only
    uint64_t member_count = 0;
    std::string spill;               // stored: the local copy of the body
    uint64_t spill_bytes = 0;        // its size, counted in spill_used
  };
  struct MemberRef;
  struct Run;
  // The open pack becomes the last sealed one.
  void SealLocked() REQUIRES(mu_);
  // Bytes [offset, offset + length) of a stored pack: from memory, its
  // local copy or the store.
  Status ReadRange(const Pack& p, uint64_t offset, uint64_t length, std::string* out) const;
  Status ReadIndex(const Pack& p, PackIndex* ix) const;
  // A foreign pack: one GET, copied to spill_dir (or kept by key only).
  Status FetchForeign(Pack* p);
  Status UnpackPacks(const std::vector<Pack>& packs, UnpackStats* stats);
  // Writes the objects of the databases whose member name hashes to
  // `part` of `parts`.
  Status UnpackPart(const std::vector<Pack>& packs, size_t part, size_t parts, UnpackStats* stats);
  // Writes `body` to a new file in spill_dir (p->spill), if there is one,
  // the copies stay within spill_cap and the write succeeds; else p is
  // read back from the store.
  void Spill(Pack* p, const std::string& body);
  void RemoveSpill(Pack* p);

  const std::shared_ptr<ObjectStore> store_;
  const PackerConfig cfg_;
  const StoredFn stored_fn_;
  const std::function<int64_t()> now_ms_;

  mutable Mutex mu_;
  std::unique_ptr<PackBuilder> open_ GUARDED_BY(mu_);
  Pack open_pack_ GUARDED_BY(mu_);
  std::deque<Pack> sealed_ GUARDED_BY(mu_);
  std::deque<Pack> stored_ GUARDED_BY(mu_);  // waiting for Unpack
  uint64_t stored_bytes_ GUARDED_BY(mu_) = 0;  // of stored packs' bodies held in memory
  uint64_t open_bytes_ GUARDED_BY(mu_) = 0, sealed_bytes_ GUARDED_BY(mu_) = 0;
  bool failing_ GUARDED_BY(mu_) = false;
  bool flushing_ GUARDED_BY(mu_) = false;
  bool unpacking_ GUARDED_BY(mu_) = false;
  std::unordered_set<std::string> ours_ GUARDED_BY(mu_);  // keys this Packer stored and has not deleted
};

}  // namespace replite
