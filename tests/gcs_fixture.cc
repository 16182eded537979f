#include "gcs_fixture.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "http/http_client.h"

namespace replite::test {
namespace {

const char* kEmail = "replite-store@example-project.iam.gserviceaccount.com";

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

std::unique_ptr<GcsFixture> GcsFixture::Start(int expires_in) {
  auto f = std::make_unique<GcsFixture>();
  const std::string key = f->dir / "sa.pem", pub = f->dir / "sa.pub.pem";
  const std::string cmd = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '" + key +
                          "' 2>/dev/null && openssl pkey -in '" + key + "' -pubout -out '" + pub + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::string why;
  f->tokens = testing::FakeGoogleTokenServer::Start(pub, kEmail, expires_in, &why);
  if (!f->tokens) FAIL("the fake Google token server cannot start: " << why);
  f->gcs = testing::FakeGcsServer::Start(f->tokens->endpoint(), &why);
  if (!f->gcs) FAIL("the fake GCS server cannot start: " << why);
  f->key_file = f->dir / "sa.json";
  std::ofstream(f->key_file) << "{\n  \"type\": \"service_account\",\n  \"project_id\": \"example-project\",\n"
                             << "  \"private_key_id\": \"0123abcd\",\n  \"private_key\": " << JsonString(Slurp(key))
                             << ",\n  \"client_email\": \"" << kEmail << "\",\n  \"client_id\": \"1234567890\",\n"
                             << "  \"token_uri\": \"" << f->tokens->endpoint() << "/token\"\n}\n";
  return f;
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
