// Restore: rebuild a database from its replica, at the latest transaction,
// at a txid, or as of a time. The output is written to a temporary file
// beside the target, verified (content checksum recorded at capture, and
// PRAGMA integrity_check), fsynced, then renamed into place: a failed or
// interrupted restore never leaves a partial target.
//
// A segment or snapshot that fails its checksums or format checks, or is
// missing, makes the restore refuse with an error naming it, unless
// RestoreOptions::stop_at_last_good asks for the last transaction the good
// objects before it cover (RestoreResult says where and why it stopped).
// "Missing" covers what the replica records but no longer holds: a gap
// between segments, the last segments of a generation (a later generation
// starts at the txid after its last one), and a later generation whose
// snapshot is gone (the manifest names it), so "latest" never silently
// means an earlier state. The missing last segments of the newest
// generation cannot be seen: nothing in the replica records its last txid.
//
// Thread-safety: independent calls may run concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "replite/export.h"
#include "replite/status.h"
#include "replite/sys/object_store.h"

namespace replite {

class Env;

struct RestoreOptions {
  // Restore exactly this transaction. Default: 0 = the latest (the highest
  // txid of any generation, not the generation listed last).
  uint64_t txid = 0;
  // Or: the last transaction captured at or before this time (ms since the
  // Unix epoch, UTC), searching older generations too. Every value is a
  // time, 0 (1970-01-01T00:00:00Z) and negative ones included.
  // Default: unset (std::nullopt) = not by time.
  std::optional<int64_t> timestamp_ms;
  // Replace an existing output file. Default: false (kAlreadyExists, also
  // when the file appears while the restore runs: the final move into place
  // never replaces a file, so of concurrent restores to one path one wins).
  bool overwrite = false;
  // Parallel object fetches. Default: 4.
  int parallelism = 4;
  // When an object the target needs is damaged (checksum or format error)
  // or missing, restore the last transaction fully held by the good objects
  // before it instead of refusing, still verified (content checksum and
  // integrity_check); RestoreResult::stopped_early says so. A damaged
  // snapshot leaves nothing to restore: still an error naming it. (A
  // snapshot missing from the listing is simply not chosen as the base.)
  // Storage errors (unreachable store, local disk) still fail the restore.
  // Default: false (refuse, naming the object).
  bool stop_at_last_good = false;
  // Called with (bytes done, bytes total) as objects are applied: after
  // each block (about 1 MiB of pages) of a large object, after each object
  // otherwise; from the calling thread.
  std::function<void(uint64_t, uint64_t)> progress;
  // Default: nullptr = Env::Default().
  Env* env = nullptr;
  // Opens the replica's store instead of the built-in backends (see
  // ObjectStoreFactory in replite/sys/object_store.h). Default: empty = the
  // built-in file, s3, gs and abs stores.
  ObjectStoreFactory store_factory;
};

struct RestoreResult {
  std::string generation;
  uint64_t txid = 0;
  int64_t timestamp_ms = 0;     // capture time of that transaction
  uint32_t page_size = 0;
  uint32_t pages = 0;
  uint64_t checksum = 0;
  bool checksum_verified = false;  // false only where capture recorded none
  uint64_t objects = 0;
  uint64_t bytes = 0;
  // The txid the restore aimed at (RestoreOptions::txid, the latest, or
  // the last at or before the timestamp); `txid` above is what it restored.
  uint64_t requested_txid = 0;
  // stop_at_last_good only: true when txid < requested_txid because of
  // `bad_object` (its key; empty when the object is missing altogether)
  // and `stop_reason` (the error that stopped it, naming the txids).
  bool stopped_early = false;
  std::string bad_object;
  std::string stop_reason;
  // Non-empty when generations of the replica hold overlapping txid ranges
  // (two instances wrote it at once, e.g. before leases or with leases
  // off): names them. The latest restore takes the generation with the
  // highest txid (ties: the last capture); a txid held by several comes
  // from the one of them with the highest last txid.
  std::string overlap;
};

REPLITE_EXPORT Status Restore(const std::string& replica_url, const std::string& output_path, const RestoreOptions& options,
               RestoreResult* result = nullptr);

struct GenerationInfo {
  std::string id;
  uint64_t first_txid = 0, last_txid = 0;
  int64_t first_ts_ms = 0, last_ts_ms = 0;
  uint64_t snapshots = 0, segments = 0;  // segments: per-sync (level 0) only
  uint64_t compacted = 0;                // objects of the compaction levels (docs/FORMAT.md)
  uint64_t bytes = 0;                    // of all of them
  // Other generations whose txid ranges overlap this one's (space-separated
  // ids; see RestoreResult::overlap).
  std::string overlaps;
};

// The generations stored at `replica_url`, oldest first.
REPLITE_EXPORT Status ListGenerations(const std::string& replica_url, std::vector<GenerationInfo>* out);

// Parses an RFC 3339 UTC time ("2026-11-26T21:00:00Z", fractional seconds
// and "+00:00" accepted) into ms since the Unix epoch.
REPLITE_EXPORT Status ParseRfc3339(const std::string& text, int64_t* ms);
REPLITE_EXPORT std::string FormatRfc3339(int64_t ms);

}  // namespace replite
