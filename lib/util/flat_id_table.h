// FlatIdTable: a hash index of 32-bit ids in one flat array (open
// addressing, linear probing, deletion by backward shift: no tombstones).
// 8 bytes per entry at a load of at most 3/4, against about 40 for a node of
// std::unordered_(multi)map and its bucket: the registry keeps three such
// indexes per database (issue 20). The table stores only (hash, id): the
// caller keeps the keys (in its slots) and says which id matches.
//
// Thread-safety: none (the caller locks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "util/memory_size.h"

namespace replite {

class FlatIdTable {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // The first id stored under `hash` for which match(id) is true, or kNone.
  template <typename Match>
  uint32_t Find(uint32_t hash, Match match) const {
    if (n_ == 0) return kNone;
    const size_t mask = e_.size() - 1;
    for (size_t i = hash & mask; e_[i].id != kNone; i = (i + 1) & mask)
      if (e_[i].hash == hash && match(e_[i].id)) return e_[i].id;
    return kNone;
  }
  // Adds `id` under `hash` (several ids may share a hash).
  void Insert(uint32_t hash, uint32_t id);
  // Removes `id` stored under `hash`; false if absent.
  bool Erase(uint32_t hash, uint32_t id);

  size_t size() const { return n_; }
  uint64_t HeapBytes() const { return MallocChunk(e_.capacity() * sizeof(Entry)); }

 private:
  struct Entry {
    uint32_t hash = 0;
    uint32_t id = kNone;  // kNone: empty
  };
  void Grow();

  std::vector<Entry> e_;  // size 0 or a power of two
  size_t n_ = 0;
};

// The 64-bit hash of a key folded to the table's 32 bits.
inline uint32_t Fold32(uint64_t h) { return uint32_t(h ^ (h >> 32)); }

}  // namespace replite
