// Where packs live and how a reader finds one database's members in them.
//
// The packs of databases whose replicas are P/<name> (P the root their
// prefixes share, "" at a store's root) are
// P/.replite-packs/<id>-<index offset>.pack, both 16 hex digits, <id>
// (creation ms << 16 | random) so that packs sort by age, <index offset>
// so that a reader reads exactly the index and trailer (LIST gives the size).
// A member names its database by <name>, the last element of its prefix;
// no database may be called ".replite-packs" where packing is on (Add says
// so). Readers of one database (restore, the txid floor after a crash)
// LIST that directory and read each pack's index (one ranged GET), then
// read only their member's bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "format/layout.h"
#include "format/pack.h"
#include "replica/catalog.h"
#include "replite/status.h"
#include "replite/sys/object_store.h"
#include "util/thread_annotations.h"

namespace replite {

constexpr char kPackDirName[] = ".replite-packs";

// The pack directory for the replica at `db_prefix` (ends with '/').
std::string PackDirOf(const std::string& db_prefix);
// The member name of the replica at `db_prefix` (its last element).
std::string PackMemberName(const std::string& db_prefix);
std::string PackKey(const std::string& pack_dir, int64_t created_ms, uint64_t index_offset);
// True for keys PackKey makes under `pack_dir`; *created_ms from the id.
bool ParsePackKey(const std::string& pack_dir, const std::string& key, int64_t* created_ms,
                  uint64_t* index_offset = nullptr);

// Reads a pack's index and trailer (one ranged GET of exactly them).
Status ReadPackIndex(ObjectStore* store, const std::string& key, uint64_t size, PackIndex* out);
// Decodes `tail`, the bytes [at, size) of the pack `key` of `size` bytes
// whose index starts at `at` (from its key): index and trailer.
Status DecodePackTail(const std::string& key, const std::string& tail, uint64_t at, uint64_t size, PackIndex* out);

// The members of one database found in the packs of its pack directory,
// as segment ObjectRefs (key = the pack's key, offset and size = the
// member's range, level 0). Indexes already read are kept (a pack never
// changes), and forgotten once a LIST no longer shows the pack; the
// missing ones are read by up to 8 threads at once.
//
// Thread-safety: safe for concurrent use.
class PackIndexCache {
 public:
  Status Members(ObjectStore* store, const std::string& db_prefix, std::vector<ObjectRef>* out);

 private:
  mutable Mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const PackIndex>> indexes_ GUARDED_BY(mu_);
};

// Adds the members of `cat`'s generation to its per-sync segments (sorted).
void AddPackMembers(const std::vector<ObjectRef>& members, GenerationCatalog* cat);

}  // namespace replite
