// [gcs] The native gs:// store (OAuth 2.0 bearer tokens, XML API) against
// the fake GCS server and fake Google token endpoint of gcs_fixture.h:
// how the registry chooses between Google credentials and HMAC keys and
// what it says when there are neither, one token per credential for every
// bucket refreshed before it expires, generation numbers as version tags,
// multipart PutFile with the generation condition on completion, and a
// replicate + restore round trip with SQLite as the oracle. The store
// conformance suite runs against the same fake (store_conformance_test.cc).
#include <catch2/catch.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "fault_proxy.h"
#include "gcs_fixture.h"
#include "http/http_client.h"
#include "replite/replite.h"
#include "store/gcs/gcs_auth.h"
#include "store/gcs/gcs_store.h"
#include "store/replica_url.h"
#include "store/store_registry.h"
#include "test_util.h"

using namespace replite;

namespace {

std::shared_ptr<HttpClient> NewClient() {
  std::shared_ptr<HttpClient> c;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &c).ok());
  return c;
}

bool AllDigits(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

}  // namespace

TEST_CASE("gcs: HMAC keys keep the S3 API and Google credentials choose the native store", "[gcs]") {
  test::ClearGcsEnv();
  const ReplicaUrl url = test::ParsedUrl("gs://bkt/app");
  gcs::GcsAuthKind kind;
  gcs::GcsTokenConfig cfg;
  // Nothing configured: the error names both ways in.
  Status s = gcs::ChooseGcsAuth(url, &kind, &cfg);
  CHECK(s.code() == Code::kUnauthenticated);
  for (const char* fix : {"GOOGLE_APPLICATION_CREDENTIALS", "REPLITE_GCS_AUTH=metadata", "HMAC", "AWS_ACCESS_KEY_ID"})
    CHECK(s.message().find(fix) != std::string::npos);
  StoreRegistry none(Env::Default(), StoreConfig());
  std::shared_ptr<ObjectStore> store;
  s = none.Open(url, &store);
  CHECK(s.code() == Code::kUnauthenticated);
  CHECK(s.message().find("GOOGLE_APPLICATION_CREDENTIALS") != std::string::npos);

  setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/sa.json", 1);
  REQUIRE(gcs::ChooseGcsAuth(url, &kind, &cfg).ok());
  CHECK(kind == gcs::GcsAuthKind::kOAuth);
  CHECK(cfg.flow == gcs::GcsTokenConfig::Flow::kServiceAccount);
  StoreRegistry reg(Env::Default(), StoreConfig());
  REQUIRE(reg.Open(url, &store).ok());  // no request yet
  CHECK(store->Describe().find("OAuth tokens from service account key file /nonexistent/sa.json") !=
        std::string::npos);

  // HMAC keys configured: the S3-interoperable path, as before.
  setenv("AWS_ACCESS_KEY_ID", "GOOG1EXAMPLE", 1);
  REQUIRE(gcs::ChooseGcsAuth(url, &kind, &cfg).ok());
  CHECK(kind == gcs::GcsAuthKind::kHmac);
  unsetenv("AWS_ACCESS_KEY_ID");
  REQUIRE(gcs::ChooseGcsAuth(test::ParsedUrl("gs://bkt/app?profile=gcs"), &kind, &cfg).ok());
  CHECK(kind == gcs::GcsAuthKind::kHmac);
  setenv("REPLITE_GCS_AUTH", "hmac", 1);
  REQUIRE(gcs::ChooseGcsAuth(url, &kind, &cfg).ok());
  CHECK(kind == gcs::GcsAuthKind::kHmac);

  // The metadata server only when asked for, even with a key file set.
  setenv("REPLITE_GCS_AUTH", "metadata", 1);
  REQUIRE(gcs::ChooseGcsAuth(url, &kind, &cfg).ok());
  CHECK(kind == gcs::GcsAuthKind::kOAuth);
  CHECK(cfg.flow == gcs::GcsTokenConfig::Flow::kMetadata);
  setenv("REPLITE_GCS_AUTH", "gce", 1);
  s = gcs::ChooseGcsAuth(url, &kind, &cfg);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find("hmac, oauth") != std::string::npos);

  // s3:// parameters that mean nothing to the native store are refused.
  test::ClearGcsEnv();
  setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/sa.json", 1);
  s = reg.Open(test::ParsedUrl("gs://bkt/app?region=us-east-1"), &store);
  CHECK(s.code() == Code::kInvalidArgument);
  test::ClearGcsEnv();
}

TEST_CASE("gcs: one token for every bucket is refreshed before it expires", "[gcs]") {
  test::ClearGcsEnv();
  auto f = test::GcsFixture::Start(/*expires_in=*/4);  // refreshed when 2 s are left
  f->CreateBucket("tok-one");
  f->CreateBucket("tok-two");
  REQUIRE(f->tokens->TokensIssued() == 2);  // CreateBucket's own sources
  setenv("GOOGLE_APPLICATION_CREDENTIALS", f->key_file.c_str(), 1);
  StoreRegistry reg(Env::Default(), StoreConfig());
  std::shared_ptr<ObjectStore> a, b;
  const std::string ep = "?endpoint=" + f->gcs->endpoint();
  REQUIRE(reg.Open(test::ParsedUrl("gs://tok-one/db1" + ep), &a).ok());
  REQUIRE(reg.Open(test::ParsedUrl("gs://tok-two/db2" + ep), &b).ok());
  CHECK(a != b);
  REQUIRE(a->Put("db1/x", "1").ok());
  // The token was issued before this instant: the times below count from
  // it, so a slow first request (sanitizers) cannot shift them.
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(b->Put("db2/x", "2").ok());
  CHECK(f->tokens->TokensIssued() == 3);  // one for both buckets
  const std::vector<std::string> first = f->gcs->TokensSeen();
  REQUIRE(first.size() == 3);

  // Past half the lifetime: the next request fetches a new token first,
  // while the old one still works.
  std::this_thread::sleep_until(start + std::chrono::milliseconds(2300));
  REQUIRE(a->Put("db1/y", "3").ok());
  REQUIRE(b->Put("db2/y", "4").ok());
  CHECK(f->tokens->TokensIssued() == 4);
  const std::vector<std::string> seen = f->gcs->TokensSeen();
  REQUIRE(seen.size() == 4);
  CHECK(seen[3] != first[2]);

  // The fake refuses the first token once it has expired (so a store that
  // did not refresh would fail), and the store goes on with its new one.
  std::this_thread::sleep_until(start + std::chrono::milliseconds(4600));
  CHECK(f->gcs->Raw("GET", "/tok-one/db1/x", first[2]) == 401);
  std::string got;
  Status s = a->Get("db1/y", &got);
  INFO(s.ToString());
  CHECK(s.ok());
  CHECK(got == "3");
  test::ClearGcsEnv();
}

TEST_CASE("gcs: a token revoked before its expiry is replaced once and the request goes through", "[gcs]") {
  auto f = test::GcsFixture::Start();
  f->CreateBucket("revoke");
  auto http = NewClient();
  auto tokens = std::make_shared<gcs::GcsTokenSource>(f->KeyFileConfig(), http, nullptr);
  std::shared_ptr<ObjectStore> s;
  REQUIRE(OpenGcsStore(test::ParsedUrl("gs://revoke?endpoint=" + f->gcs->endpoint()), tokens, http, nullptr,
                       StoreConfig(), &s)
              .ok());
  REQUIRE(s->Put("a", "1").ok());
  std::string old_token;
  REQUIRE(tokens->Token(&old_token).ok());
  REQUIRE(f->tokens->Revoke(old_token));
  CHECK(f->gcs->Raw("GET", "/revoke/a", old_token) == 401);
  const uint64_t before = http->Stats().requests;
  Status st = s->Put("b", "2");
  INFO(st.ToString());
  REQUIRE(st.ok());
  CHECK(tokens->fetches() == 2);
  CHECK(http->Stats().requests - before == 3);  // refused, token, accepted
  std::string now;
  REQUIRE(tokens->Token(&now).ok());
  CHECK(now != old_token);
}

TEST_CASE("gcs: the metadata server's token through the registry and a 403 that names the role", "[gcs]") {
  test::ClearGcsEnv();
  auto f = test::GcsFixture::Start();
  f->CreateBucket("meta");
  f->CreateBucket("denied");
  REQUIRE(f->gcs->DenyBucket("denied"));
  setenv("GCE_METADATA_HOST", f->tokens->host_port().c_str(), 1);
  StoreConfig cfg;
  cfg.retry_base_delay_ms = 1;
  StoreRegistry reg(Env::Default(), cfg);
  std::shared_ptr<ObjectStore> s, d;
  const std::string ep = "?endpoint=" + f->gcs->endpoint();
  REQUIRE(reg.Open(test::ParsedUrl("gs://meta/app" + ep), &s).ok());
  CHECK(s->Describe().find("GCE metadata server") != std::string::npos);
  Status st = s->Put("app/x", "from the instance's account");
  INFO(st.ToString());
  REQUIRE(st.ok());
  std::string got;
  REQUIRE(s->Get("app/x", &got).ok());
  CHECK(got == "from the instance's account");

  REQUIRE(reg.Open(test::ParsedUrl("gs://denied/app" + ep), &d).ok());
  const int before = f->gcs->Requests();
  st = d->Put("app/x", "no");
  CHECK(st.code() == Code::kPermissionDenied);
  CHECK(st.message().find("roles/storage.objectUser") != std::string::npos);
  CHECK(st.message().find("PutObject gs://denied/app/x") != std::string::npos);
  CHECK(f->gcs->Requests() - before == 1);  // not retried
  test::ClearGcsEnv();
}

TEST_CASE("gcs: version tags are generation numbers and conditions follow them", "[gcs]") {
  auto f = test::GcsFixture::Start();
  f->CreateBucket("gen");
  auto http = NewClient();
  std::shared_ptr<ObjectStore> s;
  REQUIRE(OpenGcsStore(test::ParsedUrl("gs://gen?endpoint=" + f->gcs->endpoint()),
                       std::make_shared<gcs::GcsTokenSource>(f->KeyFileConfig(), http, nullptr), http, nullptr,
                       StoreConfig(), &s)
              .ok());
  std::string g1, g2;
  PutOptions create;
  create.if_none_match = true;
  REQUIRE(s->Put("lease", "a", create, &g1).ok());
  CHECK(AllDigits(g1));
  ObjectInfo info;
  REQUIRE(s->Head("lease", &info).ok());
  CHECK(info.etag == g1);
  std::vector<ObjectInfo> list;
  REQUIRE(s->List("", &list).ok());
  REQUIRE(list.size() == 1);
  CHECK(list[0].etag == g1);
  PutOptions replace;
  replace.if_match = g1;
  REQUIRE(s->Put("lease", "b", replace, &g2).ok());
  CHECK(std::stoull(g2) > std::stoull(g1));
  // An S3-style ETag can never name a generation: refused without a request.
  replace.if_match = "\"0cc175b9c0f1b6a831c399e269772661\"";
  const uint64_t before = http->Stats().requests;
  Status st = s->Put("lease", "c", replace);
  CHECK(st.code() == Code::kFailedPrecondition);
  CHECK(st.message().find("generation") != std::string::npos);
  CHECK(http->Stats().requests == before);
  std::string got;
  REQUIRE(s->Get("lease", &got).ok());
  CHECK(got == "b");

  // Read back by another client (libcurl's easy API) at the URL GCS would
  // serve, so a key-encoding bug our writer and reader shared would show.
  const std::string odd = "dir/sp ace+plus%pct/ü";
  REQUIRE(s->Put(odd, "odd key").ok());
  std::string token, raw;
  REQUIRE(gcs::GcsTokenSource(f->KeyFileConfig(), http, nullptr).Token(&token).ok());
  CHECK(f->gcs->Raw("GET", "/gen/dir/sp%20ace%2Bplus%25pct/%C3%BC", token, &raw) == 200);
  CHECK(raw == "odd key");
}

TEST_CASE("gcs: PutFile above the threshold goes multipart with the condition on completion", "[gcs]") {
  auto f = test::GcsFixture::Start();
  f->CreateBucket("multi");
  auto http = NewClient();
  StoreConfig cfg;
  cfg.multipart_threshold = 64 << 10;
  cfg.multipart_part_size = 32 << 10;
  std::shared_ptr<ObjectStore> s;
  REQUIRE(OpenGcsStore(test::ParsedUrl("gs://multi?endpoint=" + f->gcs->endpoint()),
                       std::make_shared<gcs::GcsTokenSource>(f->KeyFileConfig(), http, nullptr), http, nullptr, cfg, &s)
              .ok());
  test::TempDir dir;
  std::string data(200000, '\0');
  std::mt19937 rng(3);
  for (auto& c : data) c = static_cast<char>(rng());
  { std::ofstream(dir / "big", std::ios::binary) << data; }
  const int before = f->gcs->Requests();
  PutOptions create;
  create.if_none_match = true;
  Status st = s->PutFile("big", dir / "big", create);
  INFO(st.ToString());
  REQUIRE(st.ok());
  CHECK(f->gcs->Requests() - before == 1 + 7 + 1);  // initiate, 7 parts, complete
  std::string got;
  REQUIRE(s->Get("big", &got).ok());
  CHECK(got == data);
  st = s->PutFile("big", dir / "big", create);  // exists: refused at completion, upload aborted
  CHECK(st.code() == Code::kFailedPrecondition);
  REQUIRE(s->Get("big", &got).ok());  // the abort left the object alone
  CHECK(got == data);
  uint64_t removed = 9;
  REQUIRE(s->RemoveAbandoned("", INT64_MAX, &removed).ok());
  CHECK(removed == 0);  // nothing left behind

  // Writers killed mid-upload leave uploads behind (started here by hand):
  // removed once old enough, never younger ones or ones outside the prefix.
  std::string token;
  REQUIRE(gcs::GcsTokenSource(f->KeyFileConfig(), http, nullptr).Token(&token).ok());
  for (const char* k : {"p/left-1", "p/left-2", "q/left-3"})
    REQUIRE(f->gcs->Raw("POST", std::string("/multi/") + k + "?uploads", token) == 200);
  const int64_t now_ms = static_cast<int64_t>(std::time(nullptr)) * 1000;
  REQUIRE(s->RemoveAbandoned("p/", now_ms - 3600 * 1000, &removed).ok());
  CHECK(removed == 0);  // all younger than an hour
  REQUIRE(s->RemoveAbandoned("p/", now_ms + 1000, &removed).ok());
  CHECK(removed == 2);
  REQUIRE(s->RemoveAbandoned("", now_ms + 1000, &removed).ok());
  CHECK(removed == 1);
}

TEST_CASE("gcs: 503s and 500s and resets are retried and a lost answer to a conditional put is recognised",
          "[gcs][fault]") {
  auto f = test::GcsFixture::Start();
  f->CreateBucket("faults");
  std::string why;
  const int port = std::atoi(f->gcs->endpoint().substr(f->gcs->endpoint().rfind(':') + 1).c_str());
  auto proxy = test::FaultProxy::Start(port, &why);
  if (!proxy) FAIL("fault proxy: " << why);
  auto http = NewClient();
  StoreConfig cfg;
  cfg.retry_base_delay_ms = 1;
  cfg.max_retries = 3;
  std::shared_ptr<ObjectStore> store;
  REQUIRE(OpenGcsStore(test::ParsedUrl("gs://faults?endpoint=http://127.0.0.1:" + std::to_string(proxy->port())),
                       std::make_shared<gcs::GcsTokenSource>(f->KeyFileConfig(), http, nullptr), http, nullptr, cfg,
                       &store)
              .ok());
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

  // The create-only put reaches the server but its answer is lost: the
  // retry is refused (412), and the write id tells it was this very write.
  proxy->Set("mode=reset_after&n=1&method=PUT");
  PutOptions create;
  create.if_none_match = true;
  std::string gen;
  s = store->Put("p/lease", "mine", create, &gen);
  INFO(s.ToString());
  CHECK(s.ok());
  ObjectInfo info;
  REQUIRE(store->Head("p/lease", &info).ok());
  CHECK(info.etag == gen);
  CHECK(store->Put("p/lease", "theirs", create).code() == Code::kFailedPrecondition);  // another writer's try
  const std::string stats = proxy->Control("/stats");
  INFO(stats);
  for (const char* fault : {"\"slowdown\": 2", "\"error500\": 2", "\"reset\": 1", "\"reset_after\": 1"})
    CHECK(stats.find(fault) != std::string::npos);

  proxy->Set("mode=outage&t=0");
  const uint64_t before = http->Stats().requests;
  s = store->Put("p/c", "x");
  CHECK(s.code() == Code::kUnavailable);
  CHECK(s.message().find("PutObject gs://faults/p/c") != std::string::npos);
  CHECK(http->Stats().requests - before == 4);
  proxy->Set("mode=pass");
  REQUIRE(store->Put("p/c", "x").ok());
}

TEST_CASE("gcs: replicate a varied workload and restore it through gs on a fake GCS", "[gcs][e2e]") {
  test::ClearGcsEnv();
  auto f = test::GcsFixture::Start();
  f->CreateBucket("e2e");
  setenv("GOOGLE_APPLICATION_CREDENTIALS", f->key_file.c_str(), 1);
  test::TempDir dir;
  test::ReplicateVariedAndRestore("gs://e2e/tenants/app?endpoint=" + f->gcs->endpoint(), dir, 120, 12, 29);
  test::ClearGcsEnv();
}
