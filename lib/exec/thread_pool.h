// ThreadPool: the shared workers of one Replicator. Every piece of work for
// every database is a job here; no database has a thread of its own.
//
// Threads start on demand: a job that finds no idle worker starts one, up
// to `max_threads`, and a worker idle for `idle_retire_ms` ends (down to
// one). A worker spends most of a sync waiting (fsync, page-cache misses,
// the HTTP answer), so concurrency, not cores, sets how fast a backlog
// drains after a stall of the disk or the store; a process with a handful
// of databases still runs one or two threads. The count never depends on
// the number of databases, only on how many jobs were waiting at once.
//
// Idle workers are woken one at a time: the woken one wakes the next when it
// takes a job and more are queued, so a burst of short jobs is run by the
// workers already awake plus as many as wake while jobs remain, not one
// thread woken per job (blocked jobs still get a worker each, one wake
// latency apart).
//
// Thread-safety: Submit may be called from any thread, including workers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

namespace replite {

class ThreadPool {
 public:
  explicit ThreadPool(int max_threads, int64_t idle_retire_ms = 60000);
  ~ThreadPool();  // runs the queued jobs, then joins
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> job);
  // Waits until the queue is empty and no job is running.
  void Drain();
  size_t queued() const;
  int max_threads() const { return max_; }
  // Ends the idle workers now instead of after idle_retire_ms (down to
  // one), and waits up to `wait_ms` for them to be gone (after a burst:
  // a thread's exit hands its allocator cache back to malloc's arenas, see
  // core/burst_trim.h). Each idle worker woken for it, also the one that
  // stays, first runs `on_thread` if given (core/burst_trim.h's arena trim:
  // its own arena is only reachable from the thread). Returns how many
  // ended.
  int RetireIdle(int64_t wait_ms, std::function<void()> on_thread = nullptr);
  int live_threads() const;   // workers started and not retired
  int peak_threads() const;   // the most that were live at once
  uint64_t wakes() const;     // idle workers woken for a job so far

 private:
  struct Worker {
    std::thread thread;
    bool exited = false;
  };
  void Loop(Worker* self);
  void ReapLocked(std::list<Worker>* out);
  bool WakeOneLocked();
  const int max_;
  const int64_t idle_retire_ms_;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::function<void()>> q_;
  std::list<Worker> workers_;  // live and exited-but-unjoined
  int live_ = 0, idle_ = 0, running_ = 0, peak_ = 0, exited_ = 0;  // exited_: retired, not joined yet
  int retire_ = 0;  // idle workers asked to end now (RetireIdle)
  std::function<void()> on_retire_;  // RetireIdle's on_thread, while it waits
  int retire_running_ = 0;           // workers inside on_retire_
  bool waking_ = false;  // an idle worker was notified and has not come out of its wait yet
  uint64_t wakes_ = 0;
  bool stop_ = false;
};

}  // namespace replite
