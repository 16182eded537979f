#include "exec/thread_pool.h"

#include <chrono>

namespace replite {

ThreadPool::ThreadPool(int max_threads, int64_t idle_retire_ms)
    : max_(max_threads < 1 ? 1 : max_threads), idle_retire_ms_(idle_retire_ms) {}

ThreadPool::~ThreadPool() {
  // Submit adds no worker once stop_ is set, so the list taken here is all.
  std::list<Worker> all;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    all.splice(all.end(), workers_);
  }
  cv_.notify_all();
  for (auto& w : all) w.thread.join();
}

// Joins workers that retired (their threads have returned or are about to).
void ThreadPool::ReapLocked(std::list<Worker>* out) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    auto next = std::next(it);
    if (it->exited) {
      out->splice(out->end(), workers_, it);
      exited_--;
    }
    it = next;
  }
}

void ThreadPool::Submit(std::function<void()> job) {
  std::list<Worker> reaped;
  bool wake;
  {
    std::lock_guard<std::mutex> l(mu_);
    q_.push_back(std::move(job));
    if (exited_ > 0) ReapLocked(&reaped);
    // Every idle worker may already be claimed by an earlier job still in
    // the queue: start one more while the queue outnumbers them.
    if (!stop_ && q_.size() > size_t(idle_) && live_ < max_) {
      workers_.emplace_back();
      Worker* w = &workers_.back();
      live_++;
      if (live_ > peak_) peak_ = live_;
      w->thread = std::thread([this, w] { Loop(w); });
    }
    wake = WakeOneLocked();
  }
  if (wake) cv_.notify_one();
  for (auto& w : reaped) w.thread.join();
}

// One idle worker is woken at a time: the woken one wakes the next when it
// takes a job and more are queued (Loop). A burst of jobs submitted at
// once (the databases of one batching tick) is then taken by the workers
// already running, and by as many more as come awake while jobs remain,
// instead of waking one thread per job for jobs that a running worker
// takes first (each wake and sleep is a context switch on both sides).
bool ThreadPool::WakeOneLocked() {
  if (idle_ == 0 || waking_ || q_.empty()) return false;
  waking_ = true;
  wakes_++;
  return true;
}

void ThreadPool::Drain() {
  std::unique_lock<std::mutex> l(mu_);
  idle_cv_.wait(l, [&] { return q_.empty() && running_ == 0; });
}

size_t ThreadPool::queued() const {
  std::lock_guard<std::mutex> l(mu_);
  return q_.size();
}

int ThreadPool::RetireIdle(int64_t wait_ms, std::function<void()> on_thread) {
  std::list<Worker> reaped;
  {
    std::unique_lock<std::mutex> l(mu_);
    retire_ = idle_;
    on_retire_ = std::move(on_thread);
    cv_.notify_all();
    idle_cv_.wait_for(l, std::chrono::milliseconds(wait_ms),
                      [&] { return (retire_ == 0 && retire_running_ == 0) || stop_; });
    retire_ = 0;  // the ones that did not wake in time stay
    // A worker still inside on_thread holds its own copy.
    on_retire_ = nullptr;
    if (exited_ > 0 && !stop_) ReapLocked(&reaped);
  }
  // Joined: the threads are gone, and so is what they held.
  for (auto& w : reaped) w.thread.join();
  return int(reaped.size());
}

int ThreadPool::live_threads() const {
  std::lock_guard<std::mutex> l(mu_);
  return live_;
}

uint64_t ThreadPool::wakes() const {
  std::lock_guard<std::mutex> l(mu_);
  return wakes_;
}

int ThreadPool::peak_threads() const {
  std::lock_guard<std::mutex> l(mu_);
  return peak_;
}

void ThreadPool::Loop(Worker* self) {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    idle_++;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(idle_retire_ms_);
    bool woke = true;
    while (!stop_ && q_.empty() && retire_ == 0) {
      woke = cv_.wait_until(l, deadline) == std::cv_status::no_timeout;
      // Whoever comes out of the wait first (notified, timed out or
      // spurious) takes the wake in flight: another can be started now.
      waking_ = false;
      if (!woke) break;
    }
    idle_--;
    if (q_.empty()) {
      // Stopping with nothing left, or idle long enough (or asked to end
      // now): the last worker stays (so a lone database's next job does
      // not pay a thread start).
      const bool retire = retire_ > 0;
      if (retire) retire_--;
      if (retire && on_retire_) {
        std::function<void()> f = on_retire_;
        retire_running_++;
        l.unlock();
        f();
        f = nullptr;
        l.lock();
        retire_running_--;
        if (retire_ == 0 && retire_running_ == 0) idle_cv_.notify_all();
      }
      if (stop_ || ((!woke || retire) && live_ > 1)) {
        live_--;
        exited_++;
        self->exited = true;
        idle_cv_.notify_all();
        return;
      }
      continue;
    }
    auto job = std::move(q_.front());
    q_.pop_front();
    running_++;
    const bool wake = WakeOneLocked();  // more queued: the next worker
    l.unlock();
    if (wake) cv_.notify_one();
    job();
    job = nullptr;  // its captures are released before the pool counts it done
    l.lock();
    running_--;
    if (q_.empty() && running_ == 0) idle_cv_.notify_all();
  }
}

}  // namespace replite
