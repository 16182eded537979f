// ThreadPool: the shared workers of one Replicator. Every piece of work for
// every database is a job here; no database has a thread of its own.
//
// Thread-safety: Submit may be called from any thread, including workers.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace replite {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();  // runs the queued jobs, then joins
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> job);
  // Waits until the queue is empty and no job is running.
  void Drain();
  size_t queued() const;
  int threads() const { return static_cast<int>(workers_.size()); }

 private:
  void Loop();
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::function<void()>> q_;
  std::vector<std::thread> workers_;
  int running_ = 0;
  bool stop_ = false;
};

}  // namespace replite
