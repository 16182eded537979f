// [gcs] OAuth 2.0 access tokens for Google Cloud Storage: a service
// account key file's RS256 JWT exchanged at a local fake token endpoint
// (fake_google_token_server.h, which verifies the signature with python3's
// cryptography), the GCE metadata server flow against the same fake, reuse
// of a token until near its expiry, and errors that name the fix and hold
// no key, JWT or token. Nothing here talks to anything but 127.0.0.1.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

#include "fake_google_token_server.h"
#include "gcs_fixture.h"
#include "http/http_client.h"
#include "store/gcs/gcs_token.h"
#include "store/gcs/service_account_jwt.h"
#include "test_util.h"

using namespace replite;
using replite::testing::FakeGoogleTokenServer;

namespace {

const char* kEmail = "replite-test@example-project.iam.gserviceaccount.com";

void ClearGoogleEnv() {
  for (const char* v : {"GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST", "REPLITE_GCS_AUTH"}) unsetenv(v);
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// An RSA key pair made by the openssl command: NAME.pem and NAME.pub.pem.
struct KeyPair {
  std::string key_pem, pub_pem;
  KeyPair(const test::TempDir& dir, const std::string& name)
      : key_pem(dir / (name + ".pem")), pub_pem(dir / (name + ".pub.pem")) {
    test::MakeRsaKeyPair(key_pem, pub_pem);
  }
};

// A service account key file (as the console downloads it) holding `key`,
// with token_uri `token_uri`; returns its path.
std::string WriteKeyFile(const std::string& path, const KeyPair& key, const std::string& token_uri) {
  test::WriteServiceAccountKeyFile(path, key.key_pem, kEmail, token_uri);
  return path;
}

std::shared_ptr<HttpClient> NewClient() {
  std::shared_ptr<HttpClient> c;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &c).ok());
  return c;
}

}  // namespace

TEST_CASE("gcs: a JWT is three base64url parts with the RS256 header and the claims asked for", "[gcs]") {
  test::TempDir dir;
  KeyPair sa(dir, "sa");
  gcs::JwtClaims c;
  c.issuer = kEmail;
  c.scope = gcs::GcsTokenSource::kScope;
  c.audience = "http://127.0.0.1:1/token";
  c.issued_at_s = 1767225600;
  std::string jwt;
  REQUIRE(gcs::SignServiceAccountJwt(c, Slurp(sa.key_pem), &jwt).ok());
  CHECK(jwt.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
        std::string::npos);
  CHECK(jwt.substr(0, jwt.find('.')) == gcs::Base64Url(R"({"alg":"RS256","typ":"JWT"})"));
  const size_t p1 = jwt.find('.'), p2 = jwt.find('.', p1 + 1);
  REQUIRE(p2 != std::string::npos);
  CHECK(jwt.substr(p1 + 1, p2 - p1 - 1) ==
        gcs::Base64Url(std::string("{\"iss\":\"") + kEmail + "\",\"scope\":\"" + gcs::GcsTokenSource::kScope +
                       "\",\"aud\":\"http://127.0.0.1:1/token\",\"iat\":1767225600,\"exp\":1767229200}"));
  CHECK(jwt.size() - p2 - 1 == 342);  // a 2048-bit signature: 256 bytes, 342 base64url characters
  CHECK(gcs::Base64Url("\xfb\xff") == "-_8");

  Status s = gcs::SignServiceAccountJwt(c, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", &jwt);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find("not a key") == std::string::npos);
}

TEST_CASE("gcs: a service account key file's token is accepted, reused, and refreshed before it expires",
          "[gcs]") {
  ClearGoogleEnv();
  test::TempDir dir;
  KeyPair good(dir, "good"), other(dir, "other");
  std::string why;
  auto fake = FakeGoogleTokenServer::Start(good.pub_pem, kEmail, 600, &why);
  if (!fake) FAIL("the fake Google token server cannot start: " << why);
  const std::string key_file = WriteKeyFile(dir / "sa.json", good, fake->endpoint() + "/token");
  setenv("GOOGLE_APPLICATION_CREDENTIALS", key_file.c_str(), 1);
  gcs::GcsTokenConfig cfg = gcs::GcsTokenConfigFromEnv();
  CHECK(cfg.flow == gcs::GcsTokenConfig::Flow::kServiceAccount);
  CHECK(cfg.Describe().find("GOOGLE_APPLICATION_CREDENTIALS") != std::string::npos);
  test::ManualClockEnv env(int64_t(std::time(nullptr)) * 1000000);
  gcs::GcsTokenSource source(cfg, NewClient(), &env);
  std::string t1, t2;
  Status s = source.Token(&t1);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(t1 == "ya29.fake-1");
  REQUIRE(source.Token(&t2).ok());
  CHECK(t2 == t1);  // reused
  CHECK(fake->TokensIssued() == 1);
  env.Advance(int64_t(290) * 1000000);  // 310 s left: still good
  REQUIRE(source.Token(&t2).ok());
  CHECK(fake->TokensIssued() == 1);
  env.Advance(int64_t(20) * 1000000);  // 290 s left, under the 5-minute margin: a new one
  REQUIRE(source.Token(&t2).ok());
  CHECK(t2 == "ya29.fake-2");
  CHECK(source.fetches() == 2);

  // A key the endpoint does not know (signature refused): the endpoint's
  // reason and the variable, no key, JWT or token.
  const std::string other_file = WriteKeyFile(dir / "other.json", other, fake->endpoint() + "/token");
  setenv("GOOGLE_APPLICATION_CREDENTIALS", other_file.c_str(), 1);
  gcs::GcsTokenSource wrong(gcs::GcsTokenConfigFromEnv(), NewClient(), &env);
  s = wrong.Token(&t2);
  INFO(s.ToString());
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("Invalid JWT Signature") != std::string::npos);
  CHECK(s.message().find("GOOGLE_APPLICATION_CREDENTIALS") != std::string::npos);
  CHECK(s.message().find("PRIVATE KEY") == std::string::npos);
  CHECK(s.message().find("eyJ") == std::string::npos);  // no JWT
  CHECK(s.message().find("ya29") == std::string::npos);

  // No such file, and a file that is not a service account key.
  setenv("GOOGLE_APPLICATION_CREDENTIALS", (dir / "missing.json").c_str(), 1);
  s = gcs::GcsTokenSource(gcs::GcsTokenConfigFromEnv(), NewClient(), &env).Token(&t2);
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find(dir / "missing.json") != std::string::npos);
  std::ofstream(dir / "user.json") << R"({"type": "authorized_user", "client_id": "x", "refresh_token": "r"})";
  setenv("GOOGLE_APPLICATION_CREDENTIALS", (dir / "user.json").c_str(), 1);
  s = gcs::GcsTokenSource(gcs::GcsTokenConfigFromEnv(), NewClient(), &env).Token(&t2);
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("service_account") != std::string::npos);
  ClearGoogleEnv();
}

TEST_CASE("gcs: tokens from the GCE metadata server, asked only when told and with Metadata-Flavor", "[gcs]") {
  ClearGoogleEnv();
  test::TempDir dir;
  KeyPair sa(dir, "sa");
  std::string why;
  auto fake = FakeGoogleTokenServer::Start(sa.pub_pem, kEmail, 3600, &why);
  if (!fake) FAIL("the fake Google token server cannot start: " << why);
  CHECK(gcs::GcsTokenConfigFromEnv().flow == gcs::GcsTokenConfig::Flow::kNone);  // never probed unasked
  std::string t;
  Status s = gcs::GcsTokenSource(gcs::GcsTokenConfigFromEnv(), NewClient(), nullptr).Token(&t);
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("GOOGLE_APPLICATION_CREDENTIALS") != std::string::npos);

  setenv("GCE_METADATA_HOST", fake->host_port().c_str(), 1);
  gcs::GcsTokenConfig cfg = gcs::GcsTokenConfigFromEnv();
  CHECK(cfg.flow == gcs::GcsTokenConfig::Flow::kMetadata);
  test::ManualClockEnv env(int64_t(std::time(nullptr)) * 1000000);
  gcs::GcsTokenSource source(cfg, NewClient(), &env);
  s = source.Token(&t);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(t == "ya29.fake-1");
  env.Advance(int64_t(3000) * 1000000);  // 600 s left: still good
  REQUIRE(source.Token(&t).ok());
  CHECK(fake->TokensIssued() == 1);
  env.Advance(int64_t(301) * 1000000);  // under the 5-minute margin
  REQUIRE(source.Token(&t).ok());
  CHECK(t == "ya29.fake-2");
  ClearGoogleEnv();
}
