// [hygiene] What killed writers leave behind is removed, with retention:
// S3 multipart uploads never completed (moto), file:// temporaries, and
// the Replicator doing it after a snapshot (never for an idle database).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "http/http_client.h"
#include "moto_server.h"
#include "replite/replite.h"
#include "store/file_store.h"
#include "store/replica_url.h"
#include "store/s3/s3_store.h"
#include "store/s3/s3_xml.h"
#include "test_util.h"

using namespace replite;

namespace {

int64_t NowMs() { return Env::Default()->NowMicros() / 1000; }

void Touch(const std::string& path, int64_t age_s) {
  std::ofstream(path) << "partial";
  struct timeval tv[2];
  tv[0].tv_sec = tv[1].tv_sec = time(nullptr) - age_s;
  tv[0].tv_usec = tv[1].tv_usec = 0;
  REQUIRE(::utimes(path.c_str(), tv) == 0);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Upload ids of the bucket's unfinished multipart uploads, by key.
std::multiset<std::string> UploadKeys(testing::MotoServer* m, const std::string& bucket) {
  long code = 0;
  std::string body;
  REQUIRE(m->Request("GET", "/" + bucket + "?uploads", "", &code, &body).ok());
  REQUIRE(code == 200);
  s3::UploadsPage page;
  REQUIRE(s3::ParseListMultipartUploads(body, &page).ok());
  std::multiset<std::string> keys;
  for (const auto& u : page.uploads) keys.insert(u.key);
  return keys;
}

}  // namespace

TEST_CASE("hygiene: abandoned S3 multipart uploads under a database prefix are aborted, by age", "[hygiene][s3]") {
  testing::MotoServer* m = test::MotoForTest();
  if (!m) return;
  const std::string bucket = "replite-hygiene";
  REQUIRE(m->CreateBucket(bucket).ok());
  for (const char* key : {"fleet/db1/gen/a", "fleet/db1/gen/b", "fleet/db1/c", "fleet/db10/x"}) {
    long code = 0;
    REQUIRE(m->Request("POST", "/" + bucket + "/" + key + "?uploads", "", &code, nullptr).ok());
    REQUIRE(code == 200);
  }
  ReplicaUrl url;
  REQUIRE(ParseReplicaUrl("s3://" + bucket + "/fleet?endpoint=" + m->endpoint() + "&region=us-east-1", &url).ok());
  std::shared_ptr<HttpClient> http;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &http).ok());
  std::shared_ptr<ObjectStore> store;
  REQUIRE(OpenS3Store(url, http, nullptr, StoreConfig(), &store).ok());

  // Moto dates every upload 2010-11-10T20:48:33Z: younger than a 2010-01-01
  // threshold, so kept; older than now, so aborted.
  uint64_t removed = 99;
  REQUIRE(store->RemoveAbandoned("fleet/db1/", int64_t(1262304000) * 1000, &removed).ok());
  CHECK(removed == 0);
  CHECK(UploadKeys(m, bucket).size() == 4);
  REQUIRE(store->RemoveAbandoned("fleet/db1/", NowMs(), &removed).ok());
  CHECK(removed == 3);
  CHECK(UploadKeys(m, bucket) == std::multiset<std::string>{"fleet/db10/x"});  // "db1/" is not "db10/"
}

TEST_CASE("hygiene: ListMultipartUploads pages and malformed answers", "[hygiene][s3][xml]") {
  s3::UploadsPage page;
  REQUIRE(s3::ParseListMultipartUploads(
              "<?xml version=\"1.0\"?><ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
              "<Bucket>b</Bucket><IsTruncated>true</IsTruncated><NextKeyMarker>k2</NextKeyMarker>"
              "<NextUploadIdMarker>u2</NextUploadIdMarker>"
              "<Upload><Key>k1</Key><UploadId>u1</UploadId><Initiated>2026-12-01T10:00:00.000Z</Initiated></Upload>"
              "<Upload><Key>k2</Key><UploadId>u2</UploadId><Initiated>2026-12-02T10:00:00.000Z</Initiated></Upload>"
              "</ListMultipartUploadsResult>",
              &page)
              .ok());
  REQUIRE(page.uploads.size() == 2);
  CHECK(page.uploads[1].key == "k2");
  CHECK(page.uploads[0].initiated_ms == int64_t(1796119200) * 1000);
  CHECK(page.truncated);
  CHECK(page.next_key_marker == "k2");
  CHECK(page.next_upload_id_marker == "u2");
  CHECK(s3::ParseListMultipartUploads("<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
                                      "</ListMultipartUploadsResult>", &page).code() == Code::kCorruption);
  CHECK(s3::ParseListMultipartUploads("<Error/>", &page).code() == Code::kCorruption);
}

TEST_CASE("hygiene: file temporaries of killed writers are removed by age, objects untouched", "[hygiene]") {
  test::TempDir dir;
  auto store = NewFileStore("/");
  const std::string root = dir.path().substr(1);  // keys are relative to "/"
  REQUIRE(store->Put(root + "/db1/gen/seg", "data").ok());
  ::mkdir((dir / "db10").c_str(), 0755);
  Touch(dir / "db1/gen/seg.tmp-123-1", 3 * 86400);  // killed days ago
  Touch(dir / "db1/gen/seg2.tmp-123-2", 0);         // maybe a write in progress
  Touch(dir / "db10/other.tmp-9-9", 3 * 86400);     // another database's
  uint64_t removed = 0;
  REQUIRE(store->RemoveAbandoned(root + "/db1/", NowMs() - 86400 * 1000, &removed).ok());
  CHECK(removed == 1);
  CHECK_FALSE(Exists(dir / "db1/gen/seg.tmp-123-1"));
  CHECK(Exists(dir / "db1/gen/seg2.tmp-123-2"));
  CHECK(Exists(dir / "db10/other.tmp-9-9"));
  std::string got;
  REQUIRE(store->Get(root + "/db1/gen/seg", &got).ok());
  CHECK(got == "data");
}

TEST_CASE("hygiene: a snapshot's retention pass removes a killed writer's old temporaries", "[hygiene]") {
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::Writer w(db);
  w.Exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.replica_url = dir.url("replica");
  o.logger = [](const std::string&) {};
  o.defaults.poll_interval_ms = 0;
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  REQUIRE(r->Add(db).ok());
  REQUIRE(r->Sync(db).ok());
  // The replica directory of app.db: whatever directory holds its objects.
  std::string out;
  REQUIRE(test::Shell("find " + dir / "replica" + " -type f | head -1", &out) == 0);
  REQUIRE(!out.empty());
  const std::string obj_dir = out.substr(0, out.rfind('/'));
  Touch(obj_dir + "/dead.tmp-1-1", 3 * 86400);
  Touch(obj_dir + "/live.tmp-1-2", 0);
  w.Exec("INSERT INTO t VALUES (2)");
  REQUIRE(r->Sync(db).ok());
  CHECK(Exists(obj_dir + "/dead.tmp-1-1"));  // a plain sync makes no extra request
  REQUIRE(r->Snapshot(db).ok());
  CHECK_FALSE(Exists(obj_dir + "/dead.tmp-1-1"));
  CHECK(Exists(obj_dir + "/live.tmp-1-2"));
  REQUIRE(r->Close().ok());
}
