// AWS Signature Version 4 (the S3 flavour): canonical request, string to
// sign and signature, as an Authorization header or as a presigned query.
// S3 differs from the generic algorithm in two ways that matter here: the
// path is URI-encoded once (not twice) and never normalized ("a/../b" is a
// key, not a path to collapse).
//
// Hashing and HMAC come from OpenSSL's EVP interface. The time is always
// passed in by the caller (taken from Env::NowMicros()), so tests can sign
// at a fixed instant.
//
// Thread-safety: the free functions are thread-safe; a SigV4Signer may be
// used from any thread (its signing-key cache is guarded by a mutex).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace replite::s3 {

// Credentials for signing. Never logged, never put in an error message.
struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // "" unless temporary credentials
};

using KeyValues = std::vector<std::pair<std::string, std::string>>;

// Lower-case hex of SHA-256(data).
std::string Sha256Hex(std::string_view data);
// Raw 32-byte HMAC-SHA256(key, data).
std::string HmacSha256(std::string_view key, std::string_view data);
std::string HexEncode(std::string_view raw);
// RFC 3986 encoding as SigV4 wants it: unreserved characters
// (A-Z a-z 0-9 - . _ ~) pass, everything else becomes %XX (upper-case hex);
// '/' passes only when keep_slash is true (paths).
std::string UriEncode(std::string_view s, bool keep_slash);
// "20150830T123600Z" for a time in microseconds since the Unix epoch (UTC).
std::string AmzDate(int64_t unix_micros);

// What is signed. `path` and `query` are in decoded form; the signer encodes
// them exactly as the HTTP layer must send them (use UriEncode for the URL).
struct SigningRequest {
  std::string method;  // "GET", "PUT", ...
  std::string path;    // decoded path, "/" + key for path style; "" means "/"
  KeyValues query;     // decoded names and values, any order
  KeyValues headers;   // headers that will be sent and signed; must include "host"
  std::string payload_hash;  // Sha256Hex(body) or "UNSIGNED-PAYLOAD"
};

// Everything a caller (or a test) may want to look at after signing.
struct SignedRequest {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;  // lower-case hex
  // Header variant: headers to add to the request (x-amz-date, optional
  // x-amz-content-sha256 and x-amz-security-token, authorization).
  KeyValues add_headers;
  // Query variant: the full encoded query string, X-Amz-Signature last.
  std::string query_string;
};

struct SignOptions {
  // Add and sign x-amz-content-sha256 (S3 requires it on every request).
  bool sign_content_sha256 = true;
  // Sign the session token (true for S3). When false the token is added
  // after signing, as some services (STS-style) expect.
  bool sign_session_token = true;
  int presign_expires_s = 3600;  // query variant only
};

class SigV4Signer {
 public:
  SigV4Signer(std::string region, std::string service);

  // Header variant: fills out->add_headers, including Authorization.
  void SignHeaders(const AwsCredentials& creds, int64_t unix_micros, const SigningRequest& req,
                   const SignOptions& opt, SignedRequest* out);
  // Query (presigned URL) variant: fills out->query_string.
  void Presign(const AwsCredentials& creds, int64_t unix_micros, const SigningRequest& req,
               const SignOptions& opt, SignedRequest* out);

  const std::string& region() const { return region_; }

 private:
  // Derives (or reuses) the signing key for `date` (YYYYMMDD). The key
  // changes once a day per region/service, so caching it saves four HMACs
  // per request.
  std::string SigningKey(const AwsCredentials& creds, const std::string& date);

  const std::string region_;
  const std::string service_;
  std::mutex mu_;
  std::string cached_date_;
  std::string cached_secret_hash_;  // identifies the secret without keeping it twice
  std::string cached_key_;
};

// Canonical pieces, exposed for tests and for the signer itself.
// Headers: names lower-cased, values trimmed with inner runs of spaces
// collapsed, repeated names joined with ',' in order, sorted by name.
void CanonicalHeaders(const KeyValues& headers, std::string* canonical, std::string* signed_names);
// Query: names and values encoded, sorted by name then value, joined by '&'.
std::string CanonicalQuery(const KeyValues& query);

}  // namespace replite::s3
