#include "exec/timer_queue.h"

#include <algorithm>
#include <chrono>

namespace replite {

static int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

TimerQueue::TimerQueue(std::function<void(const Timer&)> fire, std::function<int64_t()> now_us)
    : fire_(std::move(fire)), now_us_(now_us ? std::move(now_us) : std::function<int64_t()>(NowUs)) {
  thread_ = std::thread([this] { Loop(); });
}

TimerQueue::~TimerQueue() { Stop(); }

void TimerQueue::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TimerQueue::At(int64_t when_us, const Timer& t) {
  bool wake;
  {
    std::lock_guard<std::mutex> l(mu_);
    wake = heap_.empty() || when_us < heap_.top().when;
    heap_.push({when_us, t});
  }
  if (wake) cv_.notify_one();
}

size_t TimerQueue::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return heap_.size();
}

size_t TimerQueue::MemoryBytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return heap_.capacity() * sizeof(Entry);
}

void TimerQueue::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    if (heap_.empty()) {
      cv_.wait(l);
      continue;
    }
    int64_t now = now_us_();
    Entry top = heap_.top();
    if (top.when > now) {
      cv_.wait_for(l, std::chrono::microseconds(top.when - now));
      continue;
    }
    heap_.pop();
    if (heap_.capacity() > kKeptEntries && heap_.size() < heap_.capacity() / 4)
      heap_.Shrink(std::max(kKeptEntries, 2 * heap_.size()));
    l.unlock();
    fire_(top.timer);
    l.lock();
  }
}

}  // namespace replite
