// The JWT a Google service account presents to its token endpoint to get
// an OAuth 2.0 access token (RFC 7523 jwt-bearer grant, as Google's
// "service account key file" flow does it): header {"alg":"RS256",
// "typ":"JWT"}, claims iss (the account's client_email), scope, aud (the
// token endpoint), iat and exp, signed RS256 with the key file's RSA
// private key through OpenSSL. Errors never quote the key.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "replite/status.h"

namespace replite::gcs {

struct JwtClaims {
  std::string issuer;    // iss: the service account's client_email
  std::string scope;     // space-separated OAuth scopes
  std::string audience;  // aud: the token endpoint URL (the key file's token_uri)
  int64_t issued_at_s = 0;
  int64_t lifetime_s = 3600;  // Default: 3600 (Google's maximum)
};

// header.claims.signature, each base64url without padding.
Status SignServiceAccountJwt(const JwtClaims& claims, const std::string& private_key_pem, std::string* jwt);

// Base64url (RFC 4648 section 5) without padding.
std::string Base64Url(std::string_view raw);

}  // namespace replite::gcs
