// The native Google Cloud Storage ObjectStore, for gs://BUCKET/PATH replica
// URLs authenticated with OAuth 2.0 bearer tokens (a service account key
// file or the GCE metadata server: gcs_auth.h says which, gcs_token.h how).
// With HMAC keys gs:// still goes through the S3 store (s3_store.h).
//
// API: the XML API (https://storage.googleapis.com/BUCKET/KEY) with
// "Authorization: Bearer", not the JSON API, because
//   - it is the API gs:// already speaks with HMAC keys, so a replica
//     written with either credential has the same objects, listed the
//     same way (ListObjectsV2), with the same errors (<Error><Code>), read
//     by the same XML reader (store/s3/s3_xml.h) instead of a second
//     parser for JSON resources, nested errors and RFC 3339 times;
//   - a write streams the body as is (PUT with Content-MD5, no upload
//     session), and objects above the multipart threshold use its
//     S3-compatible multipart uploads, parallel parts through the pool,
//     like s3:// and abs:// (the JSON API's resumable uploads are
//     sequential);
//   - ranged GETs, 404/412/416 and HEAD metadata (x-goog-generation) carry
//     everything the store needs.
// GCS has no ETag conditions on writes, so an object's version tag
// (ObjectInfo::etag, Put's *etag) is its generation number, and
// conditional puts send x-goog-if-generation-match: 0 (if_none_match:
// create only) or N (if_match = N: replace generation N only); an if_match
// that is not a generation can never hold (kFailedPrecondition). A
// conditional write carries a random id in x-goog-meta-replite-write-id:
// refused after a retry, one HEAD tells whether the object there is this
// very write (its first answer was lost) or another writer's.
//
// Requests go through the shared HttpClient and HttpRetry (transport
// failures, 408, 429 and 5xx retried with backoff; 401 → kUnauthenticated
// naming GOOGLE_APPLICATION_CREDENTIALS, 403 → kPermissionDenied naming
// the role, 404 → kNotFound, 412 → kFailedPrecondition), counted in the
// client's stats like every HTTP store. endpoint=URL for emulators and
// tests (path style, ENDPOINT/BUCKET/KEY); ca-file, insecure-skip-verify,
// multipart-threshold and multipart-part-size as for s3://. Delete sends
// one DELETE per key, up to 16 in flight (the XML API has no multi-object
// delete). RemoveAbandoned aborts multipart uploads killed writers left
// (ListMultipartUploads), as for s3://. A 401 for a token before its
// expiry (revoked) drops it from the shared cache and the request is tried
// once more with a new one. A token never appears in an error, a log or
// Describe().
//
// Thread-safety: a GCS store may be used from any number of threads.
#pragma once

#include <memory>

#include "replite/status.h"
#include "replite/sys/env.h"
#include "replite/sys/object_store.h"
#include "store/gcs/gcs_token.h"
#include "store/replica_url.h"
#include "store/store_registry.h"

namespace replite {

class HttpClient;

// Opens the native store for a gs:// URL with bearer tokens from `tokens`
// (shared between stores: see gcs::GcsTokenSources). No request is made
// here: a wrong bucket or unusable credentials show on first use.
Status OpenGcsStore(const ReplicaUrl& url, std::shared_ptr<gcs::GcsTokenSource> tokens,
                    std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                    std::shared_ptr<ObjectStore>* out);

}  // namespace replite
