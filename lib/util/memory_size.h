// What the allocator hands out for a piece of memory (glibc malloc: an
// 8-byte chunk header, 16-byte rounding, 32 bytes at least), for the
// memory report's estimates (core/memory_report.h): a structure's heap
// bytes counted as allocations, not as sizeof.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace replite {

// The bytes glibc's malloc uses for an allocation of n bytes.
constexpr uint64_t MallocChunk(uint64_t n) {
  return n == 0 ? 0 : (n + 8 + 15) / 16 * 16 < 32 ? 32 : (n + 8 + 15) / 16 * 16;
}
// Heap bytes of a std::string's buffer (0 while it fits the inline one).
inline uint64_t StringHeap(const std::string& s) { return s.capacity() > 15 ? MallocChunk(s.capacity() + 1) : 0; }
// Heap bytes of an unordered container: bucket array and nodes.
inline uint64_t HashTableHeap(size_t buckets, size_t nodes, size_t node_bytes) {
  return MallocChunk(buckets * sizeof(void*)) + nodes * MallocChunk(node_bytes);
}

}  // namespace replite
