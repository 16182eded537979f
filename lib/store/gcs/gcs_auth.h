// How a gs://BUCKET/PATH replica authenticates, decided from the
// environment when its store is opened, in this order:
//   1. REPLITE_GCS_AUTH, when set, decides: "hmac" (the S3-interoperable
//      XML API signed with HMAC keys from the AWS chain, s3_store.h),
//      "oauth" (bearer tokens from GOOGLE_APPLICATION_CREDENTIALS or, if
//      GCE_METADATA_HOST is set, the metadata server) or "metadata" (the
//      GCE metadata server at GCE_METADATA_HOST, Default:
//      metadata.google.internal);
//   2. HMAC keys, as before native support: AWS_ACCESS_KEY_ID is set or
//      the URL has profile=NAME;
//   3. Google credentials: GOOGLE_APPLICATION_CREDENTIALS (a service
//      account key file), else GCE_METADATA_HOST (the metadata server);
//   4. none: kUnauthenticated naming GOOGLE_APPLICATION_CREDENTIALS,
//      REPLITE_GCS_AUTH=metadata and the HMAC alternative.
// The metadata server is used only when asked for (GCE_METADATA_HOST or
// REPLITE_GCS_AUTH=metadata), never probed: outside Google Cloud the name
// metadata.google.internal may resolve to nothing or to a host that never
// answers, and every gs:// user would wait on that timeout.
//
// Tokens: one GcsTokenSource (one AccessTokenCache, one token refreshed
// before expiry) per credential, shared by every gs:// store of a
// StoreRegistry, so 100,000 databases on any number of buckets cost one
// token request per refresh.
//
// Thread-safety: ChooseGcsAuth reads the environment only;
// GcsTokenSources may be used from any thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "replite/status.h"
#include "replite/sys/env.h"
#include "store/gcs/gcs_token.h"
#include "store/replica_url.h"

namespace replite::gcs {

enum class GcsAuthKind { kHmac, kOAuth };

// *tokens is filled for kOAuth.
Status ChooseGcsAuth(const ReplicaUrl& url, GcsAuthKind* kind, GcsTokenConfig* tokens);

class GcsTokenSources {
 public:
  // The source for `config` (created on first use with `http` and `env`).
  std::shared_ptr<GcsTokenSource> For(const GcsTokenConfig& config, std::shared_ptr<HttpClient> http, Env* env);

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<GcsTokenSource>> sources_;  // by flow + key file / metadata host
};

}  // namespace replite::gcs
