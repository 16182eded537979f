// Retention: deletes what no restore inside the retention window needs.
// The newest snapshot taken at or before (now - retention) is the oldest
// restore base still needed; everything older than it (older snapshots,
// segments ending at or before it, whole older generations) goes. Without
// such a snapshot nothing is deleted. Then what killed writers left under
// the database's prefix more than kAbandonedAfterMs ago is removed (S3
// multipart uploads never completed, file:// temporaries; see
// ObjectStore::RemoveAbandoned). Runs after a snapshot, never for an idle
// database, so an idle database makes no request. Manifest changes are
// conditional (replica/manifest_update.h) and run `fence` (the lease check)
// first.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "replica/catalog.h"
#include "replite/status.h"
#include "replite/sys/object_store.h"

namespace replite {

struct RetentionStats {
  uint64_t objects_deleted = 0;
  uint64_t generations_deleted = 0;
  uint64_t abandoned_removed = 0;  // multipart uploads aborted, temporaries removed
};

// A write unfinished for this long is abandoned (the lifecycle rule the
// README recommends uses the same day).
constexpr int64_t kAbandonedAfterMs = 24 * 3600 * 1000;

// Retention over compaction levels (replica/compactor.h): in generation
// `gen`, an object of level n is deleted once an object of level n + 1
// covers its whole range (first ≥ the cover's first, last ≤ its last) and
// that cover's last capture is at least `keep_ms` before `now_ms`; the
// cover is read whole and verified (VerifyCompacted) and its size and
// checksum compared with those its last input records before anything it
// covers is deleted. Objects of the top level are left to ApplyRetention.
// Covers are visited in txid order and the walk stops at the first one too
// young, so a run reads about one header per level plus what it deletes.
// `listed`: the generation as just listed (CompactGeneration's catalog),
// else one LIST.
struct LevelPruneStats {
  uint64_t objects_deleted = 0;
  uint64_t covers_verified = 0;
};
Status PruneLevels(ObjectStore* store, const std::string& prefix, const std::string& gen, int64_t now_ms,
                   int64_t keep_ms, int top_level, LevelPruneStats* stats,
                   const std::function<Status()>& fence = nullptr, const GenerationCatalog* listed = nullptr);

Status ApplyRetention(ObjectStore* store, const std::string& prefix, int64_t now_ms, int64_t retention_ms,
                      RetentionStats* stats, const std::function<Status()>& fence = nullptr);

}  // namespace replite
