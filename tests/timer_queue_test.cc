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

TEST_CASE("timers: the entries' array shrinks after a burst has come due", "[timers]") {
  std::atomic<int64_t> now{1000};
  std::atomic<size_t> fired{0};
  TimerQueue q([&](const Timer&) { fired++; }, [&] { return now.load(); });
  // A burst: one entry per database of 100,000 (first syncs' quiet timers),
  // all due at once, and a few that stay armed.
  constexpr size_t kBurst = 100000;
  for (uint32_t i = 0; i < kBurst; i++) q.At(2000 + i % 100, Timer::Of(Kind::kA, i));
  for (uint32_t i = 0; i < 10; i++) q.At(1000000000, Timer::Of(Kind::kB, i));
  const size_t peak = q.MemoryBytes();
  CHECK(peak >= kBurst * 24);
  now = 5000;
  q.At(5000, Timer::Of(Kind::kA, 0));  // wakes the queue on the new clock
  for (int i = 0; i < 5000 && fired.load() < kBurst + 1; i++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(fired.load() == kBurst + 1);
  CHECK(q.size() == 10);
  // What is left: the kept minimum, not the burst's peak (2.4 MB).
  CHECK(q.MemoryBytes() <= TimerQueue::kKeptEntries * 24);
}

TEST_CASE("timers: batching windows opened within one tick end together", "[timers]") {
  // A 50 ms window (sync_interval_ms's default) on a 10 ms tick: every
  // commit notified within one tick comes due at one time, 40-50 ms later.
  constexpr int64_t kWindow = 50000, kTick = 10000;
  const int64_t first = TimerQueue::BatchedDue(1000000, kWindow, kTick);
  for (int64_t now = 1000000; now < 1000000 + kTick; now += 7) {
    const int64_t due = TimerQueue::BatchedDue(now, kWindow, kTick);
    REQUIRE(due == first);
    REQUIRE(due >= now + kWindow - kTick);
    REQUIRE(due <= now + kWindow);
  }
  CHECK(TimerQueue::BatchedDue(1000000 + kTick, kWindow, kTick) == first + kTick);
  // A short window keeps four fifths of itself at least; none stays none.
  for (int64_t now = 123; now < 5000; now += 13) {
    const int64_t due = TimerQueue::BatchedDue(now, 1000, kTick);
    REQUIRE(due >= now + 800);
    REQUIRE(due <= now + 1000);
  }
  CHECK(TimerQueue::BatchedDue(777, 0, kTick) == 777);
  CHECK(TimerQueue::BatchedDue(777, 3, kTick) == 780);
}
