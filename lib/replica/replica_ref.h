// ReplicaRef: where one database's replica lives — its store, that store's
// health, the key prefix (format/layout.h) and the replica URL — resolved
// once per sync job by the Replicator and passed to what ships, uploads,
// drains the spool, updates the manifest and resolves the txid floor,
// instead of each rebuilding the prefix from the database path.
//
// The pointers are borrowed from the database's slot (its config, or its own
// replica URL), which outlives the job.
#pragma once

#include <string>

#include "replica/recent_objects.h"
#include "replite/sys/object_store.h"
#include "store/store_health.h"  // the circuit breaker shared by every database on one store

namespace replite {

class PackIndexCache;  // replica/pack_catalog.h

struct ReplicaRef {
  ObjectStore* store = nullptr;
  StoreHealth* health = nullptr;
  std::string prefix;  // of every key of this replica (format/layout.h)
  std::string url;     // the replica URL: status, saved positions and the upload spool are keyed by it
  RecentObjects* recent = nullptr;  // where stored objects wait for compaction (the Replicator's); may be null
  // Where this replica's segments may be waiting in packs (the Replicator's
  // index cache; null when packing was never on for it): the txid floor
  // after a crash counts them.
  PackIndexCache* packs = nullptr;
};

}  // namespace replite
