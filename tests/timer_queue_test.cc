// TimerQueue (exec/timer_queue.h): typed entries, and due times on the clock
// the queue was given (Env::MonotonicMicros in a Replicator), so a test's
// fake clock decides when timers fire.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "exec/timer_queue.h"

using namespace replite;

namespace {
enum class Kind : uint8_t { kA, kB };
}

TEST_CASE("timers: entries come due on the queue's clock and carry their kind", "[timers]") {
  std::atomic<int64_t> now{1000};
  std::mutex mu;
  std::vector<Timer> fired;
  TimerQueue q(
      [&](const Timer& t) {
        std::lock_guard<std::mutex> l(mu);
        fired.push_back(t);
      },
      [&] { return now.load(); });
  q.At(2000, Timer::Of(Kind::kB, 7, 42));
  q.At(1500, Timer::Of(Kind::kA, 3));
  auto count = [&] {
    std::lock_guard<std::mutex> l(mu);
    return fired.size();
  };
  auto wait_for = [&](size_t n) {
    for (int i = 0; i < 2000 && count() < n; i++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return count();
  };
  // Real time passes, the queue's clock does not: nothing is due.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(count() == 0);
  CHECK(q.size() == 2);
  now = 1500;
  REQUIRE(wait_for(1) == 1);
  now = 5000;
  REQUIRE(wait_for(2) == 2);
  q.Stop();
  CHECK(fired[0].Kind<Kind>() == Kind::kA);
  CHECK(fired[0].id == 3);
  CHECK(fired[0].seq == 0);
  CHECK(fired[1].Kind<Kind>() == Kind::kB);
  CHECK(fired[1].id == 7);
  CHECK(fired[1].seq == 42);
}
