// Env: what tests must be able to control. The clock comes from here (also
// for SigV4 signing times), so a test can move time forward to trigger
// snapshots and retention without sleeping. A Replicator's timers (polls,
// notify batches, retries), store backoffs and kept-connection idle times
// run on MonotonicMicros.
//
// Thread-safety: implementations must be safe to call from any thread.
#pragma once

#include <cstdint>

#include "replite/export.h"

namespace replite {

class REPLITE_EXPORT Env {
 public:
  virtual ~Env() = default;
  // Wall-clock time, microseconds since the Unix epoch (UTC).
  virtual int64_t NowMicros() = 0;
  // Monotonic time for intervals and timeouts, microseconds.
  virtual int64_t MonotonicMicros() = 0;

  // The process-wide real implementation. Never destroyed.
  static Env* Default();
};

// Forwards every call to a target; subclass and override what a test needs
// (e.g. a clock that returns a settable time).
class REPLITE_EXPORT EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  int64_t NowMicros() override { return target_->NowMicros(); }
  int64_t MonotonicMicros() override { return target_->MonotonicMicros(); }
  Env* target() const { return target_; }

 private:
  Env* target_;
};

}  // namespace replite
