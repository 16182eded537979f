// BurstTrim: gives memory back to the system after a burst (issue 20). A
// first-snapshot storm (or the catch-up after an outage) opens connections
// to thousands of databases on every worker thread; once it is over, what
// they allocated sits in malloc's per-thread arenas as free space (glibc
// returns only the top of a heap by itself) and the burst's connections
// stay kept until their idle time ends. At 10,000 databases that was 7 KiB
// of free heap per database, twice what the databases themselves hold.
//
// The Replicator's housekeeping asks Due() once a tick with the number of
// connections opened so far (ConnCache::opened): a trim is due when at
// least kMinOpens were opened since the last one and none for kQuietUs (the
// burst is over), or, during a long one (connection churn that never
// stops), every kLongBurstUs. Steady work on kept connections
// opens none, so the hot path is never trimmed under.
//
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <cstdint>
#include <mutex>

namespace replite {

class BurstTrim {
 public:
  static constexpr uint64_t kMinOpens = 64;
  static constexpr int64_t kQuietUs = 2 * 1000 * 1000;
  static constexpr int64_t kLongBurstUs = 60 * 1000 * 1000;

  // Whether to trim now (and if so, counts it as done). `opens` only grows;
  // `now_us` is a monotonic time.
  bool Due(uint64_t opens, int64_t now_us);

 private:
  std::mutex mu_;
  uint64_t opens_at_trim_ = 0;  // `opens` at the last trim
  uint64_t opens_seen_ = 0;     // `opens` at the previous call
  int64_t opened_us_ = 0;       // when `opens` last grew
  int64_t burst_us_ = 0;        // when the first open since the last trim was seen
};

// Returns free memory to the system: idle zstd contexts (format/zstd_pool.h), SQLite's unused memory
// (sqlite3_release_memory) and malloc's free pages in every arena
// (malloc_trim; glibc only). Takes milliseconds on a large heap: never on a
// job's path.
void ReleaseFreeHeap();

// Returns the free top of the calling thread's malloc arena to the system
// (glibc only; elsewhere nothing). malloc_trim leaves it: glibc shrinks a
// thread arena's top only inside free(), and only once the top exceeds the
// trim threshold, which it raises to twice the largest block it has freed
// from mmap (up to 64 MiB: a caller's vector of 100,000 paths makes it
// 6 MiB). Freed chunks that sit in the fast bins are merged into the top
// later, by malloc_trim itself, without that check. After a first-snapshot
// storm the sixteen arenas of a 2-core machine kept 1-7 MiB of top each:
// 34 MB at 100,000 databases, 340 B/db. This allocates and frees chunks of
// 120 KiB (below any mmap threshold) from the top, doubling the amount
// until the arena shrinks (mallinfo2's `arena` falls) or 64 MiB were
// tried: it touches one page per chunk, then gives all back. A thread calls
// it for its own arena: the pool's workers as they retire after a burst.
void TrimThreadArena();

}  // namespace replite
