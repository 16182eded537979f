// FlatIdTable: a hash index of ids in one flat array of 4-byte entries
// (open addressing, linear probing, deletion by backward shift: no
// tombstones). An entry is the id (24 bits) and 8 bits of its hash (a tag
// that spares most calls of the caller's match); 4 bytes an entry at a load
// of at most 4/5, against about 40 for a node of std::unordered_(multi)map
// and its bucket: the registry keeps three such indexes per database
// (issue 20). The table stores neither the keys nor their full hashes: the
// caller keeps the keys (in its slots), says which id matches, and gives
// an id's hash back (`hash_of`) when an insert grows the table or an erase
// moves entries.
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
  static constexpr uint32_t kMaxId = (uint32_t(1) << 24) - 2;  // ids are 0..kMaxId

  // The first id stored under `hash` for which match(id) is true, or kNone.
  template <typename Match>
  uint32_t Find(uint32_t hash, Match match) const {
    if (n_ == 0) return kNone;
    const size_t mask = e_.size() - 1;
    const uint32_t tag = Tag(hash);
    for (size_t i = hash & mask; e_[i] != kEmpty; i = (i + 1) & mask)
      if ((e_[i] & ~kIdMask) == tag && match(e_[i] & kIdMask)) return e_[i] & kIdMask;
    return kNone;
  }
  // Adds `id` (at most kMaxId) under `hash` (several ids may share a hash);
  // hash_of(x) is the hash each stored x was inserted with.
  template <typename HashOf>
  void Insert(uint32_t hash, uint32_t id, HashOf hash_of) {
    // At most 4/5 full: a miss probes about 13 entries then (52 bytes,
    // compared by tag), a hit about 3.
    if ((n_ + 1) * 5 > e_.size() * 4) Grow(hash_of);
    Place(hash, id);
    n_++;
  }
  // Removes `id` stored under `hash`; false if absent.
  template <typename HashOf>
  bool Erase(uint32_t hash, uint32_t id, HashOf hash_of) {
    if (n_ == 0) return false;
    const size_t mask = e_.size() - 1;
    size_t i = hash & mask;
    while (e_[i] != kEmpty && e_[i] != (Tag(hash) | id)) i = (i + 1) & mask;
    if (e_[i] == kEmpty) return false;
    // Backward shift: move up every later entry of the run whose home is
    // not in (i, j], so that no probe sequence crosses an empty slot it did
    // not cross before.
    for (size_t j = (i + 1) & mask; e_[j] != kEmpty; j = (j + 1) & mask) {
      const size_t home = hash_of(e_[j] & kIdMask) & mask;
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      e_[i] = e_[j];
      i = j;
    }
    e_[i] = kEmpty;
    n_--;
    return true;
  }

  size_t size() const { return n_; }
  uint64_t HeapBytes() const { return MallocChunk(e_.capacity() * sizeof(uint32_t)); }

 private:
  static constexpr uint32_t kIdMask = (uint32_t(1) << 24) - 1;
  static constexpr uint32_t kEmpty = UINT32_MAX;  // (tag 0xff, id 0xffffff: above kMaxId)
  static uint32_t Tag(uint32_t hash) { return hash & ~kIdMask; }

  void Place(uint32_t hash, uint32_t id) {
    const size_t mask = e_.size() - 1;
    size_t i = hash & mask;
    while (e_[i] != kEmpty) i = (i + 1) & mask;
    e_[i] = Tag(hash) | id;
  }
  template <typename HashOf>
  void Grow(HashOf hash_of) {
    std::vector<uint32_t> old;
    old.swap(e_);
    e_.assign(old.empty() ? 16 : old.size() * 2, kEmpty);
    for (uint32_t x : old)
      if (x != kEmpty) Place(hash_of(x & kIdMask), x & kIdMask);
  }

  std::vector<uint32_t> e_;  // size 0 or a power of two; kEmpty or (tag | id)
  size_t n_ = 0;
};

// The 64-bit hash of a key folded to the table's 32 bits.
inline uint32_t Fold32(uint64_t h) { return uint32_t(h ^ (h >> 32)); }

}  // namespace replite
