#include "core/burst_trim.h"

#include <sqlite3.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <climits>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "format/zstd_pool.h"
#include "util/sanitizers.h"

namespace replite {

bool BurstTrim::Due(uint64_t opens, int64_t now_us) {
  std::lock_guard<std::mutex> l(mu_);
  if (opens != opens_seen_) {
    if (opens_seen_ == opens_at_trim_) burst_us_ = now_us;  // the first open since the last trim
    opens_seen_ = opens;
    opened_us_ = now_us;
  }
  if (opens - opens_at_trim_ < kMinOpens) return false;
  const bool quiet = now_us - opened_us_ >= kQuietUs;
  const bool long_burst = now_us - burst_us_ >= kLongBurstUs;
  if (!quiet && !long_burst) return false;
  opens_at_trim_ = opens;
  return true;
}

void ReleaseFreeHeap() {
  TrimZstdPool();                   // idle compression contexts (format/zstd_pool.h)
  sqlite3_release_memory(INT_MAX);  // effective only with SQLITE_ENABLE_MEMORY_MANAGEMENT
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

void TrimThreadArena() {
// (Under a sanitizer there is no glibc arena, and the pump would only fill
// its quarantine.)
#if defined(__GLIBC__) && !defined(REPLITE_SANITIZER_MALLOC)
  constexpr size_t kChunk = size_t(120) << 10;  // glibc's mmap threshold is never below 128 KiB by itself
  constexpr size_t kMax = size_t(64) << 20;     // its largest trim threshold
  // One thread at a time: the pages a pump touches before its arena
  // shrinks (one per chunk, at most 2.2 MB) are then not multiplied by the
  // number of workers retiring together.
  static std::mutex one_at_a_time;
  std::lock_guard<std::mutex> l(one_at_a_time);
  std::vector<void*> held;
  held.reserve(kMax / kChunk);
  const size_t before = mallinfo2().arena;
  for (size_t want = size_t(1) << 20; want <= kMax; want *= 2) {
    while (held.size() * kChunk < want) {
      void* p = std::malloc(kChunk);
      if (p == nullptr) break;
      held.push_back(p);
    }
    // Newest first: each one is next to the top when freed, and the last
    // free finds the whole top, past the threshold once `want` is enough.
    for (auto it = held.rbegin(); it != held.rend(); ++it) std::free(*it);
    held.clear();
    if (mallinfo2().arena < before) return;
  }
#endif
}

}  // namespace replite
