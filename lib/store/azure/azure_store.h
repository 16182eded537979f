// The Azure Blob Storage ObjectStore, for abs://ACCOUNT@CONTAINER/PATH
// replica URLs (Litestream's form). Every request goes through the shared
// HttpClient and HttpRetry, as the S3 store's do.
//
// Endpoint: https://ACCOUNT.blob.core.windows.net by default; endpoint=URL
// (or a connection string's BlobEndpoint) for sovereign clouds and
// emulators. An endpoint whose host is an IP address or localhost and has
// no path is an emulator addressed path style (azurite:
// endpoint=http://127.0.0.1:10000 means http://127.0.0.1:10000/ACCOUNT).
// ca-file=PATH and insecure-skip-verify=true as for s3://;
// multipart-threshold=SIZE / multipart-part-size=SIZE set when PutFile
// switches to blocks and the block size.
//
// Objects are block blobs: Put Blob for small ones, Put Block (parallel,
// through the pool) + Put Block List above the multipart threshold (blocks
// never committed are discarded by the service after a week; nothing to
// abort). Conditional puts send If-None-Match: * / If-Match: ETAG. List
// Blobs pages with markers (StoreConfig::list_max_keys per page). Delete
// sends one Delete Blob per key, several in flight at once.
//
// Auth: Shared Key, SAS, connection string or Microsoft Entra tokens (see
// azure_credentials.h and entra_token.h), x-ms-version 2021-08-06. Retries: transport failures, 5xx, 429,
// ServerBusy and OperationTimedOut are retried with HttpRetry's backoff;
// auth, permission, missing container and precondition failures are not.
// Credentials never appear in errors, logs or Describe().
//
// Thread-safety: an Azure store may be used from any number of threads.
#pragma once

#include <memory>

#include "replite/status.h"
#include "replite/sys/env.h"
#include "replite/sys/object_store.h"
#include "store/azure/azure_credentials.h"
#include "store/replica_url.h"
#include "store/store_registry.h"

namespace replite {

class HttpClient;

// Opens the store for an abs:// URL with credentials from the environment.
// No request is made here: a wrong container shows on first use.
Status OpenAzureStore(const ReplicaUrl& url, std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                      std::shared_ptr<ObjectStore>* out);

// Same with explicit credentials (embedders with their own secret source;
// tests). creds.account must match the URL's account when both are set.
Status OpenAzureStoreWithCredentials(const ReplicaUrl& url, const azure::Credentials& creds,
                                     std::shared_ptr<HttpClient> http, Env* env, const StoreConfig& config,
                                     std::shared_ptr<ObjectStore>* out);

// Creates the URL's container (Create Container); one that exists already
// is not an error. For tests and first-time setup.
Status CreateAzureContainer(const ReplicaUrl& url, const azure::Credentials& creds, std::shared_ptr<HttpClient> http,
                            const StoreConfig& config);

}  // namespace replite
