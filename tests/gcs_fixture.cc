#include "gcs_fixture.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "http/http_client.h"
#include "util/file_util.h"

namespace replite::test {
namespace {

const char* kEmail = "replite-store@example-project.iam.gserviceaccount.com";

}  // namespace

std::unique_ptr<GcsFixture> GcsFixture::Start(int expires_in) {
  auto f = std::make_unique<GcsFixture>();
  const std::string key = f->dir / "sa.pem", pub = f->dir / "sa.pub.pem";
  MakeRsaKeyPair(key, pub);
  std::string why;
  f->tokens = testing::FakeGoogleTokenServer::Start(pub, kEmail, expires_in, &why);
  if (!f->tokens) FAIL("the fake Google token server cannot start: " << why);
  f->gcs = testing::FakeGcsServer::Start(f->tokens->endpoint(), &why);
  if (!f->gcs) FAIL("the fake GCS server cannot start: " << why);
  f->key_file = f->dir / "sa.json";
  WriteServiceAccountKeyFile(f->key_file, key, kEmail, f->tokens->endpoint() + "/token");
  return f;
}

void MakeRsaKeyPair(const std::string& key_pem, const std::string& pub_pem) {
  const std::string cmd = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '" + key_pem +
                          "' 2>/dev/null && openssl pkey -in '" + key_pem + "' -pubout -out '" + pub_pem + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
}

void WriteServiceAccountKeyFile(const std::string& path, const std::string& key_pem, const std::string& email,
                                const std::string& token_uri) {
  std::string pem;
  REQUIRE(ReadFileToString(key_pem, &pem).ok());
  std::string json = "\"";  // the key as a JSON string
  for (char c : pem) {
    if (c == '\n') {
      json += "\\n";
    } else {
      if (c == '"' || c == '\\') json += '\\';
      json += c;
    }
  }
  json += '"';
  std::ofstream(path) << "{\n  \"type\": \"service_account\",\n  \"project_id\": \"example-project\",\n"
                      << "  \"private_key_id\": \"0123abcd\",\n  \"private_key\": " << json
                      << ",\n  \"client_email\": \"" << email << "\",\n  \"client_id\": \"1234567890\",\n"
                      << "  \"token_uri\": \"" << token_uri << "\"\n}\n";
}

gcs::GcsTokenConfig GcsFixture::KeyFileConfig() const {
  gcs::GcsTokenConfig c;
  c.flow = gcs::GcsTokenConfig::Flow::kServiceAccount;
  c.key_file = key_file;
  return c;
}

void GcsFixture::CreateBucket(const std::string& bucket) const {
  std::shared_ptr<HttpClient> http;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &http).ok());
  gcs::GcsTokenSource source(KeyFileConfig(), http, nullptr);
  std::string token;
  Status s = source.Token(&token);
  INFO(s.ToString());
  REQUIRE(s.ok());
  REQUIRE(gcs->CreateBucket(bucket, token));
}

void ClearGcsEnv() {
  for (const char* v : {"GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST", "REPLITE_GCS_AUTH", "AWS_ACCESS_KEY_ID",
                        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"})
    unsetenv(v);
}

}  // namespace replite::test
