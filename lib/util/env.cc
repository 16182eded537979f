#include "replite/sys/env.h"

#include <chrono>

namespace replite {
namespace {

class RealEnv final : public Env {
 public:
  int64_t NowMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t MonotonicMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

Env* Env::Default() {
  static RealEnv* env = new RealEnv();  // never destroyed: usable during static teardown
  return env;
}

}  // namespace replite
