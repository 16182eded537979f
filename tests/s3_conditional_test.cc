// [s3][fault] A conditional PUT whose first attempt reached S3 but whose
// answer was lost (the connection reset after the write) is retried, by
// the store or by libcurl itself (a reused connection that died); the
// retry then fails its own condition (the object exists now, or its ETag
// changed). The store must recognise its own write and report success,
// and still report a real lost race as kFailedPrecondition.
#include <catch2/catch.hpp>

#include "fault_proxy.h"
#include "http/http_client.h"
#include "store/replica_url.h"
#include "store/s3/s3_store.h"
#include "test_util.h"

using namespace replite;

namespace {

std::shared_ptr<ObjectStore> Open(const std::string& url_text) {
  ReplicaUrl url;
  REQUIRE(ParseReplicaUrl(url_text, &url).ok());
  std::shared_ptr<HttpClient> http;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &http).ok());
  StoreConfig cfg;
  cfg.retry_base_delay_ms = 1;
  std::shared_ptr<ObjectStore> store;
  REQUIRE(OpenS3Store(url, http, nullptr, cfg, &store).ok());
  return store;
}

}  // namespace

TEST_CASE("s3 conditional put: a retry after a lost answer recognises its own write", "[s3][fault]") {
  test::S3Through s3;
  if (!test::SetUpS3("replite-cond", "cond", &s3)) return;
  auto store = Open(s3.url);
  auto direct = Open(s3.direct_url);
  const std::string key = "cond/lease";
  (void)direct->Delete({key, key + "2"});

  // Create-only: the first attempt creates the object, its answer is lost.
  s3.proxy->Set("mode=reset_after&n=1&method=PUT");
  PutOptions create;
  create.if_none_match = true;
  std::string etag;
  Status s = store->Put(key, "v1", create, &etag);
  INFO(s.ToString());
  CHECK(s.ok());
  CHECK_FALSE(etag.empty());
  std::string got;
  REQUIRE(direct->Get(key, &got).ok());
  CHECK(got == "v1");
  CHECK(s3.proxy->Control("/stats").find("\"reset_after\": 1") != std::string::npos);

  // Replace-if-match: the same, the ETag has changed under the retry.
  s3.proxy->Set("mode=reset_after&n=1&method=PUT");
  PutOptions replace;
  replace.if_match = etag;
  std::string etag2;
  s = store->Put(key, "v2", replace, &etag2);
  INFO(s.ToString());
  CHECK(s.ok());
  REQUIRE(direct->Get(key, &got).ok());
  CHECK(got == "v2");

  // A race really lost stays lost: someone else's object is there, our
  // (ambiguous) attempts find it, and it is not ours.
  REQUIRE(direct->Put(key + "2", "theirs").ok());
  s3.proxy->Set("mode=reset_after&n=1&method=PUT");
  s = store->Put(key + "2", "ours", create);
  INFO(s.ToString());
  CHECK(s.code() == Code::kFailedPrecondition);
  REQUIRE(direct->Get(key + "2", &got).ok());
  CHECK(got == "theirs");
  // Without any fault: a plain conflict.
  s3.proxy->Set("mode=pass");
  CHECK(store->Put(key, "v3", create).code() == Code::kFailedPrecondition);
}
