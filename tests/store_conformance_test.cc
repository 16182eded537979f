// [conformance] The store conformance suite (store_conformance.h) against
// every backend: file://, s3:// on moto, abs:// on azurite with a Shared Key
// and with a SAS token, sftp:// on OpenSSH's sshd, gs:// (native, OAuth
// tokens) on a fake GCS server with a fake Google token endpoint
// (gcs_fixture.h). The servers start on 127.0.0.1; a server that
// cannot start FAILS the test (moto: unless REPLITE_ALLOW_S3_SKIP=1).
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "azure_sas.h"
#include "azurite_server.h"
#include "gcs_fixture.h"
#include "http/http_client.h"
#include "moto_server.h"
#include "sshd_server.h"
#include "store/azure/azure_store.h"
#include "store/file_store.h"
#include "store/gcs/gcs_store.h"
#include "store/replica_url.h"
#include "store/s3/s3_store.h"
#include "store/sftp/sftp_store.h"
#include "store_conformance.h"
#include "test_util.h"
#include "util/file_util.h"

using namespace replite;
using replite::testing::AzuriteServer;
using replite::testing::ConformanceTarget;
using replite::testing::kConformancePageSize;

namespace {

std::shared_ptr<HttpClient> NewClient() {
  std::shared_ptr<HttpClient> c;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &c).ok());
  return c;
}

StoreConfig SmallPages() {
  StoreConfig cfg;
  cfg.list_max_keys = kConformancePageSize;
  cfg.retry_base_delay_ms = 1;
  return cfg;
}



}  // namespace

TEST_CASE("store conformance: file", "[conformance][file]") {
  test::TempDir dir;
  ConformanceTarget t;
  t.store = NewFileStore("/");
  t.prefix = (dir / "replica").substr(1);  // keys are relative to "/"
  testing::RunStoreConformance(t);
}

// The file store links a consumed file into place instead of copying it
// (a 1 GB segment is written once, to the spool), and copies otherwise.
TEST_CASE("file store: a consumed spool file becomes the object without a copy", "[conformance][file]") {
  test::TempDir dir;
  auto store = NewFileStore("/");
  const std::string src = dir / "spool-file", prefix = (dir / "replica").substr(1);
  REQUIRE(WriteFileAtomic(src, std::string(5000, 'x')).ok());
  struct stat a, b, c;
  REQUIRE(stat(src.c_str(), &a) == 0);
  REQUIRE(store->PutFile(prefix + "/copied", src).ok());
  PutOptions consumed;
  consumed.consumes_source = true;
  REQUIRE(store->PutFile(prefix + "/linked", src, consumed).ok());
  REQUIRE(stat(("/" + prefix + "/copied").c_str(), &b) == 0);
  REQUIRE(stat(("/" + prefix + "/linked").c_str(), &c) == 0);
  CHECK(b.st_ino != a.st_ino);
  CHECK(c.st_ino == a.st_ino);
  CHECK((c.st_mode & 0777) == 0600);
  REQUIRE(unlink(src.c_str()) == 0);
  std::string got;
  REQUIRE(store->Get(prefix + "/linked", &got).ok());
  CHECK(got == std::string(5000, 'x'));
}

TEST_CASE("store conformance: s3 on moto", "[conformance][s3]") {
  const std::string secret = "replite-conformance-secret-0123456789";
  testing::MotoServer* m = test::MotoForTest(secret);
  if (!m) return;
  REQUIRE(m->SetAuthAfter("inf").ok());
  REQUIRE(m->CreateBucket("replite-conf").ok());
  auto http = NewClient();
  const std::string base = "?endpoint=" + m->endpoint() + "&region=us-east-1";
  ConformanceTarget t;
  REQUIRE(OpenS3StoreWithCredentials(test::ParsedUrl("s3://replite-conf" + base), {"AKIDREPLITETEST", secret, ""}, http,
                                     nullptr, SmallPages(), &t.store)
              .ok());
  REQUIRE(OpenS3StoreWithCredentials(test::ParsedUrl("s3://replite-conf" + base), {"AKIDUNKNOWN0000", secret, ""}, http,
                                     nullptr, SmallPages(), &t.bad_auth)
              .ok());
  REQUIRE(OpenS3StoreWithCredentials(test::ParsedUrl("s3://no-such-bucket" + base), {"AKIDREPLITETEST", secret, ""}, http,
                                     nullptr, SmallPages(), &t.missing)
              .ok());
  t.prefix = "conf";
  t.requests = [http] { return http->Stats().requests; };
  t.auth_fix = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"};
  t.enforce_auth = [m](bool on) { REQUIRE(m->SetAuthAfter(on ? "0" : "inf").ok()); };
  t.missing_fix = "create it or fix the URL";
  t.secrets = {secret};
  testing::RunStoreConformance(t);
}

TEST_CASE("store conformance: abs on azurite with a Shared Key", "[conformance][abs]") {
  AzuriteServer* a = test::AzuriteForTest();
  auto http = NewClient();
  const std::string base = std::string("abs://") + AzuriteServer::kAccount + "@";
  const std::string ep = "?endpoint=" + a->endpoint();
  const azure::Credentials creds = a->Credentials();
  REQUIRE(CreateAzureContainer(test::ParsedUrl(base + "conf-key" + ep), creds, http, StoreConfig()).ok());
  azure::Credentials wrong = creds;
  wrong.key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktMDEyMzQ1Njc4OQ==";
  ConformanceTarget t;
  REQUIRE(OpenAzureStoreWithCredentials(test::ParsedUrl(base + "conf-key" + ep), creds, http, nullptr, SmallPages(), &t.store)
              .ok());
  REQUIRE(OpenAzureStoreWithCredentials(test::ParsedUrl(base + "conf-key" + ep), wrong, http, nullptr, SmallPages(), &t.bad_auth)
              .ok());
  REQUIRE(OpenAzureStoreWithCredentials(test::ParsedUrl(base + "no-such-container" + ep), creds, http, nullptr, SmallPages(),
                                        &t.missing)
              .ok());
  t.prefix = "conf";
  t.requests = [http] { return http->Stats().requests; };
  t.auth_fix = {"AZURE_STORAGE_KEY", "AZURE_STORAGE_CONNECTION_STRING"};
  t.missing_fix = "container 'no-such-container' does not exist in storage account 'devstoreaccount1': create it";
  t.secrets = {creds.key, wrong.key};
  testing::RunStoreConformance(t);
}

TEST_CASE("store conformance: abs on azurite with a SAS token", "[conformance][abs]") {
  AzuriteServer* a = test::AzuriteForTest();
  auto http = NewClient();
  const std::string url = std::string("abs://") + AzuriteServer::kAccount + "@conf-sas?endpoint=" + a->endpoint();
  const azure::Credentials key = a->Credentials();
  REQUIRE(CreateAzureContainer(test::ParsedUrl(url), key, http, StoreConfig()).ok());
  azure::Credentials sas, bad;
  sas.account = bad.account = AzuriteServer::kAccount;
  sas.sas_token = testing::AccountSas(key, "2030-01-01T00:00:00Z");
  bad.sas_token = testing::AccountSas(azure::Credentials{key.account, "c29tZS1vdGhlci1rZXk=", "", "", {}}, "2030-01-01T00:00:00Z");
  ConformanceTarget t;
  REQUIRE(OpenAzureStoreWithCredentials(test::ParsedUrl(url), sas, http, nullptr, SmallPages(), &t.store).ok());
  REQUIRE(OpenAzureStoreWithCredentials(test::ParsedUrl(url), bad, http, nullptr, SmallPages(), &t.bad_auth).ok());
  t.prefix = "conf";
  t.requests = [http] { return http->Stats().requests; };
  t.auth_fix = {"AZURE_STORAGE_SAS_TOKEN"};
  t.secrets = {key.key, sas.sas_token, bad.sas_token, sas.sas_token.substr(sas.sas_token.find("sig=") + 4)};
  testing::RunStoreConformance(t);
}

TEST_CASE("store conformance: sftp on OpenSSH sshd", "[conformance][sftp]") {
  testing::SshdServer* d = test::SshdForTest();
  const std::string passphrase = "replite-sftp-passphrase-0123456789";
  ConformanceTarget t;
  REQUIRE(OpenSftpStoreWithPassphrase(test::ParsedUrl(d->Url("conf")), "", SmallPages(), &t.store).ok());
  // A key the server does not accept (with a passphrase that must not leak).
  const std::string bad = "sftp://" + d->user() + "@127.0.0.1:" + std::to_string(d->port()) + d->data_dir() +
                          "/conf?key=" + d->other_key_path() + "&known-hosts=" + d->known_hosts();
  REQUIRE(OpenSftpStoreWithPassphrase(test::ParsedUrl(bad), passphrase, SmallPages(), &t.bad_auth).ok());
  t.prefix = d->data_dir().substr(1) + "/conf";  // keys are relative to "/"
  t.auth_fix = {"authorized_keys", "?key=PATH"};
  t.secrets = {passphrase};
  testing::RunStoreConformance(t);
}

TEST_CASE("store conformance: gs on a fake GCS with service account tokens", "[conformance][gcs]") {
  auto f = test::GcsFixture::Start();
  f->CreateBucket("conf-gcs");
  // A second token endpoint the fake GCS does not trust: its tokens are
  // refused with 401, as Google refuses a revoked or foreign token.
  std::string why;
  auto foreign = testing::FakeGoogleTokenServer::Start(f->dir / "sa.pub.pem", "x@example.com", 3600, &why,
                                                       "ya29.foreign-");
  if (!foreign) FAIL("the second fake Google token server cannot start: " << why);
  gcs::GcsTokenConfig foreign_cfg;
  foreign_cfg.flow = gcs::GcsTokenConfig::Flow::kMetadata;
  foreign_cfg.metadata_host = foreign->host_port();
  auto http = NewClient();
  auto tokens = std::make_shared<gcs::GcsTokenSource>(f->KeyFileConfig(), http, nullptr);
  const std::string ep = "?endpoint=" + f->gcs->endpoint();
  ConformanceTarget t;
  REQUIRE(OpenGcsStore(test::ParsedUrl("gs://conf-gcs" + ep), tokens, http, nullptr, SmallPages(), &t.store).ok());
  REQUIRE(OpenGcsStore(test::ParsedUrl("gs://conf-gcs" + ep), std::make_shared<gcs::GcsTokenSource>(foreign_cfg, http, nullptr),
                       http, nullptr, SmallPages(), &t.bad_auth)
              .ok());
  REQUIRE(OpenGcsStore(test::ParsedUrl("gs://no-such-bucket" + ep), tokens, http, nullptr, SmallPages(), &t.missing).ok());
  t.prefix = "conf";
  t.requests = [http] { return http->Stats().requests; };
  t.auth_fix = {"GOOGLE_APPLICATION_CREDENTIALS"};
  t.missing_fix = "bucket 'no-such-bucket' does not exist: create it or fix the URL";
  std::string token;
  REQUIRE(tokens->Token(&token).ok());
  t.secrets = {token, "ya29.foreign-1", "PRIVATE KEY"};
  testing::RunStoreConformance(t);
  CHECK(tokens->fetches() == 1);  // one token for the whole suite
}
