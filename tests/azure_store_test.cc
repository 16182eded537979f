// [abs] The Azure Blob Storage backend beyond the conformance suite: its
// replica URLs and credential sources, blocks for large files, the registry
// opening it from the environment, and replicate + restore end to end
// through abs:// on azurite (which verifies every Shared Key signature).
// azurite that cannot start FAILS these tests.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <random>

#include "azurite_server.h"
#include "fault_proxy.h"
#include "http/http_client.h"
#include "replite/replite.h"
#include "store/azure/azure_credentials.h"
#include "store/azure/azure_store.h"
#include "store/replica_url.h"
#include "store/s3/sigv4.h"
#include "store/store_registry.h"
#include "test_util.h"

using namespace replite;
using replite::testing::AzuriteServer;

namespace {


// Only the variables named here are set for the duration of a test.
void ClearAzureEnv() {
  for (const char* v : {"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN",
                        "AZURE_STORAGE_ACCOUNT"})
    unsetenv(v);
}


std::string Container(AzuriteServer* a, const std::string& name) {
  std::shared_ptr<HttpClient> http;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &http).ok());
  const std::string url = std::string("abs://") + AzuriteServer::kAccount + "@" + name + "?endpoint=" + a->endpoint();
  REQUIRE(CreateAzureContainer(test::ParsedUrl(url), a->Credentials(), http, StoreConfig()).ok());
  return url;
}

// A Shared Key store whose PutFile goes in 5 MiB blocks above 5 MiB; *http
// receives its HTTP client (to count requests).
std::shared_ptr<ObjectStore> OpenWith5MBlocks(AzuriteServer* a, const std::string& url,
                                              std::shared_ptr<HttpClient>* http) {
  REQUIRE(HttpClient::Open(HttpClientOptions(), http).ok());
  StoreConfig cfg;
  cfg.multipart_threshold = 5ull << 20;
  cfg.multipart_part_size = 5ull << 20;
  std::shared_ptr<ObjectStore> store;
  REQUIRE(OpenAzureStoreWithCredentials(test::ParsedUrl(url), a->Credentials(), *http, nullptr, cfg, &store).ok());
  return store;
}

// Writes `size` random bytes (from `seed`) to `path` and returns them.
std::string RandomFile(const std::string& path, size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string data(size, '\0');
  for (auto& ch : data) ch = static_cast<char>(rng());
  FILE* f = fopen(path.c_str(), "wb");
  REQUIRE(f);
  REQUIRE(fwrite(data.data(), 1, data.size(), f) == data.size());
  fclose(f);
  return data;
}

}  // namespace

TEST_CASE("abs: replica URLs name the account and the container", "[abs]") {
  ReplicaUrl u = test::ParsedUrl("abs://myaccount@my-container/tenants/app?endpoint=http://127.0.0.1:10000");
  CHECK(u.scheme == "abs");
  CHECK(u.account == "myaccount");
  CHECK(u.bucket == "my-container");
  CHECK(u.prefix == "tenants/app");
  CHECK(u.ToString() == "abs://myaccount@my-container/tenants/app?endpoint=http://127.0.0.1:10000");
  CHECK(test::ParsedUrl(u.ToString()).StoreIdentity() == u.StoreIdentity());
  CHECK(test::ParsedUrl("abs://other@my-container/x").StoreIdentity() !=
        test::ParsedUrl("abs://myaccount@my-container/x").StoreIdentity());
  CHECK(u.Child("db1").prefix == "tenants/app/db1");
  ReplicaUrl bare = test::ParsedUrl("abs://my-container/p");  // the account comes from the environment
  CHECK(bare.account.empty());
  CHECK(bare.bucket == "my-container");

  for (const char* bad : {"abs://myaccount@My_Container/p", "abs://myaccount@ab/p", "abs://my-account@cont/p",
                          "abs://myaccount@-cont/p", "abs://myaccount@co--nt/p", "abs://myaccount@/p",
                          "abs://myaccount@cont/p?region=us", "abs://myaccount@cont/p?endpoint=ftp://x"}) {
    ReplicaUrl out;
    Status s = ParseReplicaUrl(bad, &out);
    INFO(bad << ": " << s.ToString());
    CHECK(s.code() == Code::kInvalidArgument);
  }
  ReplicaUrl out;
  Status s = ParseReplicaUrl("abs://myaccount@cont/p?endpoint=http://user:pw-SECRET@127.0.0.1:1", &out);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find("AZURE_STORAGE_KEY") != std::string::npos);
  CHECK(s.message().find("pw-SECRET") == std::string::npos);
}

TEST_CASE("abs: credentials from a connection string, a key or a SAS token, errors name the fix", "[abs]") {
  ClearAzureEnv();
  azure::Credentials c;
  std::string source;
  Status s = azure::LoadCredentials("acct", &c, &source);
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("AZURE_STORAGE_KEY") != std::string::npos);
  CHECK(s.message().find("AZURE_STORAGE_SAS_TOKEN") != std::string::npos);
  CHECK(s.message().find("AZURE_STORAGE_CONNECTION_STRING") != std::string::npos);
  CHECK(azure::LoadCredentials("", &c, &source).message().find("abs://ACCOUNT@CONTAINER") != std::string::npos);

  const std::string key = "c2VjcmV0LWtleS1ub3QtdG8tbGVhay0wMTIzNDU2Nzg5";
  setenv("AZURE_STORAGE_KEY", key.c_str(), 1);
  REQUIRE(azure::LoadCredentials("acct", &c, &source).ok());
  CHECK(c.account == "acct");
  CHECK(c.key == key);
  CHECK(source == "AZURE_STORAGE_KEY");
  setenv("AZURE_STORAGE_KEY", "not base64 !!! secret-value", 1);
  s = azure::LoadCredentials("acct", &c, &source);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find("secret-value") == std::string::npos);
  unsetenv("AZURE_STORAGE_KEY");

  setenv("AZURE_STORAGE_SAS_TOKEN", "?sv=2019-12-12&sig=SECRETSIG", 1);
  setenv("AZURE_STORAGE_ACCOUNT", "envacct", 1);
  REQUIRE(azure::LoadCredentials("", &c, &source).ok());
  CHECK(c.account == "envacct");
  CHECK(c.sas_token == "sv=2019-12-12&sig=SECRETSIG");
  CHECK(source == "AZURE_STORAGE_SAS_TOKEN");
  ClearAzureEnv();

  setenv("AZURE_STORAGE_CONNECTION_STRING",
         ("DefaultEndpointsProtocol=https;AccountName=csacct;AccountKey=" + key + ";EndpointSuffix=core.chinacloudapi.cn")
             .c_str(),
         1);
  REQUIRE(azure::LoadCredentials("", &c, &source).ok());
  CHECK(c.account == "csacct");
  CHECK(c.key == key);
  CHECK(c.blob_endpoint == "https://csacct.blob.core.chinacloudapi.cn");
  s = azure::LoadCredentials("otheracct", &c, &source);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find(key) == std::string::npos);
  CHECK(s.message().find("'csacct'") != std::string::npos);
  setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true", 1);
  REQUIRE(azure::LoadCredentials("", &c, &source).ok());
  CHECK(c.account == "devstoreaccount1");
  CHECK(c.blob_endpoint == "http://127.0.0.1:10000/devstoreaccount1");
  setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountName=x;Nonsense", 1);
  CHECK(azure::LoadCredentials("", &c, &source).code() == Code::kInvalidArgument);
  ClearAzureEnv();
}

TEST_CASE("abs: PutFile above the threshold goes in blocks, in parallel, conditions on the block list", "[abs]") {
  AzuriteServer* a = test::AzuriteForTest();
  const std::string url = Container(a, "blocks");
  std::shared_ptr<HttpClient> http;
  auto store = OpenWith5MBlocks(a, url, &http);
  test::TempDir dir;
  const std::string path = dir / "big";
  const std::string big = RandomFile(path, (11ull << 20) + 5, 5);
  PutOptions create;
  create.if_none_match = true;
  const uint64_t before = http->Stats().requests;
  Status s = store->PutFile("big/obj", path, create);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(http->Stats().requests - before == 4);  // 3 Put Block + 1 Put Block List
  std::string got;
  REQUIRE(store->Get("big/obj", &got).ok());
  CHECK(got == big);
  REQUIRE(store->Get("big/obj", &got, (5ull << 20) - 3, 10).ok());  // across a block boundary
  CHECK(got == big.substr((5ull << 20) - 3, 10));
  s = store->PutFile("big/obj", path, create);  // exists now
  CHECK(s.code() == Code::kFailedPrecondition);
  // A size parameter in the URL overrides the configured one.
  std::shared_ptr<ObjectStore> tuned;
  REQUIRE(OpenAzureStoreWithCredentials(test::ParsedUrl(url + "&multipart-threshold=6M&multipart-part-size=6M"),
                                        a->Credentials(), http, nullptr, StoreConfig(), &tuned)
              .ok());
  const uint64_t before2 = http->Stats().requests;
  REQUIRE(tuned->PutFile("big/obj2", path).ok());
  CHECK(http->Stats().requests - before2 == 3);  // 2 blocks + the list
}

// Azure's own SDK lists and downloads what we wrote (names, sizes, block
// blob type, SHA-256 of the content) and writes a blob for us to read, so a
// bug our writer and reader share cannot hide behind azurite accepting it.
TEST_CASE("abs: Azure's JavaScript SDK reads back what we wrote (independent client)", "[abs]") {
  AzuriteServer* a = test::AzuriteForTest();
  const std::string url = Container(a, "indep");
  std::shared_ptr<HttpClient> http;
  auto store = OpenWith5MBlocks(a, url, &http);
  std::map<std::string, std::string> wrote = {
      {"in/plain", "plain"}, {"in/sp ace+plus=&q", "odd"}, {"in/ütf8/ключ", "utf8"}, {"in/empty", ""}};
  for (const auto& [k, v] : wrote) REQUIRE(store->Put(k, v).ok());
  test::TempDir dir;
  const std::string big = RandomFile(dir / "big", (6ull << 20) + 3, 9);
  REQUIRE(store->PutFile("in/blocks", dir / "big").ok());  // two blocks
  wrote["in/blocks"] = big;

  const std::string script = dir / "read.js";
  std::ofstream(script) << R"JS(
const { BlobServiceClient } = require(process.argv[2] + "/node_modules/@azure/storage-blob");
const crypto = require("crypto");
(async () => {
  const c = BlobServiceClient.fromConnectionString(process.argv[3]).getContainerClient("indep");
  for await (const b of c.listBlobsFlat({ prefix: "in/" })) {
    const buf = await c.getBlobClient(b.name).downloadToBuffer();
    console.log([b.name, b.properties.contentLength, b.properties.blobType,
                 crypto.createHash("sha256").update(buf).digest("hex")].join("\t"));
  }
  await c.getBlockBlobClient("in-sdk/hello").upload("written by the SDK", 18);
})().catch((e) => { console.error("SDK: " + e.message); process.exit(1); });
)JS";
  std::string out;
  const int rc = test::Shell("node '" + script + "' '" + AzuriteServer::InstallDir() + "' '" +
                                 a->ConnectionString() + "'",
                             &out);
  INFO(out);
  REQUIRE(rc == 0);
  std::string expect;
  for (const auto& [k, v] : wrote)  // the SDK lists in key order, as std::map iterates
    expect += k + "\t" + std::to_string(v.size()) + "\tBlockBlob\t" + s3::Sha256Hex(v) + "\n";
  CHECK(out == expect);
  std::string got;
  REQUIRE(store->Get("in-sdk/hello", &got).ok());
  CHECK(got == "written by the SDK");
}

// The same retry rules as s3 (HttpRetry): 503s, 500s and connection resets
// from a fault-injecting proxy in front of azurite are retried and lose
// nothing; an outage ends in kUnavailable after the configured attempts.
TEST_CASE("abs: 503s, 500s and resets are retried, an outage is kUnavailable after bounded attempts", "[abs][fault]") {
  AzuriteServer* a = test::AzuriteForTest();
  Container(a, "faults");
  std::string why;
  const int azurite_port = std::atoi(a->endpoint().substr(a->endpoint().rfind(':') + 1).c_str());
  auto proxy = test::FaultProxy::Start(azurite_port, &why);
  if (!proxy) FAIL("fault proxy: " << why);
  std::shared_ptr<HttpClient> http;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &http).ok());
  StoreConfig cfg;
  cfg.retry_base_delay_ms = 1;
  cfg.max_retries = 3;
  std::shared_ptr<ObjectStore> store;
  const std::string url = "abs://devstoreaccount1@faults/p?endpoint=http://127.0.0.1:" + std::to_string(proxy->port());
  REQUIRE(OpenAzureStoreWithCredentials(test::ParsedUrl(url), a->Credentials(), http, nullptr, cfg, &store).ok());

  proxy->Set("mode=slowdown&n=2&method=PUT");
  Status s = store->Put("p/a", "after two 503s");
  INFO(s.ToString());
  REQUIRE(s.ok());
  proxy->Set("mode=error500&n=2&method=GET");
  std::string got;
  REQUIRE(store->Get("p/a", &got).ok());
  CHECK(got == "after two 503s");
  proxy->Set("mode=reset&n=1&method=PUT");
  const std::string body(200000, 'r');
  REQUIRE(store->Put("p/b", body).ok());  // reset mid-body, sent again
  REQUIRE(store->Get("p/b", &got).ok());
  CHECK(got == body);
  const std::string stats = proxy->Control("/stats");
  INFO(stats);
  CHECK(stats.find("\"slowdown\": 2") != std::string::npos);
  CHECK(stats.find("\"error500\": 2") != std::string::npos);
  CHECK(stats.find("\"reset\": 1") != std::string::npos);

  proxy->Set("mode=outage&t=0");
  const uint64_t before = http->Stats().requests;
  s = store->Put("p/c", "x");
  CHECK(s.code() == Code::kUnavailable);
  CHECK(s.message().find("after 4 attempts") != std::string::npos);
  CHECK(s.message().find("PutBlob abs://devstoreaccount1@faults/p/c") != std::string::npos);
  CHECK(http->Stats().requests - before == 4);
  proxy->Set("mode=pass");
  REQUIRE(store->Put("p/c", "x").ok());
}

TEST_CASE("abs: the registry opens abs URLs from the environment, one store per identity", "[abs]") {
  AzuriteServer* a = test::AzuriteForTest();
  Container(a, "registry");
  ClearAzureEnv();
  setenv("AZURE_STORAGE_CONNECTION_STRING", a->ConnectionString().c_str(), 1);
  StoreRegistry reg(Env::Default(), StoreConfig());
  std::shared_ptr<ObjectStore> s1, s2;
  // No endpoint= in the URL: the connection string's BlobEndpoint is used.
  REQUIRE(reg.Open(test::ParsedUrl("abs://devstoreaccount1@registry/one"), &s1).ok());
  REQUIRE(reg.Open(test::ParsedUrl("abs://devstoreaccount1@registry/two"), &s2).ok());
  CHECK(s1 == s2);
  REQUIRE(s1->Put("one/x", "hello").ok());
  std::string got;
  REQUIRE(s2->Get("one/x", &got).ok());
  CHECK(got == "hello");
  CHECK(s1->Describe().find(a->Credentials().key) == std::string::npos);
  CHECK(s1->Describe().find("abs://devstoreaccount1@registry") == 0);

  ClearAzureEnv();
  StoreRegistry none(Env::Default(), StoreConfig());
  Status s = none.Open(test::ParsedUrl("abs://devstoreaccount1@registry/one"), &s1);
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("AZURE_STORAGE_KEY") != std::string::npos);
}

TEST_CASE("abs: replicate a varied workload and restore it through abs on azurite", "[abs][e2e]") {
  AzuriteServer* a = test::AzuriteForTest();
  Container(a, "e2e");
  ClearAzureEnv();
  // The account key from the environment, the endpoint in the URL.
  setenv("AZURE_STORAGE_KEY", a->Credentials().key.c_str(), 1);
  test::TempDir dir;
  test::ReplicateVariedAndRestore("abs://devstoreaccount1@e2e/tenants/app?endpoint=" + a->endpoint(), dir, 120, 11, 29);
  ClearAzureEnv();
}
