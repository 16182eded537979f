// OAuth 2.0 access tokens for Google Cloud Storage (scope
// devstorage.read_write), fetched through the shared HttpClient and kept
// by an AccessTokenCache (store/access_token_cache.h, the cache Entra
// tokens use too): reused between requests, fetched again before expiry.
//
// Two flows:
//   - a service-account key file (GOOGLE_APPLICATION_CREDENTIALS, JSON
//     with type "service_account", client_email, private_key and
//     token_uri): an RS256 JWT signed with the key (service_account_jwt.h)
//     is exchanged at token_uri (jwt-bearer grant); the file is read again
//     on every fetch, so a rotated key is picked up;
//   - the GCE metadata server (GCE_METADATA_HOST, Default:
//     metadata.google.internal): GET .../service-accounts/default/token
//     with "Metadata-Flavor: Google".
// Neither the private key, the JWT nor a token ever appears in an error.
//
// Used by the native gs:// store (gcs_store.h); gcs_auth.h chooses between
// these tokens and HMAC keys, and shares one source per credential.
//
// Thread-safety: Token() may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "replite/status.h"
#include "replite/sys/env.h"
#include "store/access_token_cache.h"

namespace replite {
class HttpClient;
struct HttpRequest;
}

namespace replite::gcs {

struct GcsTokenConfig {
  enum class Flow { kNone, kServiceAccount, kMetadata };
  Flow flow = Flow::kNone;
  std::string key_file;       // GOOGLE_APPLICATION_CREDENTIALS (service account)
  std::string metadata_host;  // GCE_METADATA_HOST, "host[:port]"; Default: metadata.google.internal
  std::string ca_file;        // for an https token endpoint with a private CA ("" = default)

  // "service account key file (GOOGLE_APPLICATION_CREDENTIALS)" for messages.
  std::string Describe() const;
};

// From the environment: GOOGLE_APPLICATION_CREDENTIALS names a key file;
// else GCE_METADATA_HOST, or REPLITE_GCS_AUTH=metadata, selects the
// metadata server (never probed unasked, so a machine outside Google
// Cloud does not wait on it); else kNone.
GcsTokenConfig GcsTokenConfigFromEnv();

class GcsTokenSource {
 public:
  static constexpr const char* kScope = "https://www.googleapis.com/auth/devstorage.read_write";

  GcsTokenSource(GcsTokenConfig config, std::shared_ptr<HttpClient> http, Env* env);

  // A valid access token (cached, refreshed ahead of expiry).
  Status Token(std::string* token) { return cache_.Get(token); }
  // A token the service refused before its expiry: see
  // AccessTokenCache::Invalidate.
  bool Invalidate(const std::string& token) { return cache_.Invalidate(token); }
  // Token requests made so far (tests).
  uint64_t fetches() const { return cache_.fetches(); }
  // Where the tokens come from, for messages (no secret in it).
  std::string Describe() const { return config_.Describe(); }

 private:
  Status Fetch(std::string* token, int64_t* expires_in_s);
  Status ServiceAccountRequest(HttpRequest* req);

  const GcsTokenConfig config_;
  std::shared_ptr<HttpClient> http_;
  Env* const env_;
  AccessTokenCache cache_;
};

}  // namespace replite::gcs
