// StoreRegistry: one per Replicator (and one per restore call). Opens each
// distinct store once (by ReplicaUrl::StoreIdentity) and hands out shared
// pointers, so 100,000 databases replicating to one bucket share one
// ObjectStore and, through it, one HTTP connection pool.
//
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "replite/status.h"
#include "replite/sys/env.h"
#include "replite/sys/object_store.h"
#include "store/replica_url.h"

namespace replite {

class HttpClient;  // lib/http: one CURLM thread shared by every HTTP store
namespace s3 {
class CredentialCache;  // lib/store/s3: one credential refresh shared by every S3 store
}
namespace gcs {
class GcsTokenSources;  // lib/store/gcs: one Google token per credential, shared by every gs:// store
}

// Settings for stores that talk HTTP. Defaults suit one process replicating
// many databases to one provider.
struct StoreConfig {
  int max_connections = 32;           // Default: 32, across all hosts
  int max_connections_per_host = 16;  // Default: 16
  int connect_timeout_ms = 10000;     // Default: 10 s
  int low_speed_time_s = 30;          // Default: abort a transfer below 1 KiB/s for 30 s
  std::string ca_file;                // Default: system CA bundle
  bool verify_tls = true;             // Default: on
  int max_retries = 6;                // Default: 6 attempts after the first, exponential backoff
  uint64_t multipart_threshold = 64ull << 20;  // Default: PutFile above 64 MiB goes multipart
  uint64_t multipart_part_size = 16ull << 20;  // Default: 16 MiB parts
  int multipart_concurrency = 4;      // Default: 4 parts of one upload in flight at once
  int retry_base_delay_ms = 200;      // Default: 200 ms, doubled per attempt, full jitter
  int retry_max_delay_ms = 20000;     // Default: 20 s cap on one backoff
  int list_max_keys = 1000;           // Default: 1000 keys per ListObjectsV2 page (the S3 maximum)
};

class StoreRegistry {
 public:
  StoreRegistry(Env* env, StoreConfig config);
  ~StoreRegistry();
  StoreRegistry(const StoreRegistry&) = delete;
  StoreRegistry& operator=(const StoreRegistry&) = delete;

  // The store for `url` (opened on first use).
  Status Open(const ReplicaUrl& url, std::shared_ptr<ObjectStore>* out);

  // The shared HTTP client, created on first use (nullptr if no HTTP store
  // was opened yet).
  HttpClient* http();

 private:
  HttpClient* HttpLocked();
  Env* env_;
  StoreConfig config_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<ObjectStore>> stores_;
  std::shared_ptr<HttpClient> http_;  // created with its complete type in the .cc
  std::shared_ptr<s3::CredentialCache> s3_credentials_;
  std::shared_ptr<gcs::GcsTokenSources> gcs_tokens_;
};

}  // namespace replite
