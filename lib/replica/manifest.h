// The manifest of a replica (key P/manifest, format/layout.h): a small text
// head naming the page size and the replica's generations, oldest first, so
// that readers and retention find them without a LIST of the whole replica.
// Its text format is specified in docs/FORMAT.md; changes to it are
// conditional (replica/manifest_update.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "replite/status.h"

namespace replite {

struct GenerationEntry {
  std::string id;
  uint64_t first_txid = 0;  // the txid of its first snapshot
  int64_t created_ms = 0;
};

// The manifest's format version (its first line, `replite-manifest <v>`):
// 1 = replicas without compacted objects; 2 = a reader must understand
// compacted objects (levels/<n>/ keys, docs/FORMAT.md). Writers of this
// version write 2; DecodeManifest accepts both.
constexpr uint32_t kManifestVersion = 2;

struct Manifest {
  uint32_t version = kManifestVersion;  // as read (EncodeManifest always writes kManifestVersion)
  uint32_t page_size = 0;
  std::vector<GenerationEntry> generations;  // oldest first; the last is current
  // Generations retention dropped from the list above whose objects may
  // still be stored (a run stopped between this manifest and the deletes):
  // the next retention run deletes them, then the names.
  std::vector<std::string> deleting;
};

std::string EncodeManifest(const Manifest& m);
Status DecodeManifest(const std::string& text, Manifest* out);

}  // namespace replite
