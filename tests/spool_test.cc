// [spool] Store outages on a file:// replica: the replica directory is
// replaced by a regular file (every write then fails with ENOTDIR, a real
// failure of the real store), later put back. While the store fails,
// captured segments go to the local upload spool, the WAL is still
// checkpointed (it stays bounded by the checkpoint policy), nothing is
// reported durable; afterwards the spool drains in order and every
// transaction restores exactly. A full spool pauses capture instead of
// dropping anything; a restart uploads what an earlier process spooled.
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "replite/replite.h"
#include "test_util.h"

using namespace replite;
namespace fs = std::filesystem;

namespace {

uint64_t FileSize(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
}

// A file:// store that can be taken down and brought back.
struct FlakyDir {
  std::string dir;
  explicit FlakyDir(std::string d) : dir(std::move(d)) { fs::create_directories(dir); }
  void Down() {
    fs::rename(dir, dir + ".away");
    std::FILE* f = std::fopen(dir.c_str(), "w");  // a file where the directory was
    REQUIRE(f);
    std::fclose(f);
  }
  void Up() {
    fs::remove(dir);
    fs::rename(dir + ".away", dir);
  }
};

struct Fixture {
  test::TempDir tmp;
  std::string db = tmp / "app.db";
  FlakyDir replica{tmp / "replica"};
  std::string url = "file://" + replica.dir;
  std::unique_ptr<Replicator> r;
  std::vector<std::string> log;
  std::mutex log_mu;

  void Open(uint64_t spool_cap = 1ull << 30, uint32_t checkpoint_pages = 40) {
    ReplicatorOptions o;
    o.state_dir = tmp / "state";
    o.spool_cap = spool_cap;
    o.defaults.replica_url = url;
    o.defaults.poll_interval_ms = 0;  // driven by Sync only
    o.defaults.checkpoint_pages = checkpoint_pages;
    o.logger = [this](const std::string& l) {
      std::lock_guard<std::mutex> g(log_mu);
      log.push_back(l);
    };
    REQUIRE(Replicator::Open(o, &r).ok());
    REQUIRE(r->Add(db).ok());
  }
  DatabaseStatus Stat() {
    DatabaseStatus s;
    REQUIRE(r->GetStatus(db, &s).ok());
    return s;
  }
  void CheckRestores(const std::map<uint64_t, std::string>& content) {
    for (const auto& [txid, want] : content) {
      RestoreResult rr;
      CHECK(test::RestoreContent(url, tmp / "out.db", txid, &rr) == want);
      CHECK(rr.checksum_verified);
    }
  }
};

void Commit(test::Writer& w, int i) {
  w.Exec("INSERT INTO t(v) VALUES (randomblob(" + std::to_string(3000 + (i * 7919) % 3000) + "))");
  if (i % 7 == 3) w.Exec("DELETE FROM t WHERE id % 5 = " + std::to_string(i % 5));
}

}  // namespace

TEST_CASE("a store outage spools segments, keeps the WAL bounded, and loses nothing", "[spool]") {
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  f.Open();
  std::map<uint64_t, std::string> content;
  for (int i = 0; i < 5; i++) Commit(w, i);
  uint64_t txid = 0;
  REQUIRE(f.r->Sync(f.db, &txid).ok());
  content[txid] = test::DumpContent(f.db);
  const uint64_t durable_before = txid;

  f.replica.Down();
  uint64_t max_wal = 0;
  const uint64_t checkpoints_before = f.Stat().checkpoints;
  for (int i = 5; i < 305; i++) {
    Commit(w, i);
    if (i % 3 == 0) {
      uint64_t d = 0;
      Status s = f.r->Sync(f.db, &d);
      INFO(s.ToString());
      REQUIRE_FALSE(s.ok());  // not durable: said so, with the store named
      CHECK(s.message().find(f.replica.dir) != std::string::npos);
      CHECK(d == durable_before);
      DatabaseStatus st = f.Stat();
      CHECK(st.durable_txid == durable_before);
      content[st.local_txid] = test::DumpContent(f.db);
    }
    max_wal = std::max(max_wal, FileSize(f.db + "-wal"));
  }
  DatabaseStatus mid = f.Stat();
  CHECK(mid.spooled_segments > 0);
  CHECK(mid.local_txid > durable_before);
  CHECK_FALSE(mid.last_error.empty());
  // The spool let the library checkpoint during the outage: the WAL stayed
  // within the checkpoint policy (40 pages + one sync's worth of commits)
  // although 300 commits of ~1.5 pages each went by.
  CHECK(mid.checkpoints > checkpoints_before);
  CHECK(max_wal < (40 + 60) * (4096 + 24) + 32);
  const std::string m = f.r->Metrics();
  CHECK(test::MetricSum(m, "replite_spool_bytes") > 0);
  CHECK(test::MetricSum(m, "replite_segments_spooled_total") == double(mid.spooled_segments));

  f.replica.Up();
  uint64_t d = 0;
  Status s = f.r->Sync(f.db, &d);
  INFO(s.ToString());
  REQUIRE(s.ok());
  content[d] = test::DumpContent(f.db);
  DatabaseStatus after = f.Stat();
  CHECK(after.spooled_segments == 0);
  CHECK(after.durable_txid == after.local_txid);
  CHECK(after.last_error.empty());
  CHECK(test::MetricSum(f.r->Metrics(), "replite_spool_bytes") == 0);
  REQUIRE(f.r->Close().ok());
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(f.url, &gens).ok());
  CHECK(gens.size() == 1);  // nothing was lost, so no new generation
  f.CheckRestores(content);
}

TEST_CASE("a full spool pauses capture, the changes wait in the WAL and nothing is lost", "[spool]") {
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  f.Open(/*spool_cap=*/64 << 10);
  std::map<uint64_t, std::string> content;
  uint64_t txid = 0;
  REQUIRE(f.r->Sync(f.db, &txid).ok());
  f.replica.Down();
  for (int i = 0; i < 120; i++) {
    Commit(w, i);
    if (i % 4 == 0) {
      Status s = f.r->Sync(f.db);
      REQUIRE_FALSE(s.ok());
    }
  }
  Status s = f.r->Sync(f.db);
  INFO(s.ToString());
  CHECK(s.message().find("capture paused") != std::string::npos);
  CHECK(s.message().find("spool_cap") != std::string::npos);
  CHECK(test::MetricSum(f.r->Metrics(), "replite_spool_full_total") > 0);
  CHECK(test::MetricSum(f.r->Metrics(), "replite_spool_bytes") <= 64 << 10);
  // Capture paused: the changes are still in the WAL (not checkpointed).
  CHECK(FileSize(f.db + "-wal") > 100 * 4096);
  f.replica.Up();
  REQUIRE(f.r->Sync(f.db, &txid).ok());
  content[txid] = test::DumpContent(f.db);
  REQUIRE(f.r->Close().ok());
  f.CheckRestores(content);
}

TEST_CASE("segments spooled before a restart are uploaded first after it", "[spool]") {
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  f.Open();
  std::map<uint64_t, std::string> content;
  uint64_t txid = 0;
  REQUIRE(f.r->Sync(f.db, &txid).ok());
  const uint64_t durable_before = txid;
  f.replica.Down();
  for (int i = 0; i < 90; i++) {
    Commit(w, i);
    if (i % 10 == 9) {
      REQUIRE_FALSE(f.r->Sync(f.db).ok());
      content[f.Stat().local_txid] = test::DumpContent(f.db);
    }
  }
  // Shut down during the outage: Close reports it, the spool stays.
  CHECK_FALSE(f.r->Close().ok());
  f.r.reset();
  REQUIRE(fs::exists(f.tmp / "state/upload-spool"));

  // Restart, still down: the backlog is known, nothing claims durability.
  f.Open();
  DatabaseStatus st = f.Stat();
  CHECK(st.spooled_segments > 0);
  CHECK(st.durable_txid == durable_before);
  CHECK(st.local_txid == content.rbegin()->first);
  bool logged = false;
  {
    std::lock_guard<std::mutex> l(f.log_mu);
    for (const auto& line : f.log) logged |= line.find("upload spool holds") != std::string::npos;
  }
  CHECK(logged);
  f.replica.Up();
  for (int i = 90; i < 95; i++) Commit(w, i);
  REQUIRE(f.r->Sync(f.db, &txid).ok());
  content[txid] = test::DumpContent(f.db);
  CHECK(f.Stat().spooled_segments == 0);
  REQUIRE(f.r->Close().ok());
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(f.url, &gens).ok());
  CHECK(gens.size() == 1);
  f.CheckRestores(content);
}

TEST_CASE("files a killed process left in the spool directories are removed at open", "[spool]") {
  test::TempDir tmp;
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  REQUIRE(dead > 0);
  ::waitpid(dead, nullptr, 0);
  fs::create_directories(tmp / "state/spool");
  fs::create_directories(tmp / "state/upload-spool/0123456789abcdef");
  const std::string left = tmp / ("state/spool/snapshot.tmp-" + std::to_string(dead) + "-0-deadbeef");
  const std::string live = tmp / ("state/spool/snapshot.tmp-" + std::to_string(::getpid()) + "-0-0badf00d");
  const std::string torn = tmp / ("state/upload-spool/0123456789abcdef/0000000000000001-0000000000000001-"
                                  "0000000000000001.seg.tmp-" + std::to_string(dead) + "-1-12345678");
  for (const auto& p : {left, live, torn}) {
    std::FILE* f = std::fopen(p.c_str(), "w");
    REQUIRE(f);
    std::fclose(f);
  }
  ReplicatorOptions o;
  o.state_dir = tmp / "state";
  o.logger = [](const std::string&) {};
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  CHECK_FALSE(fs::exists(left));  // its process is gone
  CHECK(fs::exists(live));        // a live process's (a second replicator on this state dir) stays
  CHECK_FALSE(fs::exists(torn));
  REQUIRE(r->Close().ok());
}

TEST_CASE("a database removed with a spooled backlog uploads it when added again", "[spool]") {
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  f.Open();
  std::map<uint64_t, std::string> content;
  uint64_t txid = 0;
  REQUIRE(f.r->Sync(f.db, &txid).ok());
  const uint64_t durable_before = txid;
  f.replica.Down();
  for (int i = 0; i < 30; i++) Commit(w, i);
  REQUIRE_FALSE(f.r->Sync(f.db).ok());
  content[f.Stat().local_txid] = test::DumpContent(f.db);
  REQUIRE(f.Stat().spooled_segments > 0);
  REQUIRE(f.r->Remove(f.db).ok());
  REQUIRE(f.r->Add(f.db).ok());
  DatabaseStatus st = f.Stat();
  CHECK(st.spooled_segments > 0);           // still known...
  CHECK(st.durable_txid == durable_before);  // ...and not claimed durable
  f.replica.Up();
  REQUIRE(f.r->Sync(f.db, &txid).ok());
  content[txid] = test::DumpContent(f.db);
  CHECK(f.Stat().spooled_segments == 0);
  REQUIRE(f.r->Close().ok());
  f.CheckRestores(content);
}
