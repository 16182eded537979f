// ReplicaWriter: the store side of shipping one database's captures to the
// replica a ReplicaRef names — the PUTs of segments and snapshots (also of
// spooled segments), the manifest update that names a new generation, and
// the LIST that finds the replica's last txid. When to ship, the store's
// health, the lease and the per-database counters stay with the Replicator
// (core/), which calls this once the lease is confirmed.
//
// Thread-safety: none of its own; a database's job uses it alone.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "format/segment.h"
#include "replica/manifest.h"
#include "replica/replica_ref.h"
#include "replica/upload_spool.h"
#include "replite/status.h"

namespace replite {

class ReplicaWriter {
 public:
  explicit ReplicaWriter(const ReplicaRef& ref) : ref_(ref) {}

  // Uploads a segment, from a file built by capture (`file`, when not
  // empty) or else from memory (`data`); *bytes gets its size.
  Status PutSegment(const SegmentHeader& h, const std::string& data, const std::string& file, uint64_t* bytes);

  // Uploads a snapshot file; *bytes gets its size.
  Status PutSnapshot(const SegmentHeader& h, const std::string& file, uint64_t* bytes);

  // Uploads a spooled segment (removing it from the spool is the caller's).
  Status PutSpooled(const SpoolEntry& e);

  // Names generation `g` in the manifest, once its snapshot is stored
  // (a conditional update; `fence` is the lease check, replica/lease.h).
  Status AddGeneration(const GenerationEntry& g, uint32_t page_size, const std::function<Status()>& fence);

  // The largest txid stored in the replica (one LIST of its generations).
  Status LastStoredTxid(uint64_t* txid);

 private:
  const ReplicaRef& ref_;
};

}  // namespace replite
