#include "store/http_retry.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <thread>
#include <tuple>
#include <vector>

#include "store/attempt_scope.h"

namespace replite {

HttpRetry::HttpRetry(const StoreConfig& config)
    : max_retries_(config.max_retries),
      base_delay_ms_(config.retry_base_delay_ms),
      max_delay_ms_(config.retry_max_delay_ms),
      rng_(std::random_device{}()) {}

int HttpRetry::MaxAttempts() const { return SingleAttemptScope::active() ? 1 : 1 + std::max(0, max_retries_); }

int64_t HttpRetry::BackoffMs(int attempt) {
  const int64_t cap =
      std::min<int64_t>(max_delay_ms_, static_cast<int64_t>(base_delay_ms_) << std::min(attempt, 20));
  if (cap <= 0) return 0;
  std::lock_guard<std::mutex> l(rng_mu_);
  return std::uniform_int_distribution<int64_t>(0, cap)(rng_);  // full jitter
}

Status HttpRetry::Do(HttpClient* http, const Build& build, const Classify& classify, HttpResponse* r,
                     const std::function<bool(const HttpResponse&)>& refresh) {
  Status s;
  const int attempts = MaxAttempts();
  bool refreshed = false;
  for (int i = 0; i < attempts; i++) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(BackoffMs(i - 1)));
    HttpRequest req;
    s = build(&req);
    if (!s.ok()) {
      if (s.retryable()) continue;  // e.g. instance metadata unreachable for a moment
      return s;
    }
    *r = HttpResponse();
    Status t = http->Perform(req, r);
    s = classify(t, *r);
    if (s.code() == Code::kUnauthenticated && refresh && !refreshed && refresh(*r)) {
      refreshed = true;
      i--;
      continue;
    }
    if (s.ok() || !s.retryable()) return s;
    if (t.code() == Code::kIOError) return s;  // our own file failed to read: retrying will not help
  }
  return s.Annotate("after " + std::to_string(attempts) + " attempts: ");
}

Status HttpRetry::RunConcurrent(
    HttpClient* http, size_t n, int window, const std::function<Status(size_t, int, HttpRequest*)>& prepare,
    const std::function<Status(size_t, const Status&, const HttpResponse&)>& classify,
    const std::function<void(size_t, const HttpResponse&)>& on_ok) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::tuple<size_t, Status, HttpResponse>> done;
  };
  // Shared with the completion callbacks, which may run after an early
  // return of ours only if we returned with requests in flight (we do not).
  auto shared = std::make_shared<Shared>();
  std::vector<int> attempts(n, 0);
  std::deque<std::pair<int64_t, size_t>> ready;  // (not-before ms, index)
  for (size_t i = 0; i < n; i++) ready.emplace_back(0, i);
  window = std::max(1, window);
  const int attempts_max = MaxAttempts();
  int in_flight = 0;
  size_t finished = 0;
  Status failure;
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };

  while (finished < n && (failure.ok() || in_flight > 0)) {
    // Start what may start.
    while (failure.ok() && in_flight < window && !ready.empty() && ready.front().first <= now_ms()) {
      const size_t i = ready.front().second;
      ready.pop_front();
      HttpRequest req;
      Status ps = prepare(i, attempts[i], &req);
      if (!ps.ok()) {
        failure = ps;
        break;
      }
      attempts[i]++;
      in_flight++;
      http->Submit(std::move(req), [shared, i](Status st, HttpResponse&& resp) {
        std::lock_guard<std::mutex> l(shared->mu);
        shared->done.emplace_back(i, std::move(st), std::move(resp));
        shared->cv.notify_one();
      });
    }
    if (in_flight == 0 && (!failure.ok() || (ready.empty() && finished == n))) break;
    // Wait for a completion (or for the next retry to come due).
    std::unique_lock<std::mutex> l(shared->mu);
    if (shared->done.empty()) {
      int64_t wait_ms = 1000;
      if (failure.ok() && !ready.empty() && in_flight < window)
        wait_ms = std::max<int64_t>(0, ready.front().first - now_ms());
      shared->cv.wait_for(l, std::chrono::milliseconds(wait_ms), [&] { return !shared->done.empty(); });
    }
    while (!shared->done.empty()) {
      auto [i, st, resp] = std::move(shared->done.front());
      shared->done.pop_front();
      in_flight--;
      Status cs = classify(i, st, resp);
      if (cs.ok()) {
        on_ok(i, resp);
        finished++;
      } else if (cs.retryable() && st.code() != Code::kIOError && attempts[i] < attempts_max) {
        ready.emplace_back(now_ms() + BackoffMs(attempts[i] - 1), i);
        std::sort(ready.begin(), ready.end());
      } else if (failure.ok()) {
        failure = attempts[i] > 1 ? cs.Annotate("after " + std::to_string(attempts[i]) + " attempts: ") : cs;
      }
    }
  }
  return failure;
}

}  // namespace replite
