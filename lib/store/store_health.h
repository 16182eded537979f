// StoreHealth: one circuit breaker per store, shared by every database that
// replicates to it. After a failed request the store is "down" for a
// backoff (0.5 s doubling to 2 s); meanwhile sync jobs spool what they
// capture instead of each sending its own failing request, and the first
// job after the backoff is the probe (one attempt, no retry chain: see
// SingleAttemptScope). With 100,000 databases on one bucket
// an outage costs one request per backoff, not one per database.
//
// Thread-safety: lock-free; any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace replite {

class StoreHealth {
 public:
  static constexpr int64_t kFirstBackoffUs = 500 * 1000;
  static constexpr int64_t kMaxBackoffUs = 2 * 1000 * 1000;

  // True if a request may be sent now: the store is up, or its backoff has
  // passed and this caller won the probe (others wait one more backoff).
  bool MayTry(int64_t now_us) {
    int64_t until = retry_at_us_.load();
    while (until != 0) {
      if (now_us < until) return false;
      if (retry_at_us_.compare_exchange_weak(until, now_us + Backoff())) return true;
    }
    return true;
  }
  void Success() {
    failures_.store(0);
    retry_at_us_.store(0);
  }
  void Failure(int64_t now_us) {
    failures_.fetch_add(1);
    retry_at_us_.store(now_us + Backoff());
  }
  bool down() const { return retry_at_us_.load() != 0; }
  // When the next probe may go (0: the store is up).
  int64_t retry_at_us() const { return retry_at_us_.load(); }

 private:
  int64_t Backoff() const {
    const int f = std::clamp(failures_.load(), 1, 16);
    return std::min(kMaxBackoffUs, kFirstBackoffUs << (f - 1));
  }
  std::atomic<int64_t> retry_at_us_{0};
  std::atomic<int> failures_{0};
};

}  // namespace replite
