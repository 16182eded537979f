// SingleAttemptScope: while one is alive on a thread, object stores called
// from that thread make one attempt per request instead of retrying with
// backoff. The replicator opens one for a circuit-breaker probe of a store
// already known to be failing: the probe should fail fast, so that the job
// goes on to spool what it captured and checkpoint (a 7-attempt retry chain
// holds the job, and lets the WAL grow, for up to ~25 s).
//
// Thread-safety: thread-local; scopes nest.
#pragma once

namespace replite {

class SingleAttemptScope {
 public:
  explicit SingleAttemptScope(bool enable = true) : enabled_(enable) {
    if (enabled_) depth()++;
  }
  ~SingleAttemptScope() {
    if (enabled_) depth()--;
  }
  SingleAttemptScope(const SingleAttemptScope&) = delete;
  SingleAttemptScope& operator=(const SingleAttemptScope&) = delete;

  static bool active() { return depth() > 0; }

 private:
  static int& depth() {
    thread_local int d = 0;
    return d;
  }
  bool enabled_;
};

}  // namespace replite
