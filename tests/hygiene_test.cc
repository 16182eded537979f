// [hygiene] What killed writers leave behind is removed, with retention:
// S3 multipart uploads never completed (moto; paging against a small fake,
// since moto ignores max-uploads), file:// temporaries, and
// the Replicator doing it after a snapshot (never for an idle database).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

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

namespace {

// A loopback HTTP server that plays ListMultipartUploads in pages of two
// (moto ignores max-uploads) over five uploads, old and new alternately,
// and records the aborts. One request per connection.
class FakeUploads {
 public:
  FakeUploads() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeUploads() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> targets() {
    std::lock_guard<std::mutex> l(mu_);
    return targets_;
  }

 private:
  void Serve() {
    while (true) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      ssize_t n;
      while (req.find("\r\n\r\n") == std::string::npos && (n = ::read(c, buf, sizeof buf)) > 0) req.append(buf, size_t(n));
      const std::string line = req.substr(0, req.find("\r\n"));
      const std::string method = line.substr(0, line.find(' '));
      const std::string target = line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
      {
        std::lock_guard<std::mutex> l(mu_);
        targets_.push_back(method + " " + target);
      }
      std::string body, status = "204 No Content";
      if (method == "GET") {
        status = "200 OK";
        size_t first = 0;
        if (size_t p = target.find("key-marker=k"); p != std::string::npos) first = size_t(target[p + 12] - '0') + 1;
        body = "<ListMultipartUploadsResult><Bucket>b</Bucket>";
        for (size_t i = first; i < std::min<size_t>(first + 2, 5); i++)
          body += "<Upload><Key>p/db/k" + std::to_string(i) + "</Key><UploadId>u" + std::to_string(i) +
                  "</UploadId><Initiated>" + (i % 2 ? "2026-12-02T00:00:00.000Z" : "2020-01-01T00:00:00.000Z") +
                  "</Initiated></Upload>";
        const bool more = first + 2 < 5;
        body += std::string("<IsTruncated>") + (more ? "true" : "false") + "</IsTruncated>";
        if (more)
          body += "<NextKeyMarker>k" + std::to_string(first + 1) + "</NextKeyMarker><NextUploadIdMarker>u" +
                  std::to_string(first + 1) + "</NextUploadIdMarker>";
        body += "</ListMultipartUploadsResult>";
      }
      const std::string resp = "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(body.size()) +
                               "\r\nConnection: close\r\n\r\n" + body;
      (void)!::write(c, resp.data(), resp.size());
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> targets_;
};

}  // namespace

TEST_CASE("hygiene: ListMultipartUploads is paged with key and upload-id markers, only old uploads aborted", "[hygiene][s3]") {
  FakeUploads fake;
  ReplicaUrl url;
  REQUIRE(ParseReplicaUrl("s3://bkt/p?endpoint=" + fake.endpoint() + "&region=us-east-1", &url).ok());
  std::shared_ptr<HttpClient> http;
  REQUIRE(HttpClient::Open(HttpClientOptions(), &http).ok());
  std::shared_ptr<ObjectStore> store;
  REQUIRE(OpenS3StoreWithCredentials(url, {"AKIDHYGIENE", "hygiene-secret", ""}, http, nullptr, StoreConfig(), &store)
              .ok());
  uint64_t removed = 0;
  // Older than 2026-06-01: the 2020 uploads (k0, k2, k4), not the 2026-12 ones.
  Status s = store->RemoveAbandoned("p/db/", int64_t(1780272000) * 1000, &removed);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(removed == 3);
  const std::vector<std::string> want = {
      "GET /bkt?prefix=p%2Fdb%2F&uploads=",
      "DELETE /bkt/p/db/k0?uploadId=u0",
      "GET /bkt?key-marker=k1&prefix=p%2Fdb%2F&upload-id-marker=u1&uploads=",
      "DELETE /bkt/p/db/k2?uploadId=u2",
      "GET /bkt?key-marker=k3&prefix=p%2Fdb%2F&upload-id-marker=u3&uploads=",
      "DELETE /bkt/p/db/k4?uploadId=u4",
  };
  CHECK(fake.targets() == want);
}
