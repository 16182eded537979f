#include "exec/thread_pool.h"

namespace replite {

ThreadPool::ThreadPool(int threads) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; i++) workers_.emplace_back([this] { Loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> l(mu_);
    q_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void ThreadPool::Drain() {
  std::unique_lock<std::mutex> l(mu_);
  idle_cv_.wait(l, [&] { return q_.empty() && running_ == 0; });
}

size_t ThreadPool::queued() const {
  std::lock_guard<std::mutex> l(mu_);
  return q_.size();
}

void ThreadPool::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stop_ || !q_.empty(); });
    if (q_.empty()) return;  // stop_ and nothing left
    auto job = std::move(q_.front());
    q_.pop_front();
    running_++;
    l.unlock();
    job();
    l.lock();
    running_--;
    if (q_.empty() && running_ == 0) idle_cv_.notify_all();
  }
}

}  // namespace replite
