// The S3 ObjectStore (also for S3-compatible services: MinIO, R2, B2,
// Tigris, and Google Cloud Storage's XML API through gs://). Every request
// goes through the shared HttpClient, so any number of stores and databases
// use one bounded set of connections.
//
// Addressing: virtual-hosted style (https://BUCKET.s3.REGION.amazonaws.com)
// by default; path style (ENDPOINT/BUCKET/KEY) with force-path-style=true or
// when the endpoint host is an IP address or localhost. gs:// means
// endpoint https://storage.googleapis.com.
//
// Replica URLs by provider (for the README):
//   AWS        s3://bucket/prefix                       (region from AWS_REGION or region=)
//   MinIO      s3://bucket/prefix?endpoint=http://127.0.0.1:9000&force-path-style=true
//   R2         s3://bucket/prefix?endpoint=https://ACCOUNT.r2.cloudflarestorage.com&region=auto
//   B2         s3://bucket/prefix?endpoint=https://s3.us-west-004.backblazeb2.com&region=us-west-004
//   Tigris     s3://bucket/prefix?endpoint=https://fly.storage.tigris.dev&region=auto
//   GCS        gs://bucket/prefix  (XML API with HMAC keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)
// plus ca-file=PATH for a private CA, insecure-skip-verify=true for test
// endpoints only, profile=NAME for a shared config/credentials profile, and
// multipart-threshold=SIZE / multipart-part-size=SIZE (5M..5G; they
// override StoreConfig's), checksum=crc32c|crc64nvme for an additional
// checksum header on single-request PUTs (see checksum.h; default none).
//
// Keys are full keys inside the bucket (the caller composes prefix + "/...").
// Retries: transport failures, 5xx, 429/SlowDown and RequestTimeout are
// retried with exponential backoff and full jitter (StoreConfig::max_retries);
// auth, permission, missing bucket and precondition failures are not. A
// conditional write carries a random id in its metadata
// (x-amz-meta-replite-write-id): when it is refused, one HEAD tells whether
// the object there is this very write (an attempt whose answer was lost
// won: success) or another writer's (kFailedPrecondition).
// Credentials never appear in errors, logs or object metadata.
//
// Thread-safety: an S3 store may be used from any number of threads.
#pragma once

#include <memory>

#include "replite/status.h"
#include "replite/sys/env.h"
#include "replite/sys/object_store.h"
#include "store/replica_url.h"
#include "store/s3/credential_provider.h"
#include "store/s3/sigv4.h"
#include "store/store_registry.h"

namespace replite {

class HttpClient;

// Opens the store for an s3:// or gs:// URL with credentials from the AWS
// default chain (see s3_credentials.h), refreshed before they expire (see
// credential_provider.h). With a `cache`, every store opened with the same
// credential configuration shares one provider, so one refresh serves all
// of them. The store keeps `http` alive. No request is made here: a wrong
// bucket or an unreachable credential endpoint shows on first use.
Status OpenS3Store(const ReplicaUrl& url, std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                   s3::CredentialCache* cache, std::shared_ptr<ObjectStore>* out);
// Same with a provider of its own.
Status OpenS3Store(const ReplicaUrl& url, std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                   std::shared_ptr<ObjectStore>* out);

// Same with explicit credentials that never expire (embedders with their
// own secret source; tests).
Status OpenS3StoreWithCredentials(const ReplicaUrl& url, const s3::AwsCredentials& creds,
                                  std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                                  std::shared_ptr<ObjectStore>* out);
// Same with a provider (tests: a source whose credentials expire).
Status OpenS3StoreWithProvider(const ReplicaUrl& url, std::shared_ptr<s3::CredentialProvider> creds,
                               std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                               std::shared_ptr<ObjectStore>* out);

}  // namespace replite
