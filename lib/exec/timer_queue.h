// TimerQueue: one thread and one min-heap for every timer of a Replicator
// (polls, scheduled snapshots, position flushes). A timer is 24 bytes in
// the heap; cancelling is lazy: the owner bumps its own sequence number and
// stale entries are dropped when they come due.
//
// Callbacks run on the timer thread and must only hand work to the pool.
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace replite {

class TimerQueue {
 public:
  // fire(id, seq) is called for each entry when due.
  explicit TimerQueue(std::function<void(uint64_t id, uint64_t seq)> fire);
  ~TimerQueue();
  void Stop();
  // Schedules (id, seq) at monotonic time `when_us`.
  void At(int64_t when_us, uint64_t id, uint64_t seq);
  size_t size() const;

 private:
  struct Entry {
    int64_t when;
    uint64_t id, seq;
    bool operator>(const Entry& o) const { return when > o.when; }
  };
  void Loop();
  std::function<void(uint64_t, uint64_t)> fire_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace replite
