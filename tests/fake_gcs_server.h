// FakeGcsServer: a small local stand-in for Google Cloud Storage's XML API
// as replite's native gs:// store uses it, run with python3 on 127.0.0.1
// (the fake Google token servers run the same way). It behaves as GCS
// does where the store depends on it:
//   - every request needs "Authorization: Bearer TOKEN", and the token is
//     checked with the token server's /tokeninfo (fake_google_token_server.h)
//     on every request: unknown, expired or revoked tokens get 401
//     AuthenticationRequired;
//   - objects have generation numbers (microseconds, strictly increasing),
//     returned in x-goog-generation on PUT, GET and HEAD and <Generation>
//     in listings; x-goog-if-generation-match: 0 (create only) or N
//     (replace generation N only) is enforced on PUT, multipart completion
//     and DELETE (412 PreconditionFailed); If-Match / If-None-Match on a
//     write is refused (400): GCS has no ETag conditions for writes;
//   - Content-MD5 is checked (400 BadDigest);
//   - ranged GETs (206 with Content-Range, 416 InvalidRange past the end);
//   - ListObjectsV2 (list-type=2) with max-keys, prefix and opaque
//     continuation tokens;
//   - 404 NoSuchKey / NoSuchBucket, including DELETE of a missing object;
//   - S3-compatible XML multipart uploads (initiate, parts, complete,
//     abort, list uploads with markers).
// Buckets are created with PUT /BUCKET (authenticated); GET
// /_deny?bucket=B makes B answer 403. GET /_stats (no auth) tells how many requests it served and which tokens it accepted.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace replite::testing {

class FakeGcsServer {
 public:
  // token_server: "http://127.0.0.1:PORT" of a FakeGoogleTokenServer.
  static std::unique_ptr<FakeGcsServer> Start(const std::string& token_server, std::string* why);
  ~FakeGcsServer();

  const std::string& endpoint() const { return endpoint_; }  // "http://127.0.0.1:PORT"
  // Creates a bucket, authenticated with `token`; false on failure.
  bool CreateBucket(const std::string& bucket, const std::string& token) const;
  // From now on every request to `bucket` is 403 AccessDenied, as for an
  // account the bucket's IAM policy grants nothing (GET /_deny?bucket=).
  bool DenyBucket(const std::string& bucket) const;
  // Requests served (not counting /_stats); -1 if the server does not answer.
  int Requests() const;
  // The distinct bearer tokens it accepted, in the order first seen.
  std::vector<std::string> TokensSeen() const;
  // One raw request with libcurl's easy API (not the HttpClient under
  // test): the HTTP status (0 if none), the body in *body if given.
  long Raw(const std::string& method, const std::string& path, const std::string& bearer,
           std::string* body = nullptr) const;

 private:
  FakeGcsServer() = default;
  std::string Stats() const;
  pid_t pid_ = -1;
  std::string endpoint_, script_path_, log_path_;
};

}  // namespace replite::testing
