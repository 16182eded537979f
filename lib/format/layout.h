// Object layout of one database's replica under its prefix P:
//
//   P/manifest                                         small text head (replica/manifest.h, FORMAT.md)
//   P/generations/<gen>/snapshots/<txid>.snap          full image at txid
//   P/generations/<gen>/segments/<first>-<last>.seg    transactions first..last (level 0)
//   P/generations/<gen>/levels/<n>/<first>-<last>.seg  compacted range first..last, level n in 1..9
//                                                      (restorable at <last> only; replica/compactor.h)
//
// <gen> is 16 hex digits (creation ms << 16 | random), so generations sort
// by creation time; txids are 16 hex digits, so keys sort numerically.
// Txids increase across generations: a new generation's snapshot takes the
// txid after the last one captured before it.
//
// Key naming and parsing only: what a replica holds under these keys (its
// manifest, its catalog of generations) is in lib/replica/.
#pragma once

#include <cstdint>
#include <string>

#include "replite/status.h"
#include "replite/sys/object_store.h"

namespace replite {

std::string NewGenerationId(int64_t now_ms);
uint64_t NewGenerationNumber(int64_t now_ms);
std::string Hex16(uint64_t v);
// 16 lowercase hex digits (generation ids, txids in keys); false otherwise.
bool ParseHex16(const std::string& s, uint64_t* v);

std::string ManifestKey(const std::string& prefix);
std::string GenerationsPrefix(const std::string& prefix);
std::string GenerationPrefix(const std::string& prefix, const std::string& gen);
std::string SnapshotKey(const std::string& prefix, const std::string& gen, uint64_t txid);
std::string SegmentKey(const std::string& prefix, const std::string& gen, uint64_t first, uint64_t last);
// A compacted object of level 1..kMaxLevel (level 0 is SegmentKey).
std::string CompactedKey(const std::string& prefix, const std::string& gen, int level, uint64_t first, uint64_t last);
constexpr int kMaxLevel = 9;

struct ObjectRef {
  enum Kind { kSnapshot, kSegment } kind = kSegment;
  std::string key;
  std::string generation;
  uint64_t first_txid = 0, last_txid = 0;  // equal for snapshots
  int level = 0;  // segments: 0 for per-sync segments, 1..kMaxLevel for compacted objects
  uint64_t size = 0;
  int64_t mtime_ms = 0;
  // Non-zero for a member of a pack (replica/pack_catalog.h): the object
  // is bytes [offset, offset + size) of the pack `key`.
  uint64_t offset = 0;
};

// Parses a key under `prefix`; false for keys that are not ours.
bool ParseObjectKey(const std::string& prefix, const ObjectInfo& info, ObjectRef* out);

}  // namespace replite
