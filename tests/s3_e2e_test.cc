// [s3][e2e] The end-to-end replicate/restore checks against S3 (moto on
// 127.0.0.1), and 200 databases through one Replicator sharing a bounded
// number of HTTP connections.
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <thread>

#include "moto_server.h"
#include "replite/replite.h"
#include "test_util.h"

using namespace replite;

namespace {

// The bucket URL on the shared moto server; nullptr when the test must stop.
bool S3Url(const std::string& bucket, const std::string& prefix, std::string* url) {
  testing::MotoServer* m = test::MotoForTest();
  if (!m) return false;
  REQUIRE(m->CreateBucket(bucket).ok());
  *url = "s3://" + bucket + "/" + prefix + "?endpoint=" + m->endpoint() + "&region=us-east-1&force-path-style=true";
  return true;
}

double MetricValue(const std::string& text, const std::string& name) {
  size_t p = text.find("\n" + name + " ");
  if (p == std::string::npos) return -1;
  return std::stod(text.substr(p + name.size() + 2));
}

}  // namespace

TEST_CASE("s3: replicate a varied workload, restore by txid and time, also after a foreign TRUNCATE", "[s3][e2e]") {
  std::string url;
  if (!S3Url("replite-e2e", "tenants/app", &url)) return;
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::ManualClockEnv env(int64_t(1767225600) * 1000000);
  test::Writer w(db);
  w.Exec("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, n INTEGER, data BLOB)");
  w.Exec("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB)");
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.env = &env;
  o.logger = [](const std::string&) {};
  o.defaults.replica_url = url;
  o.defaults.poll_interval_ms = 0;
  o.defaults.checkpoint_pages = 300;
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  REQUIRE(r->Add(db).ok());
  uint64_t txid = 0;
  REQUIRE(r->Sync(db, &txid).ok());
  struct Point {
    std::string content;
    uint64_t checksum;
    int64_t ts;
  };
  std::map<uint64_t, Point> points;
  std::mt19937 rng(7);
  for (int i = 0; i < 400; i++) {
    env.Advance(1000000);
    if (i == 200) {
      w.Exec("ALTER TABLE items ADD COLUMN note TEXT");
    } else if (i == 300) {
      w.Exec("VACUUM");
    } else {
      test::MutateVaried(w, rng, i);
    }
    txid++;
    if (i == 250) {  // someone else truncates the WAL after we captured everything
      uint64_t t = 0;
      REQUIRE(r->Sync(db, &t).ok());
      REQUIRE(t == txid);
      test::Writer other(db);
      other.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    const bool sample = i % 23 == 0 || i == 200 || i == 300 || i == 399;
    if (sample) points[txid] = {test::DumpContent(db), test::LiveChecksum(db), env.NowMicros() / 1000};
    if (sample || rng() % 3 == 0) {
      uint64_t got = 0;
      REQUIRE(r->Sync(db, &got).ok());
      REQUIRE(got == txid);
    }
  }
  uint64_t last = 0;
  REQUIRE(r->Sync(db, &last).ok());
  REQUIRE(last == txid);
  DatabaseStatus st;
  REQUIRE(r->GetStatus(db, &st).ok());
  CHECK(st.generations_started == 1);  // the foreign TRUNCATE lost nothing
  CHECK(st.checkpoints > 0);
  REQUIRE(r->Close().ok());
  int n = 0;
  for (const auto& [t, p] : points) {
    RestoreOptions ro;
    if (n % 2) ro.txid = t;
    else ro.timestamp_ms = p.ts + 500;
    test::CheckRestore(url, dir / ("r" + std::to_string(n++) + ".db"), ro, t, p.checksum, p.content);
  }
}

TEST_CASE("s3: 200 databases through one Replicator share <= max_connections, few new connections", "[s3][e2e]") {
  std::string url;
  if (!S3Url("replite-many", "fleet", &url)) return;
  test::TempDir dir;
  const int kDbs = 200;
  std::vector<std::unique_ptr<test::Writer>> writers;
  for (int i = 0; i < kDbs; i++) {
    writers.push_back(std::make_unique<test::Writer>(dir / ("t" + std::to_string(i) + ".db")));
    writers.back()->Exec("CREATE TABLE t(v)");
  }
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.replica_url = url;
  o.logger = [](const std::string&) {};
  o.worker_threads = 8;
  o.max_connections = 8;
  o.max_connections_per_host = 8;
  o.defaults.poll_interval_ms = 0;
  o.defaults.sync_interval_ms = 10;
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  for (int i = 0; i < kDbs; i++) REQUIRE(r->Add(dir / ("t" + std::to_string(i) + ".db")).ok());
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < kDbs; i++) {
      writers[i]->Exec("INSERT INTO t VALUES (randomblob(500))");
      REQUIRE(r->Notify(dir / ("t" + std::to_string(i) + ".db")).ok());
    }
    for (int i = 0; i < kDbs; i++) REQUIRE(r->WaitDurable(dir / ("t" + std::to_string(i) + ".db"), 60000, nullptr).ok());
  }
  const std::string m = r->Metrics();
  const double requests = MetricValue(m, "replite_http_requests");
  const double conns = MetricValue(m, "replite_http_connections_opened");
  INFO(m.substr(0, 3000));
  CHECK(requests >= kDbs * 4);
  CHECK(conns <= 8);
  CHECK(conns / requests < 0.05);
  REQUIRE(r->Close().ok());
  // Every database restores to its source.
  for (int i = 0; i < kDbs; i += 37) {
    const std::string name = "t" + std::to_string(i);
    const std::string out = dir / (name + "-restored.db");
    std::string child = url;
    child.insert(child.find('?'), "/" + name);
    Status s = Restore(child, out, RestoreOptions());
    INFO(s.ToString());
    REQUIRE(s.ok());
    CHECK(test::DumpContent(out) == test::DumpContent(dir / (name + ".db")));
  }
}
