// AccessTokenCache: one OAuth 2.0 bearer token (Microsoft Entra, Google)
// kept between requests and fetched again before it expires: once less
// than min(5 min, half the token's lifetime) is left, so no request
// carries a token that expires on its way. A failed fetch is returned to
// the caller and tried again on the next call.
//
// Thread-safety: Get() may be called from any thread; one fetch runs at a
// time and the other callers wait for it.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "replite/status.h"
#include "replite/sys/env.h"

namespace replite {

class AccessTokenCache {
 public:
  // Fetches a new token and the seconds it is valid for (expires_in).
  using Fetch = std::function<Status(std::string* token, int64_t* expires_in_s)>;

  AccessTokenCache(Fetch fetch, Env* env);

  // A valid token: the cached one, or a fresh one (fetched under the lock).
  Status Get(std::string* token);
  // The service refused `token` before its expiry (revoked, a key
  // deleted): forget it, so the next Get fetches a new one. True when the
  // next Get will hand out another token (also when another caller has
  // replaced it already); false when `token` was not this cache's.
  bool Invalidate(const std::string& token);
  // Fetches made so far, failed ones included (tests).
  uint64_t fetches() const;

 private:
  const Fetch fetch_;
  Env* const env_;
  mutable std::mutex mu_;
  std::string token_;
  int64_t refresh_at_us_ = 0;  // Env time at which to fetch a new one
  uint64_t fetches_ = 0;
};

}  // namespace replite
