// GcsFixture: what a gs:// test needs, started on 127.0.0.1: a service
// account key pair (made by the openssl command) and its key file, a fake
// Google token endpoint that trusts that key (fake_google_token_server.h),
// and a fake GCS server that accepts only that endpoint's live tokens
// (fake_gcs_server.h). Start FAILs the test when a server cannot start:
// there is no skip.
#pragma once

#include <memory>
#include <string>

#include "fake_gcs_server.h"
#include "fake_google_token_server.h"
#include "replite/sys/env.h"
#include "store/gcs/gcs_token.h"
#include "test_util.h"

namespace replite::test {

struct GcsFixture {
  // expires_in: the lifetime of the tokens the fake endpoint issues.
  static std::unique_ptr<GcsFixture> Start(int expires_in = 3600);

  TempDir dir;
  std::string key_file;  // the service account key file (GOOGLE_APPLICATION_CREDENTIALS)
  std::unique_ptr<testing::FakeGoogleTokenServer> tokens;
  std::unique_ptr<testing::FakeGcsServer> gcs;

  // Flow kServiceAccount with key_file.
  gcs::GcsTokenConfig KeyFileConfig() const;
  // Creates a bucket on the fake (with a token of its own).
  void CreateBucket(const std::string& bucket) const;
};

// Unsets every variable that chooses Google or HMAC credentials.
void ClearGcsEnv();

// An RSA key pair made by the openssl command (REQUIREs success).
void MakeRsaKeyPair(const std::string& key_pem, const std::string& pub_pem);
// Writes a service account key file, as the console downloads it, for
// `email` with the private key in `key_pem` and token_uri `token_uri`.
void WriteServiceAccountKeyFile(const std::string& path, const std::string& key_pem, const std::string& email,
                                const std::string& token_uri);

}  // namespace replite::test
