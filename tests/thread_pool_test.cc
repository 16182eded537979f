// The shared pool starts workers on demand, caps them, retires idle ones
// and still runs every job once.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "exec/thread_pool.h"

using replite::ThreadPool;

namespace {

// Holds jobs until released, counting how many are inside at once.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int inside = 0, most = 0;
  void Enter() {
    std::unique_lock<std::mutex> l(mu);
    inside++;
    most = std::max(most, inside);
    cv.notify_all();
    cv.wait(l, [&] { return open; });
    inside--;
  }
  void WaitInside(int n) {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return inside >= n; });
  }
  void Open() {
    std::lock_guard<std::mutex> l(mu);
    open = true;
    cv.notify_all();
  }
};

// Leaves `n` workers started and idle.
void StartIdleWorkers(ThreadPool& pool, int n) {
  Gate warm;
  for (int i = 0; i < n; i++) pool.Submit([&] { warm.Enter(); });
  warm.WaitInside(n);
  warm.Open();
  pool.Drain();
}

}  // namespace

TEST_CASE("pool: no thread before the first job, one for sequential jobs", "[pool]") {
  ThreadPool pool(8);
  CHECK(pool.live_threads() == 0);
  std::atomic<int> ran{0};
  for (int i = 0; i < 50; i++) {
    pool.Submit([&] { ran++; });
    pool.Drain();
  }
  CHECK(ran == 50);
  CHECK(pool.peak_threads() == 1);  // each job found the previous worker idle
}

TEST_CASE("pool: blocked jobs start workers up to the cap, the rest queue", "[pool]") {
  ThreadPool pool(4);
  Gate gate;
  std::atomic<int> ran{0};
  for (int i = 0; i < 10; i++) pool.Submit([&] { gate.Enter(); ran++; });
  gate.WaitInside(4);
  CHECK(pool.live_threads() == 4);
  CHECK(pool.queued() == 6);
  gate.Open();
  pool.Drain();
  CHECK(ran == 10);
  CHECK(gate.most == 4);
  CHECK(pool.peak_threads() == 4);
}

TEST_CASE("pool: idle workers retire down to one, and start again when needed", "[pool]") {
  ThreadPool pool(4, /*idle_retire_ms=*/50);
  StartIdleWorkers(pool, 4);
  CHECK(pool.live_threads() == 4);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pool.live_threads() > 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(pool.live_threads() == 1);
  Gate again;
  std::atomic<int> ran{0};
  for (int i = 0; i < 3; i++) pool.Submit([&] { again.Enter(); ran++; });
  again.WaitInside(3);  // would hang if retired workers were not replaced
  CHECK(pool.live_threads() == 3);
  again.Open();
  pool.Drain();
  CHECK(ran == 3);
}

TEST_CASE("pool: RetireIdle ends the idle workers at once but not a running one", "[pool]") {
  ThreadPool pool(4, /*idle_retire_ms=*/60000);
  StartIdleWorkers(pool, 4);
  CHECK(pool.live_threads() == 4);
  // From inside a job (as the Replicator's housekeeping calls it): the
  // three idle ones end and are joined, the caller's worker stays.
  std::atomic<int> ended{-1};
  pool.Submit([&] { ended = pool.RetireIdle(5000); });
  pool.Drain();
  CHECK(ended == 3);
  CHECK(pool.live_threads() == 1);
  CHECK(pool.RetireIdle(100) == 0);  // the last worker stays
  CHECK(pool.live_threads() == 1);
  Gate again;
  for (int i = 0; i < 2; i++) pool.Submit([&] { again.Enter(); });
  again.WaitInside(2);  // would hang if ended workers were not replaced
  again.Open();
  pool.Drain();
}

// After a burst each worker gives back its own malloc arena's free top
// (core/burst_trim.h), which only code on that thread can reach.
TEST_CASE("pool: RetireIdle runs on_thread on each idle worker's own thread before it ends", "[pool]") {
  ThreadPool pool(4, /*idle_retire_ms=*/60000);
  StartIdleWorkers(pool, 4);
  REQUIRE(pool.live_threads() == 4);
  std::mutex mu;
  std::set<std::thread::id> ran;
  int calls = 0;
  const int ended = pool.RetireIdle(5000, [&] {
    std::lock_guard<std::mutex> l(mu);
    ran.insert(std::this_thread::get_id());
    calls++;
  });
  CHECK(ended == 3);
  CHECK(pool.live_threads() == 1);
  std::lock_guard<std::mutex> l(mu);
  CHECK(calls == 4);  // the three that ended and the one that stays
  CHECK(ran.size() == 4);
  CHECK(ran.count(std::this_thread::get_id()) == 0);
}

// RetireIdle returns only once every on_thread it started has returned: the
// caller trims the heap next, after the workers' trims.
TEST_CASE("pool: RetireIdle waits for on_thread to return", "[pool]") {
  ThreadPool pool(3, /*idle_retire_ms=*/60000);
  StartIdleWorkers(pool, 3);
  std::atomic<int> inside{0}, done{0};
  pool.RetireIdle(5000, [&] {
    inside++;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    done++;
  });
  CHECK(inside == 3);
  CHECK(done == 3);
  CHECK(pool.live_threads() == 1);
}

TEST_CASE("pool: the destructor runs what is queued, also jobs queued by jobs", "[pool]") {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(2, 10);
    for (int i = 0; i < 100; i++)
      pool.Submit([&] {
        ran++;
        pool.Submit([&] { ran++; });
      });
  }
  CHECK(ran == 200);
}

TEST_CASE("pool: a burst of short jobs does not wake one idle worker per job", "[pool]") {
  ThreadPool pool(8, /*idle_retire_ms=*/60000);
  StartIdleWorkers(pool, 8);
  REQUIRE(pool.live_threads() == 8);
  const uint64_t before = pool.wakes();
  // As the timer thread hands over the databases of one batching tick: a
  // job that queues 200 short ones at once.
  std::atomic<int> ran{0};
  pool.Submit([&] {
    for (int i = 0; i < 200; i++) pool.Submit([&] { ran++; });
  });
  pool.Drain();
  CHECK(ran == 200);
  // The pool that notified a worker per job did so 201 times here; now
  // each woken worker wakes the next only while jobs remain.
  CHECK(pool.wakes() - before < 100);
  CHECK(pool.live_threads() == 8);
}

TEST_CASE("pool: blocked jobs queued at once on idle workers all run together", "[pool]") {
  ThreadPool pool(8, /*idle_retire_ms=*/60000);
  StartIdleWorkers(pool, 8);
  // Eight jobs that each wait for all the others (fsyncs, HTTP answers):
  // every idle worker must come awake for them, one waking the next.
  Gate gate;
  for (int i = 0; i < 8; i++) pool.Submit([&] { gate.Enter(); });
  gate.WaitInside(8);  // would hang if the wakes stopped at the first worker
  CHECK(pool.live_threads() == 8);
  gate.Open();
  pool.Drain();
  CHECK(gate.most == 8);
}
