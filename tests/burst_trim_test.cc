// [memory] When BurstTrim (core/burst_trim.h) returns memory after a burst:
// only after one (enough connection opens), once it is over (no open for
// kQuietUs), or periodically during a long one; never for steady work.
#include <catch2/catch.hpp>

#include "core/burst_trim.h"

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
