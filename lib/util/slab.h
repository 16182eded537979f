// Slab: fixed-size cells carved from large anonymous mappings, for an
// object kept by the 100,000 (DbSlot): no malloc chunk header or 16-byte
// rounding per object (8-15 bytes each), and the objects packed together
// instead of interleaved with the short-lived allocations of the code that
// made them, which leave holes malloc_trim cannot return (issue 20). Freed
// cells are reused; the mappings are kept for the process's life.
//
// Thread-safety: Alloc and Free may be called from any thread (one lock).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace replite {

class Slab {
 public:
  explicit Slab(size_t cell) : cell_((cell + 7) / 8 * 8) {}
  Slab(const Slab&) = delete;
  Slab& operator=(const Slab&) = delete;

  void* Alloc();  // a cell, or throws std::bad_alloc like operator new
  void Free(void* p);
  size_t cell() const { return cell_; }
  // Bytes mapped (touched as cells are first used: RSS follows the cells
  // in use at the high-water mark).
  uint64_t MappedBytes() const { return mapped_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kBlock = size_t(1) << 20;
  const size_t cell_;
  std::mutex mu_;
  void* free_ = nullptr;  // freed cells, linked through their first word
  char* next_ = nullptr;  // the unused rest of the newest mapping
  char* end_ = nullptr;
  std::atomic<uint64_t> mapped_{0};
};

}  // namespace replite
