// TimerQueue: one thread and one min-heap for every timer of a Replicator
// (polls, notify and wakeup batches, quiet checkpoints, retries,
// housekeeping). An entry is 24 bytes in the heap: its due time and a typed
// Timer saying what is due (the owner's kind), for which object (id) and
// which arming of it (seq). Cancelling is lazy: the owner re-arms with
// another seq (or clears the one it expects) and drops stale entries when
// they come due.
//
// Callbacks run on the timer thread and must only hand work to the pool.
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace replite {

// What came due. `kind` is the owner's enum (a uint8_t-based enum class,
// converted with Kind()), `id` the owner's object (e.g. a database slot id),
// `seq` the owner's check against stale entries (0 when the kind needs none).
struct Timer {
  uint64_t seq = 0;
  uint32_t id = 0;
  uint8_t kind = 0;

  template <typename K>
  static Timer Of(K kind, uint32_t id, uint64_t seq = 0) {
    return Timer{seq, id, static_cast<uint8_t>(kind)};
  }
  template <typename K>
  K Kind() const {
    return static_cast<K>(kind);
  }
};

class TimerQueue {
 public:
  // fire(timer) is called for each entry when due. `now_us` is the
  // monotonic clock times are given in (e.g. Env::MonotonicMicros; default:
  // std::chrono::steady_clock). A clock that is not the real one is looked
  // at again whenever the real wait for the first entry ends.
  explicit TimerQueue(std::function<void(const Timer&)> fire, std::function<int64_t()> now_us = nullptr);
  ~TimerQueue();
  void Stop();
  // Schedules `t` at monotonic time `when_us`.
  void At(int64_t when_us, const Timer& t);
  size_t size() const;
  // Heap bytes of the entries' array (its capacity). After a burst (first
  // syncs of 100,000 databases, a quiet timer each) it shrinks as the
  // entries come due: to twice what is left once under a quarter is used
  // (never below kKeptEntries).
  size_t MemoryBytes() const;
  static constexpr size_t kKeptEntries = 4096;
  // When a batching window of `window_us` opened at `now_us` ends, on a
  // shared tick: a fifth of the window, at most `max_tick_us`, rounded down
  // (the window shrinks by at most a fifth, never grows; never before
  // now_us). Windows opened within one tick end together, so their
  // entries come due in one wake of the timer thread.
  static int64_t BatchedDue(int64_t now_us, int64_t window_us, int64_t max_tick_us) {
    const int64_t tick = std::min(window_us / 5, max_tick_us);
    int64_t when = now_us + window_us;
    if (tick > 0) when -= when % tick;
    return std::max(now_us, when);
  }

 private:
  struct Entry {
    int64_t when;
    Timer timer;
    bool operator>(const Entry& o) const { return when > o.when; }
  };
  static_assert(sizeof(Entry) == 24, "a timer entry stays 24 bytes in the heap");
  void Loop();
  std::function<void(const Timer&)> fire_;
  std::function<int64_t()> now_us_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  struct Heap : std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> {
    size_t capacity() const { return c.capacity(); }
    // The same array (still a heap) in a smaller allocation.
    void Shrink(size_t to) {
      std::vector<Entry> v;
      v.reserve(to);
      v.assign(c.begin(), c.end());
      c.swap(v);
    }
  };
  Heap heap_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace replite
