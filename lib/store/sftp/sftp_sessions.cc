#include "store/sftp/sftp_sessions.h"

#include <curl/curl.h>

#include <algorithm>

namespace replite::sftp {

Sessions::Sessions(int max) : max_(std::max(1, max)) {}

Sessions::~Sessions() {
  for (CURL* h : idle_) curl_easy_cleanup(h);
}

Sessions::Lease Sessions::Acquire() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !idle_.empty() || created_ < max_; });
  CURL* h = nullptr;
  if (!idle_.empty()) {
    h = idle_.back();
    idle_.pop_back();
  } else {
    h = curl_easy_init();
    if (h) created_++;
  }
  l.unlock();
  // Options are set afresh for each use; the connection survives a reset.
  if (h) curl_easy_reset(h);
  return Lease(this, h);
}

int Sessions::created() const {
  std::lock_guard<std::mutex> l(mu_);
  return created_;
}

void Sessions::Release(CURL* h, bool discard) {
  // Outside the lock: the cleanup closes the SSH connection (round trips).
  if (discard) curl_easy_cleanup(h);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (discard) {
      created_--;
    } else {
      idle_.push_back(h);
    }
  }
  cv_.notify_one();
}

Sessions::Lease::~Lease() {
  if (h_) pool_->Release(h_, discard_);
}

}  // namespace replite::sftp
