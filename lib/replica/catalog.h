// What a replica holds, read from its store: the generations (from the
// manifest, or a LIST), the objects of one generation, and the capture times
// in an object's header. Read by restore and retention alike.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/layout.h"
#include "replica/manifest.h"
#include "replite/status.h"
#include "replite/sys/object_store.h"

namespace replite {

// Everything stored for one generation, sorted: snapshots by txid,
// segments (level 0) and compacted objects (levels 1..) by (first, last).
struct GenerationCatalog {
  std::string id;
  std::vector<ObjectRef> snapshots;
  std::vector<ObjectRef> segments;
  std::vector<ObjectRef> compacted;  // every level; ObjectRef::level tells which
  uint64_t bytes = 0;
  uint64_t max_txid() const;
};

// Lists one generation (one LIST under its prefix).
Status ListGeneration(ObjectStore* store, const std::string& prefix, const std::string& gen, GenerationCatalog* out);

// The generations of a replica, oldest first: from the manifest when present
// (no LIST of the whole replica), else from a LIST (older replicas, or a
// manifest lost to a crash between the first snapshot and its write).
Status LoadGenerations(ObjectStore* store, const std::string& prefix, std::vector<GenerationEntry>* out,
                       Manifest* manifest = nullptr);

// Reads the capture time of a snapshot or segment from its header
// (one ranged read of 128 bytes); `offset`: a pack member's (ObjectRef::offset).
Status ReadObjectTimes(ObjectStore* store, const std::string& key, int64_t* first_ms, int64_t* last_ms,
                       uint64_t offset = 0);

}  // namespace replite
