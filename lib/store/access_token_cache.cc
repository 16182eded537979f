#include "store/access_token_cache.h"

#include <algorithm>

namespace replite {

AccessTokenCache::AccessTokenCache(Fetch fetch, Env* env)
    : fetch_(std::move(fetch)), env_(env ? env : Env::Default()) {}

uint64_t AccessTokenCache::fetches() const {
  std::lock_guard<std::mutex> l(mu_);
  return fetches_;
}

bool AccessTokenCache::Invalidate(const std::string& token) {
  std::lock_guard<std::mutex> l(mu_);
  if (token.empty() || token_.empty()) return false;
  if (token_ == token) {
    token_.clear();
    refresh_at_us_ = 0;
  }
  return true;
}

Status AccessTokenCache::Get(std::string* token) {
  std::lock_guard<std::mutex> l(mu_);
  const int64_t now = env_->NowMicros();
  if (!token_.empty() && now < refresh_at_us_) {
    *token = token_;
    return Status::OK();
  }
  std::string fresh;
  int64_t expires_in_s = 0;
  Status s = fetch_(&fresh, &expires_in_s);
  fetches_++;
  if (!s.ok()) return s;
  token_ = std::move(fresh);
  expires_in_s = std::max<int64_t>(1, expires_in_s);
  // Refresh when min(5 min, half the lifetime) is left.
  const int64_t margin_s = std::min<int64_t>(300, expires_in_s / 2);
  refresh_at_us_ = now + (expires_in_s - margin_s) * 1000000;
  *token = token_;
  return Status::OK();
}

}  // namespace replite
