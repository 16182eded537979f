// [abs][entra] Microsoft Entra tokens for abs://: workload identity and
// managed identity against a local fake token endpoint
// (fake_token_server.h), the tokens then used as Bearer tokens against
// azurite over https with --oauth basic, and refreshed before they expire.
// Nothing here talks to anything but 127.0.0.1.
#include <catch2/catch.hpp>

#include <fstream>

#include "azurite_server.h"
#include "fake_token_server.h"
#include "http/http_client.h"
#include "store/azure/azure_store.h"
#include "store/replica_url.h"
#include "test_util.h"

using namespace replite;
using replite::testing::AzuriteServer;
using replite::testing::FakeTokenServer;

namespace {

const char* kClient = "client-0123";
const char* kTenant = "tenant-4567";
const char* kAssertion = "federated-assertion-SECRET-89ab";

void ClearAzureEnv() {
  for (const char* v : {"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN",
                        "AZURE_STORAGE_ACCOUNT", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID",
                        "AZURE_AUTHORITY_HOST", "AZURE_STORAGE_AUTH", "AZURE_IMDS_ENDPOINT"})
    unsetenv(v);
}

// azurite over https accepting Bearer tokens, a container in it, and the
// fake token endpoint (tokens announced as valid for 600 s).
struct Fixture {
  test::TempDir dir;
  std::unique_ptr<AzuriteServer> azurite;
  std::unique_ptr<FakeTokenServer> tokens;
  std::string url;
  std::string assertion_file = dir / "federated-token";

  Fixture() {
    ClearAzureEnv();
    std::string why;
    azurite = AzuriteServer::Start(&why, /*tls_oauth=*/true);
    if (!azurite) FAIL("azurite (https, --oauth basic) cannot start: " << why);
    url = std::string("abs://") + AzuriteServer::kAccount + "@entra/db?endpoint=" + azurite->endpoint() +
          "&ca-file=" + azurite->cert_path();
    std::shared_ptr<HttpClient> http;
    REQUIRE(HttpClient::Open(HttpClientOptions(), &http).ok());
    Status s = CreateAzureContainer(test::ParsedUrl(url), azurite->Credentials(), http, StoreConfig());
    INFO(s.ToString());
    REQUIRE(s.ok());
    std::ofstream(assertion_file) << kAssertion << "\n";
    tokens = FakeTokenServer::Start(kClient, kTenant, assertion_file, 600, &why);
    if (!tokens) FAIL("the fake token server cannot start: " << why);
  }
  ~Fixture() { ClearAzureEnv(); }

  std::shared_ptr<ObjectStore> Open(Env* env) {
    std::shared_ptr<HttpClient> http;
    REQUIRE(HttpClient::Open(HttpClientOptions(), &http).ok());
    StoreConfig cfg;
    cfg.retry_base_delay_ms = 1;
    std::shared_ptr<ObjectStore> store;
    Status s = OpenAzureStore(test::ParsedUrl(url), http, env, cfg, &store);
    INFO(s.ToString());
    REQUIRE(s.ok());
    return store;
  }
};

// Every operation works with the Bearer token.
void Exercise(ObjectStore* store, const std::string& key) {
  std::string got;
  Status s = store->Put(key, "payload");
  INFO(s.ToString());
  REQUIRE(s.ok());
  REQUIRE(store->Get(key, &got, 1, 3).ok());
  CHECK(got == "ayl");
  std::vector<ObjectInfo> list;
  REQUIRE(store->List(key, &list).ok());
  CHECK(list.size() == 1);
  REQUIRE(store->Delete({key}).ok());
}

}  // namespace

TEST_CASE("abs: Entra workload identity tokens are used and refreshed before they expire", "[abs][entra]") {
  Fixture f;
  setenv("AZURE_FEDERATED_TOKEN_FILE", f.assertion_file.c_str(), 1);
  setenv("AZURE_CLIENT_ID", kClient, 1);
  setenv("AZURE_TENANT_ID", kTenant, 1);
  setenv("AZURE_AUTHORITY_HOST", (f.tokens->endpoint() + "/").c_str(), 1);
  test::ManualClockEnv env(int64_t(1767225600) * 1000000);
  auto store = f.Open(&env);
  CHECK(store->Describe().find("Entra token") != std::string::npos);
  Exercise(store.get(), "db/a");
  CHECK(f.tokens->TokensIssued() == 1);  // cached across requests

  env.Advance(int64_t(290) * 1000000);  // 310 s left: still good
  Exercise(store.get(), "db/b");
  CHECK(f.tokens->TokensIssued() == 1);
  env.Advance(int64_t(20) * 1000000);  // 290 s left, under the 5-minute margin: refreshed first
  Exercise(store.get(), "db/c");
  CHECK(f.tokens->TokensIssued() == 2);

  // A client the token endpoint does not know: a clear error naming the
  // variables, without the assertion or any token.
  setenv("AZURE_CLIENT_ID", "someone-else", 1);
  auto wrong = f.Open(&env);
  Status s = wrong->Put("db/x", "x");
  INFO(s.ToString());
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("AZURE_CLIENT_ID") != std::string::npos);
  CHECK(s.message().find("invalid_client") != std::string::npos);
  CHECK(s.message().find(kAssertion) == std::string::npos);
  CHECK(s.message().find("eyJ") == std::string::npos);  // no JWT

  setenv("AZURE_CLIENT_ID", kClient, 1);
  unsetenv("AZURE_TENANT_ID");
  std::shared_ptr<HttpClient> http;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &http).ok());
  std::shared_ptr<ObjectStore> none;
  s = OpenAzureStore(test::ParsedUrl(f.url), http, nullptr, StoreConfig(), &none);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find("AZURE_TENANT_ID") != std::string::npos);
}

TEST_CASE("abs: Entra managed identity through a local metadata endpoint", "[abs][entra]") {
  Fixture f;
  setenv("AZURE_STORAGE_AUTH", "managed-identity", 1);
  setenv("AZURE_IMDS_ENDPOINT", f.tokens->endpoint().c_str(), 1);
  setenv("AZURE_CLIENT_ID", kClient, 1);  // a user-assigned identity
  auto store = f.Open(nullptr);
  Exercise(store.get(), "db/mi");
  CHECK(f.tokens->TokensIssued() == 1);

  setenv("AZURE_CLIENT_ID", "not-assigned", 1);
  auto wrong = f.Open(nullptr);
  Status s = wrong->Put("db/x", "x");
  INFO(s.ToString());
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("managed identity") != std::string::npos);

  setenv("AZURE_STORAGE_AUTH", "magic", 1);
  std::shared_ptr<HttpClient> http;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &http).ok());
  std::shared_ptr<ObjectStore> none;
  s = OpenAzureStore(test::ParsedUrl(f.url), http, nullptr, StoreConfig(), &none);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find("managed-identity") != std::string::npos);
}
