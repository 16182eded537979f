// zstd contexts reused from object to object. A fresh compression context
// allocates and zero-fills its workspace on its first frame (about 1 MiB
// for a level-1 stream, plus a 128 KiB output buffer zero-filled by
// std::string): for a small transaction that was most of the capture's
// instructions (callgrind, bench/many_dbs with packing: ~200,000 of
// ~420,000 per captured commit). A reused one keeps its workspace and
// skips the clearing. Decompression contexts likewise (one per packed
// member at unpack, one per object read at restore).
//
// Process-wide and bounded: at most kIdle contexts of each kind wait
// between uses (the rest are freed when released), an output buffer over
// kMaxKeptBuffer is freed on release, and TrimZstdPool() frees all idle
// ones (called with the heap trim after a burst: core/burst_trim.h), so
// idle databases cost nothing here.
//
// Thread-safety: leases may be taken and returned on any thread; a lease
// itself is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace replite {

constexpr size_t kZstdPoolIdle = 8;
constexpr size_t kZstdPoolMaxKeptBuffer = 1u << 20;

// A compression context with its parameters reset, and a growable output
// buffer that is never zero-filled.
class CompressorLease {
 public:
  CompressorLease();
  ~CompressorLease();
  CompressorLease(const CompressorLease&) = delete;
  CompressorLease& operator=(const CompressorLease&) = delete;

  ZSTD_CCtx_s* cctx() const;
  // The output buffer, at least `size` bytes, its first `keep` bytes kept
  // (the rest is uninitialized).
  char* Buffer(size_t size, size_t keep);
  char* buffer() const;

  struct Item;

 private:
  Item* item_;
};

// A decompression context with its session and parameters reset.
class DecompressorLease {
 public:
  DecompressorLease();
  ~DecompressorLease();
  DecompressorLease(const DecompressorLease&) = delete;
  DecompressorLease& operator=(const DecompressorLease&) = delete;
  ZSTD_DCtx_s* dctx() const { return dctx_; }

 private:
  ZSTD_DCtx_s* dctx_;
};

// Frees every idle context. Returns the bytes freed.
uint64_t TrimZstdPool();
// Bytes held by idle contexts and their buffers (the memory report).
uint64_t ZstdPoolBytes();

}  // namespace replite
