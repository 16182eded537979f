// CredentialProvider: the credentials every S3 request of a store is signed
// with, fetched from one CredentialSource and refreshed before they expire.
//
// One provider serves every store of a Replicator that uses the same
// credential configuration (see CredentialCache), so 100,000 databases cause
// one refresh, not 100,000. Get() never waits for the network while the
// cached credentials are still valid: from `refresh_at` on (half their
// lifetime before expiry, at most 5 minutes before), Get() returns them and
// wakes the provider's refresh thread, which fetches new ones in the
// background. Only a caller that finds none, or finds them expired (within a
// safety margin before the advertised expiry), waits for a fetch. A failed
// refresh keeps the old credentials while they last and is retried with
// backoff (1 s doubling to 60 s); once they have expired, Get() returns the
// source's error, naming the source and the fix.
//
// Credentials that never expire (environment, a static profile) are fetched
// once and the thread is never started. No request is made before the first
// Get(). Nothing here logs or puts a secret in a message.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "replite/status.h"
#include "replite/sys/env.h"
#include "store/s3/sigv4.h"

namespace replite::s3 {

// Credentials with their expiry.
struct TimedCredentials {
  AwsCredentials creds;
  int64_t expires_ms = 0;  // wall clock, ms since the epoch; 0 = never expires
};

// One place credentials come from (environment, a profile, STS, ECS, IMDS).
// Fetch() may block on the network or a child process, bounded by the
// source's own timeouts.
class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  virtual Status Fetch(TimedCredentials* out) = 0;
  // For messages: "IMDSv2 at http://169.254.169.254", never a secret.
  virtual std::string Describe() const = 0;
};

class CredentialProvider {
 public:
  CredentialProvider(std::unique_ptr<CredentialSource> source, Env* env);
  ~CredentialProvider();  // stops and joins the refresh thread
  CredentialProvider(const CredentialProvider&) = delete;
  CredentialProvider& operator=(const CredentialProvider&) = delete;

  // Valid credentials (see the file comment for when this waits).
  Status Get(AwsCredentials* out);
  // Replaces `text` occurrences of any credential value this provider has
  // handed out recently (current and previous set) with "[redacted]".
  std::string Redact(std::string text) const;
  // The server rejected a request signed with `access_key_id` as expired
  // or unknown (ExpiredToken, InvalidAccessKeyId): if those are still the
  // current credentials and they come from a source that refreshes, the
  // next Get() waits for fresh ones. Returns true if so (worth one retry).
  bool Invalidate(const std::string& access_key_id);
  std::string Describe() const { return source_->Describe(); }
  uint64_t fetches() const;  // completed fetches, for tests and status

 private:
  void RefreshLoop();
  void WakeRefresherLocked();
  int64_t NowMs() const { return env_->NowMicros() / 1000; }

  const std::unique_ptr<CredentialSource> source_;
  Env* const env_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the refresh thread
  std::condition_variable done_cv_;  // a fetch ended
  bool have_ = false;
  TimedCredentials current_;
  AwsCredentials previous_;  // for Redact(): requests signed just before a refresh
  int64_t fetched_ms_ = 0, refresh_at_ms_ = 0, expired_at_ms_ = 0;
  bool want_refresh_ = false, refreshing_ = false, stopping_ = false;
  int64_t next_attempt_ms_ = 0;  // backoff after a failed fetch
  int failures_ = 0;
  Status last_error_;
  uint64_t fetches_ = 0;
  uint64_t attempts_done_ = 0;  // fetches ended, successful or not
  std::thread thread_;     // started on the first refresh need
};

// The providers of one Replicator, by credential configuration (the replica
// URL's profile parameter): every store opened with the same configuration
// shares one provider and so one refresh.
class CredentialCache {
 public:
  // The provider for `profile`, created with `make` on first use.
  Status Get(const std::string& profile, const std::function<Status(std::shared_ptr<CredentialProvider>*)>& make,
             std::shared_ptr<CredentialProvider>* out);

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<CredentialProvider>> providers_;
};

// A source that always returns the same credentials (explicit keys).
std::unique_ptr<CredentialSource> StaticCredentialSource(AwsCredentials creds, std::string describe);

}  // namespace replite::s3
