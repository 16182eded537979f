// Leases and fencing (issue 19, finding 4): two instances on one replica.
// Before leases, an old instance still draining during a deploy and a new
// one with a fresh state dir wrote generations with overlapping txid ranges
// and "latest" restored the stale one; the manifest was rewritten without
// conditions, so one writer dropped the other's generation.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "forwarding_store.h"
#include "format/layout.h"
#include "replica/lease.h"
#include "replica/retention.h"
#include "replite/replite.h"
#include "moto_server.h"
#include "store/file_store.h"
#include "store/replica_url.h"
#include "store/store_registry.h"
#include "replite/sys/env.h"
#include "test_util.h"
#include "util/file_util.h"

using namespace replite;

namespace {

std::string Slurp(const std::string& path) {
  std::string s;
  ReadFileToString(path, &s);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

void Insert(test::Writer& w, int from, int n) {
  for (int i = from; i < from + n; i++) w.Exec("INSERT INTO t(v) VALUES ('row " + std::to_string(i) + "')");
}

// Forwards to a file store; runs `before_put` before each Put of one key
// (another writer's update landing between our read and our write).
class InterposingStore : public test::ForwardingStore {
 public:
  InterposingStore(std::shared_ptr<ObjectStore> inner, std::string key, std::function<void()> before_put)
      : ForwardingStore(std::move(inner)), key_(std::move(key)), before_put_(std::move(before_put)) {}
  Status Put(const std::string& key, const std::string& data, const PutOptions& o, std::string* etag) override {
    if (key == key_ && before_put_) {
      auto f = std::move(before_put_);
      before_put_ = nullptr;
      f();
    }
    return ForwardingStore::Put(key, data, o, etag);
  }

 private:
  std::string key_;
  std::function<void()> before_put_;
};


// The lease rules on one store: refused while the holder lives, taken over
// when its heartbeat expired or is gone, kept when ours.
void CheckLeaseRules(ObjectStore* store, const std::string& prefix) {
  const std::string other = "00000000000000aa";
  auto write_other = [&](int64_t expires_in_ms, bool heartbeat) {
    const std::string hb = HeartbeatKey(prefix, other);
    REQUIRE(store->Put(LeaseKey(prefix), "replite-lease 1\ninstance " + other + "\nheartbeat " + hb +
                                             "\nhost otherhost\npid 4242\nacquired_ms 1\n")
                .ok());
    REQUIRE(store->Delete({hb}).ok());
    if (heartbeat) {
      const int64_t now_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      REQUIRE(store->Put(hb, "replite-heartbeat 1\ninstance " + other + "\nhost otherhost\npid 4242\nrenewed_ms " +
                                 std::to_string(now_ms) + "\nexpires_ms " + std::to_string(now_ms + expires_in_ms) +
                                 "\n")
                  .ok());
    }
  };
  LeaseKeeper k("00000000000000bb", "thishost", 1, 30000);
  uint32_t epoch = 0;
  std::string from;

  write_other(60000, true);  // alive
  Status s = k.Acquire(store, prefix, &epoch, &from);
  INFO(s.ToString());
  CHECK(s.code() == Code::kFailedPrecondition);
  CHECK(s.message().find(other) != std::string::npos);
  CHECK(s.message().find("otherhost") != std::string::npos);
  CHECK(s.message().find("4242") != std::string::npos);
  CHECK(!k.Usable(store, prefix, epoch));
  CHECK(!k.VerifyHeld(store, prefix).ok());

  write_other(-1000, true);  // expired: died without closing
  REQUIRE(k.Acquire(store, prefix, &epoch, &from).ok());
  CHECK(from == other);
  CHECK(k.Usable(store, prefix, epoch));
  CHECK(k.VerifyHeld(store, prefix).ok());
  REQUIRE(k.Acquire(store, prefix, &epoch, &from).ok());  // ours: kept, nobody to take it from
  CHECK(from.empty());

  write_other(0, false);  // released (Close deleted the heartbeat)
  REQUIRE(k.Acquire(store, prefix, &epoch, &from).ok());
  CHECK(from == other);

  REQUIRE(store->Put(LeaseKey(prefix), "not a lease").ok());
  CHECK(k.Acquire(store, prefix, &epoch, &from).code() == Code::kCorruption);
  ObjectInfo info;
  REQUIRE(store->Head(HeartbeatKey(prefix, "00000000000000bb"), &info).ok());
  k.ReleaseAll();
  CHECK(store->Head(HeartbeatKey(prefix, "00000000000000bb"), &info).code() == Code::kNotFound);
}

}  // namespace

TEST_CASE("leases: a second instance is refused while the first writes, and takes over when it closes", "[lease]") {
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::Writer w(db, /*autocheckpoint=*/1000);  // SQLite's default
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  Insert(w, 0, 10);
  test::LogCapture la, lb;
  ReplicatorOptions oa;
  oa.state_dir = dir / "a";
  oa.replica_url = dir.url("backup");
  oa.defaults.poll_interval_ms = 0;
  oa.logger = la.Logger();
  ReplicatorOptions ob = oa;
  ob.state_dir = dir / "b";
  ob.logger = lb.Logger();
  std::unique_ptr<Replicator> a, b;
  REQUIRE(Replicator::Open(oa, &a).ok());
  REQUIRE(a->Add(db).ok());
  REQUIRE(a->Sync(db).ok());
  const std::string a_id = Slurp(dir / "a/instance-id");
  REQUIRE(a_id.size() == 16);

  // The new instance (fresh state dir) while the old one still writes.
  REQUIRE(Replicator::Open(ob, &b).ok());
  REQUIRE(b->Add(db).ok());
  Status s = b->Sync(db);
  INFO(s.ToString());
  CHECK(s.code() == Code::kFailedPrecondition);
  CHECK(s.message().find("being written by another replite instance " + a_id) != std::string::npos);
  DatabaseStatus st;
  REQUIRE(b->GetStatus(db, &st).ok());
  CHECK(st.last_error.find(a_id) != std::string::npos);
  CHECK(st.durable_txid == 0);

  Insert(w, 10, 10);
  uint64_t a_last = 0;
  REQUIRE(a->Sync(db, &a_last).ok());  // the holder is not disturbed
  REQUIRE(a->Close().ok());             // releases: B takes over at once

  Insert(w, 20, 10);
  uint64_t b_txid = 0;
  s = b->Sync(db, &b_txid);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(b_txid > a_last);
  CHECK(lb.Has("took over the lease"));
  Insert(w, 30, 10);
  REQUIRE(b->Sync(db).ok());
  REQUIRE(b->Close().ok());

  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(dir.url("backup/app"), &gens).ok());
  REQUIRE(gens.size() == 2);
  CHECK(gens[1].first_txid > gens[0].last_txid);
  CHECK(gens[0].overlaps.empty());
  CHECK(gens[1].overlaps.empty());
  RestoreResult rr;
  CHECK(test::RestoreContent(dir.url("backup/app"), dir / "latest.db", 0, &rr) == test::DumpContent(db));
  CHECK(rr.overlap.empty());
  CHECK(rr.generation == gens[1].id);
}

TEST_CASE("leases: a killed holder's lease is taken over once its heartbeat expires", "[lease]") {
  test::TempDir dir;
  const std::string cli = REPLITE_CLI_PATH, db = dir / "app.db", url = dir.url("backup/app");
  test::Writer w(db, /*autocheckpoint=*/1000);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  Insert(w, 0, 20);
  const pid_t pid =
      test::Spawn({cli, "replicate", "-state", dir / "a", "-poll-ms", "20", "-lease-ttl", "2s", db, url});
  // Wait until the holder has written its lease and the first rows.
  std::vector<GenerationInfo> gens;
  for (int i = 0; i < 200 && !(ListGenerations(url, &gens).ok() && !gens.empty() && gens[0].last_txid > 0); i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(!gens.empty());
  REQUIRE(FileExists(dir / "backup/app/lease"));
  REQUIRE(kill(pid, SIGKILL) == 0);
  test::Wait(pid);
  const std::string a_id = Slurp(dir / "a/instance-id");
  REQUIRE(FileExists(dir / ("backup/.replite/instances/" + a_id)));  // a killed holder leaves its heartbeat

  Insert(w, 20, 20);
  test::LogCapture lb;
  ReplicatorOptions ob;
  ob.state_dir = dir / "b";
  ob.defaults.replica_url = url;
  ob.defaults.poll_interval_ms = 0;
  ob.lease_ttl_ms = 2000;
  ob.logger = lb.Logger();
  std::unique_ptr<Replicator> b;
  REQUIRE(Replicator::Open(ob, &b).ok());
  REQUIRE(b->Add(db).ok());
  const auto t0 = std::chrono::steady_clock::now();
  Status s = b->Sync(db);
  bool refused_first = s.code() == Code::kFailedPrecondition;
  while (!s.ok() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    s = b->Sync(db);
  }
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(refused_first);  // its heartbeat was still valid right after the kill
  CHECK(lb.Has("took over the lease"));
  Insert(w, 40, 5);
  REQUIRE(b->Sync(db).ok());
  REQUIRE(b->Close().ok());
  CHECK(!FileExists(dir / ("backup/.replite/instances/" + Slurp(dir / "b/instance-id"))));  // released on Close
  RestoreResult rr;
  CHECK(test::RestoreContent(url, dir / "latest.db", 0, &rr) == test::DumpContent(db));
  CHECK(rr.overlap.empty());
}


TEST_CASE("leases: a lease naming a live holder is refused, an expired or released one taken over", "[lease]") {
  test::TempDir dir;
  auto store = NewFileStore("/");
  CheckLeaseRules(store.get(), dir.path().substr(1) + "/backup/app");
}

TEST_CASE("leases on S3: conditional creates and takeovers against moto", "[lease][s3]") {
  testing::MotoServer* m = test::MotoForTest();
  if (!m) return;
  REQUIRE(m->Reset().ok());
  REQUIRE(m->CreateBucket("replite-lease").ok());
  ReplicaUrl url;
  REQUIRE(ParseReplicaUrl("s3://replite-lease/backup/app?endpoint=" + m->endpoint() + "&region=us-east-1", &url).ok());
  StoreRegistry reg(Env::Default(), StoreConfig{});
  std::shared_ptr<ObjectStore> store;
  REQUIRE(reg.Open(url, &store).ok());
  CheckLeaseRules(store.get(), url.prefix);
}

TEST_CASE("leases: two Replicators cannot share one state dir", "[lease]") {
  test::TempDir dir;
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.replica_url = dir.url("backup");
  std::unique_ptr<Replicator> a, b;
  REQUIRE(Replicator::Open(o, &a).ok());
  Status s = Replicator::Open(o, &b);
  CHECK(s.code() == Code::kFailedPrecondition);
  CHECK(s.message().find("in use by another Replicator") != std::string::npos);
  CHECK(s.message().find("pid " + std::to_string(getpid())) != std::string::npos);
  REQUIRE(a->Close().ok());
  a.reset();
  CHECK(Replicator::Open(o, &b).ok());  // free again
}

TEST_CASE("restore takes the highest txid when two writers' generations overlap, and reports it", "[lease]") {
  // Leases off: what two instances on one replica did before leases (and
  // still do with lease_ttl_ms = 0).
  test::TempDir dir;
  const std::string db = dir / "app.db", url = dir.url("backup/app");
  test::Writer w(db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  Insert(w, 0, 10);
  ReplicatorOptions oa;
  oa.state_dir = dir / "a";
  oa.defaults.replica_url = url;
  oa.defaults.poll_interval_ms = 0;
  oa.lease_ttl_ms = 0;
  oa.logger = [](const std::string&) {};
  ReplicatorOptions ob = oa;
  ob.state_dir = dir / "b";
  std::unique_ptr<Replicator> a, b;
  REQUIRE(Replicator::Open(oa, &a).ok());
  REQUIRE(a->Add(db).ok());
  REQUIRE(a->Sync(db).ok());
  Insert(w, 10, 5);
  REQUIRE(Replicator::Open(ob, &b).ok());  // a new instance with a fresh state dir
  REQUIRE(b->Add(db).ok());
  REQUIRE(b->Sync(db).ok());  // its generation, listed last in the manifest
  REQUIRE(b->Close().ok());
  // The old instance keeps draining: its generation now reaches further.
  for (int i = 0; i < 20; i++) {
    Insert(w, 15 + i, 1);
    REQUIRE(a->Sync(db).ok());
  }
  uint64_t a_last = 0;
  REQUIRE(a->Sync(db, &a_last).ok());
  REQUIRE(a->Close().ok());

  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(url, &gens).ok());
  REQUIRE(gens.size() == 2);
  CHECK(gens[0].last_txid == a_last);
  CHECK(gens[1].last_txid < gens[0].last_txid);
  CHECK(gens[0].overlaps == gens[1].id);
  CHECK(gens[1].overlaps == gens[0].id);
  RestoreResult rr;
  CHECK(test::RestoreContent(url, dir / "latest.db", 0, &rr) == test::DumpContent(db));
  CHECK(rr.generation == gens[0].id);
  CHECK(rr.txid == a_last);
  CHECK(rr.overlap.find("overlap") != std::string::npos);
  CHECK(rr.overlap.find(gens[0].id) != std::string::npos);
  std::string out;
  CHECK(test::Shell(std::string(REPLITE_CLI_PATH) + " generations " + url, &out) == 0);
  CHECK(out.find("warning: generation " + gens[1].id + " overlaps " + gens[0].id) != std::string::npos);
}

TEST_CASE("retention's manifest update keeps a generation another writer added meanwhile", "[lease]") {
  test::TwoGenerationReplica rep;
  test::TempDir& dir = rep.dir;
  const std::vector<GenerationInfo>& gens = rep.gens;

  // Another writer appends generation C between retention's read of the
  // manifest and its write.
  auto file_store = NewFileStore(dir.path());
  const std::string c_id = "7fffffffffff0001";
  auto racing = std::make_shared<InterposingStore>(file_store, "replica/manifest", [&] {
    std::string text;
    REQUIRE(file_store->Get("replica/manifest", &text).ok());
    text += "generation " + c_id + " 99 1\n";
    REQUIRE(file_store->Put("replica/manifest", text).ok());
  });
  RetentionStats rs;
  REQUIRE(ApplyRetention(racing.get(), "replica", rep.now_ms(), rep.retention_ms, &rs).ok());
  CHECK(rs.generations_deleted == 1);
  std::string manifest;
  REQUIRE(ReadFileToString(dir / "replica/manifest", &manifest).ok());
  INFO(manifest);
  CHECK(manifest.find("generation " + c_id) != std::string::npos);   // the other writer's, kept
  CHECK(manifest.find("generation " + gens[1].id) != std::string::npos);
  CHECK(manifest.find(gens[0].id) == std::string::npos);               // A: dropped and deleted
  CHECK(manifest.find("deleting") == std::string::npos);
}
