// Compaction levels (docs/FORMAT.md, "Compaction levels"): closed ranges of
// one generation's objects are merged into coarser objects holding the last
// version of each page of the range, so that a restore reads a snapshot,
// a few compacted objects and a short tail of per-sync segments instead of
// every segment since the snapshot.
//
//   level 0   the per-sync segments (segments/<first>-<last>.seg)
//   level 1   levels/1/<first>-<last>.seg: every level 0 object stored since
//             the previous level 1 object, merged once per interval[0]
//   level n   levels/n/...: `interval[n-1] / interval[n-2]` consecutive
//             level n-1 objects merged into one
//
// A compacted object is a version 2 segment whose blocks all carry its last
// txid (only that txid is a restore point in it), with the size in pages and
// the content checksum after that txid, and its header's "before" fields
// those of the range's first input. Pages cut off by a shrink inside the
// range and not written again are stored as zero pages, so that applying it
// after any state in [first - 1, last - 1] gives exactly the state at last.
//
// Costs: one LIST of the generation, one GET per input that this process
// did not just store (CompactionPolicy::recent; its blocks are merged in
// memory, bounded by `memory_limit`: a range stops growing past it), one
// PUT and one GET (read back, compared byte for byte) per object written. The compacted object is written before anything is deleted, and
// only PruneLevels (replica/retention.h) deletes its inputs, after
// verifying it again. A run stopped at any point leaves a restorable
// replica (objects may overlap; readers take the coarsest that fits).
//
// Thread-safety: stateless; one run per database at a time (its sync job).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "format/segment.h"
#include "replica/catalog.h"
#include "replica/recent_objects.h"
#include "replite/status.h"
#include "replite/sys/object_store.h"

namespace replite {

struct CompactionPolicy {
  // Interval of levels 1, 2, ... in ms: level 1 merges what level 0 stored
  // over interval[0]; level n (n ≥ 2) merges interval[n-1] / interval[n-2]
  // consecutive level n-1 objects. Empty = no compaction.
  std::vector<int64_t> intervals_ms;
  // Objects of a level below the top are deleted (PruneLevels) once an
  // object of the next level covers them and that object's last capture is
  // at least this old: every txid stays restorable this long.
  int64_t keep_ms = 3600 * 1000;
  // Stop adding inputs to a range once their pages exceed this (the merge
  // holds the range's distinct pages in memory).
  uint64_t memory_limit = 64ull << 20;
  // A range that memory_limit would cut short may use up to this much
  // instead while it holds *large_merge_mu: one such merge at a time in the
  // process (0 or null: never).
  uint64_t large_memory_limit = 0;
  std::mutex* large_merge_mu = nullptr;
  int zstd_level = 1;
  // Inputs this process stored recently are taken from here instead of the
  // store, and objects written (below the top level) are left here for the
  // next level. Null: everything from the store.
  RecentObjects* recent = nullptr;
};

struct CompactionStats {
  uint64_t objects_written = 0;
  uint64_t inputs_read = 0;
  uint64_t inputs_local = 0;  // of inputs_read, taken from CompactionPolicy::recent
  uint64_t bytes_written = 0;
};

// Compacts generation `gen` of the replica under `prefix`: every level whose
// inputs are ready gets its new objects. Deletes nothing (a failed read-back
// removes only the object just written). Before the generation's first
// compacted object the manifest is brought to version 2 (readers that do not
// know levels refuse it instead of missing objects); `fence` is the lease
// check run before that conditional write (replica/manifest_update.h).
// *catalog (when given) gets the generation's objects after the run, so that
// PruneLevels need not list it again.
Status CompactGeneration(ObjectStore* store, const std::string& prefix, const std::string& gen,
                         const CompactionPolicy& policy, CompactionStats* stats,
                         const std::function<Status()>& fence = nullptr, GenerationCatalog* catalog = nullptr);

// How many seconds after its first change a database's first compaction
// after a start waits: in [0, interval), spread by `key` (the database's
// id). Databases that all changed in the first second after a restart
// would otherwise all compact in the same second, each reading its inputs
// back from the store: 1,000 hot databases held every worker for seconds
// and their syncs waited (bench/README.md, many_dbs --pack).
uint32_t CompactionStaggerS(uint32_t key, int64_t interval_ms);

// Reads compacted object `key` (level > 0) whole and checks it: header and
// index hashes, every block's hash, its name against its header, and that
// its last block ends the transaction named in the header with the header's
// size and checksum. PruneLevels runs it before deleting any input.
Status VerifyCompacted(ObjectStore* store, const std::string& key, uint64_t size, const std::string& gen,
                       uint64_t first, uint64_t last, SegmentHeader* header);

}  // namespace replite
