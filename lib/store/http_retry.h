// HttpRetry: the retry rules every HTTP store (s3, abs, gs) follows, written
// once. A request is attempted up to 1 + StoreConfig::max_retries times
// (once inside a SingleAttemptScope, a circuit-breaker probe), with
// exponential backoff and full jitter between attempts, and is rebuilt
// (signed again) for each attempt. Whether an outcome is retried follows
// from the Status the store's classifier returns (Status::retryable()); a
// local file that cannot be read (kIOError from the HTTP layer) is never
// retried.
//
// RunConcurrent runs many independent requests (multipart parts, blocks,
// deletes) through the shared pool, a bounded window at a time, each with
// the same rules; the calling thread only prepares requests, schedules
// retries and waits.
//
// Thread-safety: an HttpRetry may be used from any number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <random>

#include "http/http_client.h"
#include "replite/status.h"
#include "store/store_registry.h"

namespace replite {

class HttpRetry {
 public:
  explicit HttpRetry(const StoreConfig& config);

  // Attempts per request: one inside a SingleAttemptScope (a probe).
  int MaxAttempts() const;
  // The pause before retry number attempt+1 (attempt counts from 0).
  int64_t BackoffMs(int attempt);

  // Fills the request for one attempt (fresh signature each time); a
  // failure (e.g. credentials that cannot be fetched) ends the attempt,
  // retried when retryable.
  using Build = std::function<Status(HttpRequest*)>;
  // Maps the outcome of one attempt (transport status, response) to a
  // Status; OK ends the loop, a retryable code is retried.
  using Classify = std::function<Status(const Status& transport, const HttpResponse&)>;

  // One request with retries. *r receives the last response. When an
  // attempt is refused as unauthenticated and `refresh` (optional) says it
  // renewed the credentials, the request is tried again at once, once.
  Status Do(HttpClient* http, const Build& build, const Classify& classify, HttpResponse* r,
            const std::function<bool(const HttpResponse&)>& refresh = nullptr);

  // n independent requests, at most `window` in flight. prepare(i, attempt,
  // req) fills request i for its attempt (attempt 0 first; a failure ends
  // the run); classify(i, ...) maps its outcome; on_ok(i, response) is
  // called on this thread for each success. On the first request that
  // fails for good, nothing new starts, the requests in flight are waited
  // for, and that failure is returned.
  Status RunConcurrent(HttpClient* http, size_t n, int window,
                       const std::function<Status(size_t i, int attempt, HttpRequest* req)>& prepare,
                       const std::function<Status(size_t i, const Status& transport, const HttpResponse&)>& classify,
                       const std::function<void(size_t i, const HttpResponse&)>& on_ok);

 private:
  const int max_retries_;
  const int base_delay_ms_;
  const int max_delay_ms_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

}  // namespace replite
