// [memory] When BurstTrim (core/burst_trim.h) returns memory after a burst:
// only after one (enough connection opens), once it is over (no open for
// kQuietUs), or periodically during a long one; never for steady work.
#include <catch2/catch.hpp>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/burst_trim.h"
#include "test_util.h"

using namespace replite;

namespace {
constexpr int64_t kS = 1000 * 1000;
}

TEST_CASE("a trim is due once a burst of connection opens is over", "[memory]") {
  BurstTrim t;
  CHECK_FALSE(t.Due(0, 1 * kS));
  // A burst: opens grow every tick.
  uint64_t opens = 0;
  for (int64_t s = 2; s <= 10; s++) {
    opens += 500;
    CHECK_FALSE(t.Due(opens, s * kS));
  }
  CHECK_FALSE(t.Due(opens, 11 * kS));  // quiet for 1 s: maybe not over
  CHECK(t.Due(opens, 12 * kS));        // quiet for kQuietUs: over
  CHECK_FALSE(t.Due(opens, 13 * kS));  // once
  CHECK_FALSE(t.Due(opens, 100 * kS));
}

TEST_CASE("a few connection opens are no burst", "[memory]") {
  BurstTrim t;
  uint64_t opens = 0;
  for (int64_t s = 1; s < 1000; s++) {
    if (s % 20 == 0) opens++;  // a database now and then: 50 opens in 1,000 s
    CHECK_FALSE(t.Due(opens, s * kS));
  }
}

TEST_CASE("connection churn that never stops is trimmed every kLongBurstUs", "[memory]") {
  BurstTrim t;
  uint64_t opens = 0;
  int trims = 0;
  const int64_t end = 10 * BurstTrim::kLongBurstUs;
  for (int64_t now = kS; now <= end; now += kS) {
    opens += 100;
    trims += t.Due(opens, now);
  }
  CHECK(trims >= 9);
  CHECK(trims <= 10);
}

#include "util/sanitizers.h"
#if defined(__GLIBC__) && !defined(REPLITE_SANITIZER_MALLOC)
// A worker's arena after a first-snapshot storm: glibc raised its trim
// threshold (a large block freed from mmap, as a caller's vector of 100,000
// paths is), then the storm's buffers were freed into the arena's top,
// which stays below that threshold. malloc_trim leaves the top of a thread
// arena alone; TrimThreadArena, on that thread, gives it back.
TEST_CASE("a thread arena's free top goes back to the system after malloc_trim left it", "[memory]") {
  long by_malloc_trim = 0, by_arena_trim = 0;
  std::thread t([&] {
    // From mmap; its free raises the threshold to 16 MiB. (volatile: the
    // compiler may drop a malloc, memset and free of a local otherwise.)
    void* volatile big = std::malloc(size_t(8) << 20);
    std::memset(big, 1, size_t(8) << 20);
    std::free(big);
    std::vector<void*> bufs;
    bufs.reserve(100);
    for (int i = 0; i < 100; i++) {
      void* p = std::malloc(64 << 10);  // from the arena: 6.4 MiB of its top
      std::memset(p, 2, 64 << 10);
      bufs.push_back(p);
    }
    for (auto it = bufs.rbegin(); it != bufs.rend(); ++it) std::free(*it);
    const long before = test::ProcStatus("RssAnon:");
    malloc_trim(0);
    const long mid = test::ProcStatus("RssAnon:");
    replite::TrimThreadArena();
    by_malloc_trim = before - mid;
    by_arena_trim = mid - test::ProcStatus("RssAnon:");
  });
  t.join();
  INFO("KiB released by malloc_trim: " << by_malloc_trim << "; then by TrimThreadArena: " << by_arena_trim);
  CHECK(by_malloc_trim < 1024);  // the case this is for: malloc_trim left the top
  CHECK(by_arena_trim > 4096);
}
#endif
