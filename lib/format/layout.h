// Object layout of one database's replica under its prefix P:
//
//   P/manifest                                         small text head (see FORMAT.md)
//   P/generations/<gen>/snapshots/<txid>.snap          full image at txid
//   P/generations/<gen>/segments/<first>-<last>.seg    transactions first..last
//
// <gen> is 16 hex digits (creation ms << 16 | random), so generations sort
// by creation time; txids are 16 hex digits, so keys sort numerically.
// Txids increase across generations: a new generation's snapshot takes the
// txid after the last one captured before it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "replite/status.h"
#include "replite/sys/object_store.h"

namespace replite {

std::string NewGenerationId(int64_t now_ms);
uint64_t NewGenerationNumber(int64_t now_ms);
std::string Hex16(uint64_t v);

std::string ManifestKey(const std::string& prefix);
std::string GenerationsPrefix(const std::string& prefix);
std::string GenerationPrefix(const std::string& prefix, const std::string& gen);
std::string SnapshotKey(const std::string& prefix, const std::string& gen, uint64_t txid);
std::string SegmentKey(const std::string& prefix, const std::string& gen, uint64_t first, uint64_t last);

struct ObjectRef {
  enum Kind { kSnapshot, kSegment } kind = kSegment;
  std::string key;
  std::string generation;
  uint64_t first_txid = 0, last_txid = 0;  // equal for snapshots
  uint64_t size = 0;
  int64_t mtime_ms = 0;
};

// Parses a key under `prefix`; false for keys that are not ours.
bool ParseObjectKey(const std::string& prefix, const ObjectInfo& info, ObjectRef* out);

struct GenerationEntry {
  std::string id;
  uint64_t first_txid = 0;  // the txid of its first snapshot
  int64_t created_ms = 0;
};

struct Manifest {
  uint32_t page_size = 0;
  std::vector<GenerationEntry> generations;  // oldest first; the last is current
  // Generations retention dropped from the list above whose objects may
  // still be stored (a run stopped between this manifest and the deletes):
  // the next retention run deletes them, then the names.
  std::vector<std::string> deleting;
};

std::string EncodeManifest(const Manifest& m);
Status DecodeManifest(const std::string& text, Manifest* out);

// Everything stored for one generation, sorted: snapshots by txid,
// segments by (first, last).
struct GenerationCatalog {
  std::string id;
  std::vector<ObjectRef> snapshots;
  std::vector<ObjectRef> segments;
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

}  // namespace replite
