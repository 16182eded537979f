// FakeGoogleTokenServer: a small local stand-in for Google's OAuth 2.0
// token endpoint (POST /token, the jwt-bearer grant of a service account
// key file) and for the GCE metadata server's token (GET
// /computeMetadata/v1/instance/service-accounts/default/token, which
// wants "Metadata-Flavor: Google"), run with python3 on 127.0.0.1. It
// checks the JWT the way Google does: RS256 signature against the public
// key it was given (python3's cryptography, not our code), iss, aud (its
// own /token URL), the devstorage scope and a lifetime of at most an hour.
// Tokens are "ya29.fake-N" (token_prefix + N) with the expires_in it was
// told; GET /tokeninfo?access_token=T answers, as Google's does, how many
// seconds T has left (400 invalid_token once expired, revoked or never
// issued here): the fake GCS server (fake_gcs_server.h) checks bearer tokens
// with it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

namespace replite::testing {

class FakeGoogleTokenServer {
 public:
  // public_key_pem: a file holding the service account's public key;
  // client_email: what iss must be; expires_in: seconds announced.
  static std::unique_ptr<FakeGoogleTokenServer> Start(const std::string& public_key_pem,
                                                      const std::string& client_email, int expires_in,
                                                      std::string* why,
                                                      const std::string& token_prefix = "ya29.fake-");
  ~FakeGoogleTokenServer();

  const std::string& endpoint() const { return endpoint_; }  // "http://127.0.0.1:PORT"
  std::string host_port() const { return endpoint_.substr(7); }  // "127.0.0.1:PORT" (GCE_METADATA_HOST)
  // Revokes a token it issued (POST /revoke?token=T, as Google's): from
  // then on /tokeninfo refuses it. False if it was not live.
  bool Revoke(const std::string& token) const;
  // Tokens issued so far (GET /count); -1 if the server does not answer.
  int TokensIssued() const;

 private:
  FakeGoogleTokenServer() = default;
  pid_t pid_ = -1;
  std::string endpoint_, script_path_, log_path_;
};

}  // namespace replite::testing
