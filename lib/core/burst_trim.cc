#include "core/burst_trim.h"

#include <sqlite3.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <climits>

#include "format/zstd_pool.h"

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

}  // namespace replite
