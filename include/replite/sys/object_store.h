// ObjectStore: the storage interface every replica backend implements
// (file://, s3://, gs://, abs://, sftp://). Keys are '/'-separated paths
// relative to the store's root (for file:// the root is "/", for s3:// and
// gs:// the bucket, for abs:// the container, for sftp:// the server's "/"). Objects are immutable blobs written atomically: a reader sees the
// whole object or nothing.
//
// Thread-safety: every method may be called concurrently from any thread.
// Calls block the calling thread until done; backends that talk HTTP share
// one connection pool underneath (see lib/http), so a blocked worker does
// not hold a connection of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "replite/status.h"

namespace replite {

struct ObjectInfo {
  std::string key;     // full key, relative to the store root
  uint64_t size = 0;   // bytes
  int64_t mtime_ms = 0;  // last-modified, ms since the Unix epoch (0 if unknown)
  std::string etag;    // opaque version tag ("" if the backend has none)
};

struct PutOptions {
  // Conditional writes, used by leases: fail with kFailedPrecondition when
  // the condition does not hold.
  bool if_none_match = false;  // create only if the key does not exist
  std::string if_match;        // replace only if the current etag equals this
  // PutFile only: the caller deletes `local_path` after a successful put
  // and never writes to it again, so a store on the same filesystem
  // (file://) may hard-link the file instead of copying its bytes.
  bool consumes_source = false;
};

class REPLITE_EXPORT ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Writes `data` under `key`, replacing any object there (unless a
  // condition in `opts` says otherwise). On success *etag (if non-null)
  // receives the new version tag.
  virtual Status Put(const std::string& key, const std::string& data,
                     const PutOptions& opts = {}, std::string* etag = nullptr) = 0;

  // Streams the local file at `local_path` into `key`: the file is never
  // read into memory whole (multipart upload above a threshold for S3).
  virtual Status PutFile(const std::string& key, const std::string& local_path,
                         const PutOptions& opts = {}) = 0;

  // Reads bytes [offset, offset+length) of `key` into *out (length
  // UINT64_MAX: to the end). kNotFound if the key does not exist. A range
  // past the end returns the bytes that exist.
  virtual Status Get(const std::string& key, std::string* out, uint64_t offset = 0,
                     uint64_t length = UINT64_MAX) = 0;

  // Metadata of one object; kNotFound if missing.
  virtual Status Head(const std::string& key, ObjectInfo* out) = 0;

  // Every object whose key starts with `prefix`, sorted by key. Backends
  // page internally (S3: continuation tokens).
  virtual Status List(const std::string& prefix, std::vector<ObjectInfo>* out) = 0;

  // Deletes the keys; keys that do not exist are not an error. Backends
  // batch (S3: up to 1000 per request).
  virtual Status Delete(const std::vector<std::string>& keys) = 0;

  // Removes what writers killed mid-write left under `prefix` (keys that
  // start with it) and started before `older_than_ms` (ms since the
  // epoch): S3 multipart uploads never completed or aborted, file://
  // temporary files. List and Get never show them, but they take space
  // (and S3 bills their parts). *removed (if non-null) receives how many
  // were removed. Default: a backend with no such leftovers does nothing.
  virtual Status RemoveAbandoned(const std::string& prefix, int64_t older_than_ms, uint64_t* removed) {
    (void)prefix;
    (void)older_than_ms;
    if (removed) *removed = 0;
    return Status::OK();
  }
  // A description for logs and errors, never containing credentials
  // (e.g. "file:///var/backups", "s3://bucket (endpoint http://127.0.0.1:9000)").
  virtual std::string Describe() const = 0;
};

// Opens the store a replica URL lives in, in place of the built-in backends
// (ReplicatorOptions::store_factory, RestoreOptions::store_factory): a store
// of your own, or a test double. `replica_url` is a valid replica URL (one
// of the schemes above); the store it returns is addressed with keys
// relative to its root as described at the top of this file (the URL's
// path, its "prefix", comes first in every key: for file:///backups/app the
// keys start with "backups/app/"). Return the same store for URLs of one
// store to share it. Called from the thread that calls Open/Add/Restore.
using ObjectStoreFactory =
    std::function<Status(const std::string& replica_url, std::shared_ptr<ObjectStore>* out)>;

}  // namespace replite
