#include "store/s3/credential_provider.h"

#include <algorithm>

namespace replite::s3 {
namespace {

constexpr int64_t kMaxRefreshAheadMs = 5 * 60 * 1000;  // refresh at most 5 min before expiry
constexpr int64_t kMaxExpiryMarginMs = 10 * 1000;      // treat as expired 10 s early (clock skew, slow requests)
constexpr int64_t kMaxBackoffMs = 60 * 1000;

class StaticSource final : public CredentialSource {
 public:
  StaticSource(AwsCredentials creds, std::string describe)
      : creds_(std::move(creds)), describe_(std::move(describe)) {}
  Status Fetch(TimedCredentials* out) override {
    out->creds = creds_;
    out->expires_ms = 0;
    return Status::OK();
  }
  std::string Describe() const override { return describe_; }

 private:
  const AwsCredentials creds_;
  const std::string describe_;
};

void RedactValue(const std::string& secret, std::string* text) {
  if (secret.size() < 4) return;
  for (size_t p; (p = text->find(secret)) != std::string::npos;) text->replace(p, secret.size(), "[redacted]");
}

}  // namespace

std::unique_ptr<CredentialSource> StaticCredentialSource(AwsCredentials creds, std::string describe) {
  return std::make_unique<StaticSource>(std::move(creds), std::move(describe));
}

CredentialProvider::CredentialProvider(std::unique_ptr<CredentialSource> source, Env* env)
    : source_(std::move(source)), env_(env ? env : Env::Default()) {}

CredentialProvider::~CredentialProvider() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  done_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CredentialProvider::WakeRefresherLocked() {
  if (refreshing_ || want_refresh_) return;
  want_refresh_ = true;
  if (!thread_.joinable()) thread_ = std::thread([this] { RefreshLoop(); });
  cv_.notify_one();
}

Status CredentialProvider::Get(AwsCredentials* out) {
  std::unique_lock<std::mutex> l(mu_);
  bool waited = false;
  while (true) {
    const int64_t now = NowMs();
    if (have_ && (current_.expires_ms == 0 || now < expired_at_ms_)) {
      // Valid: hand them out; past refresh_at, a background refresh starts.
      if (current_.expires_ms != 0 && now >= refresh_at_ms_ && now >= next_attempt_ms_) WakeRefresherLocked();
      *out = current_.creds;
      return Status::OK();
    }
    if (stopping_) return Status::Cancelled("credentials from " + source_->Describe() + ": shutting down");
    // None yet, or expired: this caller must wait for a fetch. A fetch that
    // just failed is not repeated for every request (backoff): its error
    // is the answer until the next attempt is due.
    if (waited || (!refreshing_ && !last_error_.ok() && now < next_attempt_ms_)) {
      if (!last_error_.ok()) return last_error_;
      return Status::Unauthenticated("credentials from " + source_->Describe() +
                                     " expired as soon as they were fetched: check the system clock");
    }
    const uint64_t seen = attempts_done_;
    WakeRefresherLocked();
    done_cv_.wait(l, [&] { return attempts_done_ != seen || stopping_; });
    waited = true;
  }
}

void CredentialProvider::RefreshLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [&] { return stopping_ || want_refresh_; });
    if (stopping_) return;
    want_refresh_ = false;
    refreshing_ = true;
    l.unlock();
    TimedCredentials fresh;
    Status s = source_->Fetch(&fresh);
    if (s.ok() && (fresh.creds.access_key_id.empty() || fresh.creds.secret_access_key.empty()))
      s = Status::Unauthenticated("credentials from " + source_->Describe() +
                                  " lack an access key id or a secret access key");
    l.lock();
    refreshing_ = false;
    attempts_done_++;
    const int64_t now = NowMs();
    if (s.ok()) {
      if (have_ && current_.creds.access_key_id != fresh.creds.access_key_id) previous_ = current_.creds;
      current_ = std::move(fresh);
      have_ = true;
      fetches_++;
      failures_ = 0;
      next_attempt_ms_ = 0;
      last_error_ = Status::OK();
      const int64_t life = std::max<int64_t>(0, current_.expires_ms - now);
      refresh_at_ms_ = current_.expires_ms - std::min(kMaxRefreshAheadMs, life / 2);
      expired_at_ms_ = current_.expires_ms - std::min(kMaxExpiryMarginMs, life / 10);
    } else {
      failures_++;
      last_error_ = s;
      next_attempt_ms_ = now + std::min(kMaxBackoffMs, int64_t{1000} << std::min(failures_ - 1, 6));
    }
    done_cv_.notify_all();
  }
}

bool CredentialProvider::Invalidate(const std::string& access_key_id) {
  std::lock_guard<std::mutex> l(mu_);
  if (!have_ || current_.expires_ms == 0 || current_.creds.access_key_id != access_key_id) return false;
  expired_at_ms_ = 0;
  next_attempt_ms_ = 0;
  return true;
}

std::string CredentialProvider::Redact(std::string text) const {
  std::lock_guard<std::mutex> l(mu_);
  for (const AwsCredentials* c : {&current_.creds, &previous_}) {
    RedactValue(c->secret_access_key, &text);
    RedactValue(c->session_token, &text);
    RedactValue(c->access_key_id, &text);
  }
  return text;
}

uint64_t CredentialProvider::fetches() const {
  std::lock_guard<std::mutex> l(mu_);
  return fetches_;
}

Status CredentialCache::Get(const std::string& profile,
                            const std::function<Status(std::shared_ptr<CredentialProvider>*)>& make,
                            std::shared_ptr<CredentialProvider>* out) {
  std::lock_guard<std::mutex> l(mu_);
  if (auto it = providers_.find(profile); it != providers_.end()) {
    *out = it->second;
    return Status::OK();
  }
  Status s = make(out);
  if (s.ok()) providers_[profile] = *out;
  return s;
}

}  // namespace replite::s3
