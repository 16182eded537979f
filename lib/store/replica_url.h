// Replica URLs: file:///abs/path, s3://bucket/prefix?endpoint=...&region=...
// &force-path-style=true, gs://bucket/prefix (Google Cloud Storage: native
// with OAuth tokens, or the S3 XML API with HMAC keys; see gcs_auth.h),
// abs://ACCOUNT@CONTAINER/prefix?endpoint=... (Azure Blob Storage; ACCOUNT@
// may be left out when the environment names the account),
// sftp://USER@HOST[:PORT]/path?key=PATH&known-hosts=PATH (SFTP; bucket is
// "HOST:PORT", account the user).
//
// Parsing is strict: an unknown scheme, a relative file path, an empty
// bucket or an unknown query parameter is kInvalidArgument naming the fix.
#pragma once

#include <map>
#include <string>

#include "replite/status.h"

namespace replite {

struct ReplicaUrl {
  std::string scheme;   // "file", "s3", "gs", "abs", "sftp"
  std::string bucket;   // s3/gs bucket, abs container, sftp "HOST:PORT"; empty for file
  std::string account;  // abs storage account ("" = from the environment), sftp user; empty otherwise
  // Key prefix inside the store, without leading or trailing '/'. For
  // file:///var/backups/app this is "var/backups/app" (the file store's
  // root is "/").
  std::string prefix;
  std::map<std::string, std::string> params;  // decoded query parameters

  // The URL rebuilt without anything secret (there is nothing secret in a
  // replica URL by design: credentials come from the environment).
  std::string ToString() const;
  // A child URL: same store, prefix + "/" + name.
  ReplicaUrl Child(const std::string& name) const;
  // Identity of the store (scheme, account, bucket, endpoint, region, style): URLs
  // with the same identity share one ObjectStore instance.
  std::string StoreIdentity() const;
};

Status ParseReplicaUrl(const std::string& url, ReplicaUrl* out);

}  // namespace replite
