// [fault] Faults in the store, proven harmless (DESIGN.md §3, invariant 1).
//  - Store level (FaultStore over a file store): the wrapper itself, and the
//    readers the restore path is built from (ObjectReader, LoadGenerations,
//    ListGeneration, ApplyRetention) under failed, slow and torn requests.
//  - Replicator level, over real S3 (moto) behind tests/fault_proxy.py:
//    503 SlowDown / 500 bursts and connection resets, reset after the write
//    reached the server, and a store outage while the application keeps
//    committing (memory measured, everything caught up afterwards).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "fault_proxy.h"
#include "fault_store.h"
#include "format/layout.h"
#include "moto_server.h"
#include "replica/catalog.h"
#include "replica/retention.h"
#include "replite/replite.h"
#include "replica/object_reader.h"
#include "store/file_store.h"
#include "test_util.h"
#include "util/file_util.h"

extern char** environ;
using namespace replite;
using test::FaultProxy;
using test::FaultStore;
using test::S3Through;
using test::SetUpS3;
using test::StoreOp;

namespace {

using Clock = std::chrono::steady_clock;

int64_t EnvInt(const char* name, int64_t def) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoll(v) : def;
}

// Resident set size of this process, bytes.
uint64_t VmRssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

std::unique_ptr<Replicator> OpenReplicator(const std::string& state_dir, const std::string& url,
                                           std::vector<std::string>* log = nullptr, std::mutex* log_mu = nullptr,
                                           uint64_t memory_cap = 0) {
  ReplicatorOptions o;
  if (memory_cap) o.memory_cap = memory_cap;
  o.state_dir = state_dir;
  o.defaults.replica_url = url;
  o.defaults.poll_interval_ms = 0;
  o.logger = [log, log_mu](const std::string& line) {
    if (!log) return;
    std::lock_guard<std::mutex> l(*log_mu);
    if (log->size() < 10000) log->push_back(line);
  };
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  return r;
}

void CreateSchema(test::Writer& w) {
  w.Exec("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, n INTEGER, data BLOB)");
  w.Exec("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB)");
}


// A small replica in a file store (so the readers can be driven through
// a FaultStore); returns the last txid.
uint64_t MakeFileReplica(test::TempDir& dir, const std::string& url, int commits) {
  test::Writer w(dir / "src.db");
  w.Exec("CREATE TABLE t(v)");
  auto r = OpenReplicator(dir / "state", url);
  REQUIRE(r->Add(dir / "src.db").ok());
  uint64_t txid = 0;
  for (int i = 0; i < commits; i++) {
    w.Exec("INSERT INTO t VALUES (randomblob(3000))");
    REQUIRE(r->Sync(dir / "src.db", &txid).ok());
  }
  REQUIRE(r->Close().ok());
  return txid;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Store level: FaultStore

TEST_CASE("fault store: nth call, per operation, delay, partial write, outage, counters", "[fault]") {
  test::TempDir dir;
  auto fs = std::make_shared<FaultStore>(NewFileStore(dir.path()));
  REQUIRE(fs->Put("a/1", "one").ok());
  fs->FailNthCall(2, Code::kInternal);
  CHECK(fs->Put("a/2", "two").ok());
  Status s = fs->Put("a/3", "three");
  CHECK(s.code() == Code::kInternal);
  CHECK(s.message().find("a/3") != std::string::npos);
  CHECK(fs->Put("a/3", "three").ok());  // one-shot

  fs->FailOp(StoreOp::kGet, Code::kUnavailable, 2);
  std::string v;
  CHECK(fs->Get("a/1", &v).code() == Code::kUnavailable);
  CHECK(fs->Get("a/1", &v).code() == Code::kUnavailable);
  CHECK(fs->Get("a/1", &v).ok());
  CHECK(v == "one");
  fs->FailOp(StoreOp::kList, Code::kPermissionDenied);
  std::vector<ObjectInfo> objs;
  CHECK(fs->List("a/", &objs).code() == Code::kPermissionDenied);
  CHECK(fs->List("a/", &objs).code() == Code::kPermissionDenied);
  ObjectInfo info;
  CHECK(fs->Head("a/1", &info).ok());  // other operations unaffected
  fs->ClearOp(StoreOp::kList);
  CHECK(fs->List("a/", &objs).ok());
  CHECK(objs.size() == 3);

  fs->PartialWrite(0.5);
  const std::string big(1000, 'x');
  s = fs->Put("a/big", big);
  CHECK(s.code() == Code::kUnavailable);
  REQUIRE(fs->inner()->Get("a/big", &v).ok());
  CHECK(v.size() == 500);  // the torn object is there
  CHECK(fs->Put("a/big", big).ok());
  REQUIRE(fs->Get("a/big", &v).ok());
  CHECK(v == big);

  fs->SetDelayMs(100, StoreOp::kDelete);
  auto t0 = Clock::now();
  CHECK(fs->Delete({"a/big"}).ok());
  CHECK(Clock::now() - t0 >= std::chrono::milliseconds(100));
  fs->SetDelayMs(0, StoreOp::kDelete);

  fs->SetOutage(true);
  CHECK(fs->Put("a/4", "x").code() == Code::kUnavailable);
  CHECK(fs->Get("a/1", &v).code() == Code::kUnavailable);
  CHECK(fs->Delete({"a/1"}).code() == Code::kUnavailable);
  fs->Heal();
  CHECK(fs->Get("a/1", &v).ok());
  CHECK(fs->faults(StoreOp::kGet) == 3);
  CHECK(fs->faults(StoreOp::kPut) == 3);
  CHECK(fs->total_faults() == 9);
  INFO(fs->CountersString());
  CHECK(fs->calls(StoreOp::kList) == 3);

  // Concurrent use: counters stay exact.
  fs->FailOp(StoreOp::kHead, Code::kUnavailable, 50);
  std::vector<std::thread> ts;
  std::atomic<int> failed{0};
  for (int t = 0; t < 8; t++)
    ts.emplace_back([&] {
      ObjectInfo info;
      for (int i = 0; i < 25; i++)
        if (!fs->Head("a/1", &info).ok()) failed++;
    });
  for (auto& t : ts) t.join();
  CHECK(failed == 50);
  CHECK(fs->calls(StoreOp::kHead) == 201);
}

TEST_CASE("fault store: readers retry transient failures and name torn objects", "[fault]") {
  test::TempDir dir;
  const std::string prefix = dir.path().substr(1) + "/replica";  // file store rooted at "/"
  const uint64_t last = MakeFileReplica(dir, dir.url("replica"), 6);
  auto fs = std::make_shared<FaultStore>(NewFileStore("/"));

  // Generations: a failed LIST/GET must surface, never look like "empty".
  std::vector<GenerationEntry> gens;
  fs->FailOp(StoreOp::kGet, Code::kUnavailable);
  fs->FailOp(StoreOp::kList, Code::kUnavailable);
  Status s = LoadGenerations(fs.get(), prefix, &gens);
  CHECK(s.code() == Code::kUnavailable);
  fs->Heal();
  REQUIRE(LoadGenerations(fs.get(), prefix, &gens).ok());
  REQUIRE(gens.size() == 1);
  GenerationCatalog cat;
  fs->FailOp(StoreOp::kList, Code::kPermissionDenied);
  CHECK(ListGeneration(fs.get(), prefix, gens[0].id, &cat).code() == Code::kPermissionDenied);
  fs->Heal();
  REQUIRE(ListGeneration(fs.get(), prefix, gens[0].id, &cat).ok());
  CHECK(cat.max_txid() == last);
  REQUIRE(!cat.segments.empty());
  const ObjectRef seg = cat.segments.back();

  // Whole fetch: two transient failures are retried; a permanent one is not.
  std::string whole;
  fs->FailOp(StoreOp::kGet, Code::kUnavailable, 2);
  CHECK(ObjectReader::FetchWhole(fs.get(), seg.key, seg.size, &whole).ok());
  CHECK(whole.size() == seg.size);
  fs->FailOp(StoreOp::kGet, Code::kPermissionDenied, 1);
  const uint64_t before = fs->calls(StoreOp::kGet);
  s = ObjectReader::FetchWhole(fs.get(), seg.key, seg.size, &whole);
  CHECK(s.code() == Code::kPermissionDenied);
  CHECK(fs->calls(StoreOp::kGet) == before + 1);
  fs->Heal();

  // Ranged reader: transient failures while reading header/index/blocks.
  {
    ObjectReader rd(fs.get(), seg.key, seg.size);
    fs->FailOp(StoreOp::kGet, Code::kUnavailable, 3);
    REQUIRE(rd.Open().ok());
    DecodedBlock b;
    for (size_t i = 0; i < rd.index().size(); i++) REQUIRE(rd.ReadBlock(i, &b).ok());
    CHECK(fs->faults(StoreOp::kGet) >= 3);
    fs->Heal();
  }

  // A torn upload (partial object under the key): the reader says
  // corruption and names the object.
  std::string orig;
  REQUIRE(fs->Get(seg.key, &orig).ok());
  fs->PartialWrite(0.6);
  CHECK(fs->Put(seg.key, orig).code() == Code::kUnavailable);
  std::string torn;
  REQUIRE(fs->Get(seg.key, &torn).ok());
  REQUIRE(torn.size() < orig.size());
  {
    ObjectReader rd(fs.get(), seg.key, torn.size());
    Status os = rd.Open();
    CHECK(os.code() == Code::kCorruption);
    CHECK(os.message().find(seg.key) != std::string::npos);
  }
  {
    ObjectReader rd(fs.get(), seg.key, std::move(torn));
    Status os = rd.Open();
    CHECK(os.code() == Code::kCorruption);
  }
  // The full restore refuses too, leaving nothing behind; the re-PUT
  // (what the replicator's retry does) heals the replica.
  Status rs = Restore(dir.url("replica"), dir / "out.db", RestoreOptions());
  CHECK(rs.code() == Code::kCorruption);
  CHECK_FALSE(FileExists(dir / "out.db"));
  REQUIRE(fs->Put(seg.key, orig).ok());
  CHECK(test::RestoreContent(dir.url("replica"), dir / "out.db", 0) == test::DumpContent(dir / "src.db"));
}

TEST_CASE("fault store: retention under failed deletes loses no restore point", "[fault]") {
  test::TempDir dir;
  const std::string prefix = dir.path().substr(1) + "/replica";
  const std::string url = dir.url("replica");
  test::Writer w(dir / "src.db");
  w.Exec("CREATE TABLE t(v)");
  test::ManualClockEnv env(int64_t(1767225600) * 1000000);
  {
    ReplicatorOptions o;
    o.state_dir = dir / "state";
    o.env = &env;
    o.logger = [](const std::string&) {};
    o.defaults.replica_url = url;
    o.defaults.poll_interval_ms = 0;
    o.defaults.retention_ms = 10000;
    std::unique_ptr<Replicator> r;
    REQUIRE(Replicator::Open(o, &r).ok());
    REQUIRE(r->Add(dir / "src.db").ok());
    for (int i = 0; i < 12; i++) {
      env.Advance(5000000);
      w.Exec("INSERT INTO t VALUES (randomblob(2000))");
      REQUIRE(r->Sync(dir / "src.db").ok());
      if (i % 4 == 3) REQUIRE(r->Snapshot(dir / "src.db").ok());
    }
    REQUIRE(r->Close().ok());
  }
  auto fs = std::make_shared<FaultStore>(NewFileStore("/"));
  const int64_t now_ms = env.NowMicros() / 1000;
  RetentionStats st;
  for (int nth = 1; nth <= 4; nth++) {
    // Fail one call (LIST, HEAD, GET or DELETE, in whatever order retention
    // makes them), then check the latest state still restores.
    fs->FailNthCall(uint64_t(nth), Code::kUnavailable);
    Status s = ApplyRetention(fs.get(), prefix, now_ms, 10000, &st);
    INFO("fail call " << nth << ": " << s.ToString() << " " << fs->CountersString());
    CHECK(test::RestoreContent(url, dir / "out.db", 0) == test::DumpContent(dir / "src.db"));
  }
  fs->Heal();
  REQUIRE(ApplyRetention(fs.get(), prefix, now_ms, 10000, &st).ok());
  CHECK(test::RestoreContent(url, dir / "out.db", 0) == test::DumpContent(dir / "src.db"));
}

// ---------------------------------------------------------------------------------------
// Replicator level, real S3 behind the fault proxy

TEST_CASE("s3 faults: SlowDown/500 bursts, resets and stalls lose nothing", "[fault][s3]") {
  S3Through s3;
  if (!SetUpS3("replite-fault", "bursts/app", &s3)) return;
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::Writer w(db);
  CreateSchema(w);
  std::vector<std::string> log;
  std::mutex log_mu;
  auto r = OpenReplicator(dir / "state", s3.url, &log, &log_mu);
  REQUIRE(r->Add(db).ok());
  uint64_t txid = 0;
  REQUIRE(r->Sync(db, &txid).ok());
  std::map<uint64_t, std::string> content;  // txid -> content at that txid
  std::mt19937 rng(11);
  const std::vector<std::string> faults = {"mode=slowdown&n=3",          "mode=error500&n=3",
                                           "mode=reset&n=2&method=PUT", "mode=reset&n=1",
                                           "mode=stall&t=2&n=1",        "mode=slowdown&n=2&method=PUT",
                                           "mode=error500&n=2&method=GET"};
  int i = 0;
  const auto t0 = Clock::now();
  for (int round = 0; round < 14; round++) {
    s3.proxy->Set(faults[size_t(round) % faults.size()]);
    for (int k = 0; k < 3; k++) test::MutateVaried(w, rng, i++);
    if (round % 3 == 2) {
      Status ss = r->Snapshot(db);  // a snapshot (PutFile) through the faults too
      INFO(ss.ToString());
      CHECK(ss.ok());
    }
    Status s = r->Sync(db, &txid);
    INFO("round " << round << " (" << faults[size_t(round) % faults.size()] << "): " << s.ToString());
    REQUIRE(s.ok());
    content[txid] = test::DumpContent(db);
  }
  s3.proxy->Set("mode=pass");
  const std::string stats = s3.proxy->Control("/stats");
  WARN("fault proxy: " << stats << "; " << content.size() << " sync points in "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count() << " ms");
  CHECK(stats.find("slowdown") != std::string::npos);
  CHECK(stats.find("reset") != std::string::npos);
  REQUIRE(r->Close().ok());

  // Every sync point restores exactly, read through the proxy with faults
  // in the GETs as well.
  int n = 0;
  for (const auto& [tx, want] : content) {
    if (n++ % 2 == 0) s3.proxy->Set(n % 4 == 1 ? "mode=reset&n=1&method=GET" : "mode=slowdown&n=2&method=GET");
    CHECK(test::RestoreContent(s3.url, dir / "out.db", tx) == want);
  }
  s3.proxy->Set("mode=pass");
  CHECK(test::RestoreContent(s3.direct_url, dir / "out.db", 0) == test::DumpContent(db));
}

TEST_CASE("s3 faults: a reset after the write reached the server is harmless", "[fault][s3]") {
  S3Through s3;
  if (!SetUpS3("replite-fault", "after-write/app", &s3)) return;
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::Writer w(db);
  CreateSchema(w);
  auto r = OpenReplicator(dir / "state", s3.url);
  REQUIRE(r->Add(db).ok());
  REQUIRE(r->Sync(db).ok());
  std::mt19937 rng(5);
  std::map<uint64_t, std::string> content;
  for (int round = 0; round < 6; round++) {
    // The PUT is stored by S3 but the client never hears it: it must retry
    // (the same key, the same bytes) and carry on.
    s3.proxy->Set("mode=reset_after&n=2&method=PUT");
    for (int k = 0; k < 4; k++) test::MutateVaried(w, rng, round * 4 + k);
    if (round == 3) REQUIRE(r->Snapshot(db).ok());
    uint64_t txid = 0;
    Status s = r->Sync(db, &txid);
    INFO(s.ToString());
    REQUIRE(s.ok());
    content[txid] = test::DumpContent(db);
  }
  const std::string stats = s3.proxy->Control("/stats");
  INFO(stats);
  CHECK(stats.find("\"reset_after\": 12") != std::string::npos);
  s3.proxy->Set("mode=pass");
  REQUIRE(r->Close().ok());
  for (const auto& [tx, want] : content) CHECK(test::RestoreContent(s3.url, dir / "out.db", tx) == want);
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(s3.direct_url, &gens).ok());
  CHECK(gens.size() == 1);  // no spurious new generation from a retried write
}

namespace {

// cap: ReplicatorOptions::memory_cap (0: the default, 256 MiB). With a small
// cap the backlog no longer fits a job's share (cap / worker threads) and
// the segment is staged in the spool and streamed with PutFile.
void RunOutage(uint64_t cap, const std::string& prefix) {
  S3Through s3;
  if (!SetUpS3("replite-outage", prefix, &s3)) return;
  const int64_t outage_s = EnvInt("REPLITE_OUTAGE_S", 20);
  test::TempDir dir;
  const std::string db = dir / "app.db";
  {
    test::Writer w(db);
    CreateSchema(w);
  }
  std::vector<std::string> log;
  std::mutex log_mu;
  auto r = OpenReplicator(dir / "state", s3.url, &log, &log_mu, cap);
  REQUIRE(r->Add(db).ok());
  REQUIRE(r->Sync(db).ok());

  // The application: its own connection, kept open, one row per commit.
  // It is attached (the library's WAL hook schedules a sync after each
  // commit and owns checkpointing: no application checkpoint can restart
  // the WAL behind the library's back during the outage).
  sqlite3* app = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &app) == SQLITE_OK);
  sqlite3_busy_timeout(app, 10000);
  REQUIRE(r->Attach(db, app).ok());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> commits{0}, write_errors{0};
  std::atomic<int64_t> slowest_commit_us{0};
  std::thread writer([&] {
    uint64_t i = 0;
    while (!stop) {
      const std::string sql = "INSERT INTO items(name, n, data) VALUES ('row" + std::to_string(i) + "', " +
                              std::to_string(i) + ", randomblob(" + std::to_string(500 + (i * 7919) % 3500) + "))";
      const auto c0 = Clock::now();
      if (sqlite3_exec(app, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK) {
        commits++;
        i++;
      } else {
        write_errors++;
      }
      const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c0).count();
      if (us > slowest_commit_us) slowest_commit_us = us;
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
    }
  });

  std::atomic<uint64_t> peak_rss{0};
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling) {
      uint64_t v = VmRssBytes();
      if (v > peak_rss) peak_rss = v;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });

  std::this_thread::sleep_for(std::chrono::seconds(2));  // warm: some durable traffic
  uint64_t before_txid = 0;
  REQUIRE(r->WaitDurable(db, 30000, &before_txid).ok());
  const uint64_t rss_before = VmRssBytes();
  peak_rss = rss_before;

  s3.proxy->Set("mode=outage&t=" + std::to_string(outage_s));
  const auto outage_start = Clock::now();
  const auto outage_end = outage_start + std::chrono::seconds(outage_s);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  // During the outage: WaitDurable gives up with kTimeout (the capture goes
  // on), naming the database and the store error once one is known.
  int timeouts = 0, other = 0;
  std::string last_msg;
  uint64_t first_in_outage = UINT64_MAX, durable_in_outage = 0, max_wal = 0;
  while (Clock::now() + std::chrono::seconds(3) < outage_end) {
    uint64_t d = 0;
    Status s = r->WaitDurable(db, 2000, &d);
    INFO(s.ToString());
    CHECK_FALSE(s.ok());
    if (s.code() == Code::kTimeout) timeouts++;
    else other++;
    last_msg = s.ToString();
    if (first_in_outage == UINT64_MAX) first_in_outage = d;
    durable_in_outage = std::max(durable_in_outage, d);
    struct stat st;
    if (::stat((db + "-wal").c_str(), &st) == 0) max_wal = std::max<uint64_t>(max_wal, uint64_t(st.st_size));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  DatabaseStatus ds;
  REQUIRE(r->GetStatus(db, &ds).ok());
  const std::string status_error = ds.last_error;
  const uint64_t spooled_in_outage = ds.spooled_segments;
  const uint64_t commits_in_outage = commits.load();
  while (Clock::now() < outage_end) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  s3.proxy->Set("mode=pass");
  const uint64_t peak_during = peak_rss.load();

  // Recovery: everything committed catches up.
  const auto rec0 = Clock::now();
  uint64_t caught = 0;
  Status ws = r->WaitDurable(db, 60000, &caught);
  const auto catch_up_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - rec0).count();
  INFO(ws.ToString());
  CHECK(ws.ok());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  stop = true;
  writer.join();
  sampling = false;
  sampler.join();
  uint64_t final_txid = 0;
  ws = r->WaitDurable(db, 30000, &final_txid);  // bounded: never Sync (no deadline) here
  if (!ws.ok()) {
    // The replicator did not recover: its job may be stuck for good, and
    // Close() would wait for it forever. Leak it (each ctest case is its
    // own process) and fail with what we know.
    DatabaseStatus st;
    r->GetStatus(db, &st);
    r.release();
    FAIL("no catch-up after the outage: " << ws.ToString() << "; last_error '" << st.last_error << "'; proxy "
                                          << s3.proxy->Control("/stats") << "; peak RSS "
                                          << peak_rss.load() / 1048576.0 << " MiB");
  }
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(s3.direct_url, &gens).ok());
  REQUIRE(r->Close().ok());  // uninstalls the WAL hook
  sqlite3_close(app);

  const double mib = 1024.0 * 1024.0;
  WARN("outage " << outage_s << " s: " << commits_in_outage << " commits by mid-outage (" << commits.load()
                 << " total, " << write_errors.load() << " write errors); WaitDurable during outage: " << timeouts
                 << " x kTimeout, " << other << " x other (last: " << last_msg << "); GetStatus.last_error: '"
                 << status_error << "'; memory_cap " << (cap ? cap : 256ull << 20) / mib << " MiB; RSS before " << rss_before / mib << " MiB, peak during "
                 << peak_during / mib << " MiB (+" << (double(peak_during) - double(rss_before)) / mib
                 << " MiB); max WAL " << max_wal / mib << " MiB; caught up in " << catch_up_ms
                 << " ms; slowest commit " << slowest_commit_us.load() / 1000 << " ms; generations "
                 << gens.size() << "; final txid " << final_txid << "; spooled segments mid-outage " << spooled_in_outage << "; proxy " << s3.proxy->Control("/stats"));
  // The store's error is recorded and the captured segments were spooled,
  // so the WAL was still checkpointed: it stays near the checkpoint policy
  // (1,000 pages, ~4 MiB, plus what is written while one probe of the
  // store runs its retries) instead of growing for the whole outage. (A
  // request parked by libcurl behind a reset connection once hung here
  // until the HTTP watchdog, in about 1 of 4 runs: see "http: a request is
  // not parked behind a connection that stopped answering".)
  if (status_error.empty() || spooled_in_outage == 0) {
    std::lock_guard<std::mutex> l(log_mu);
    std::string tail;
    for (size_t k = log.size() > 12 ? log.size() - 12 : 0; k < log.size(); k++) tail += log[k] + "\n";
    UNSCOPED_INFO("replicator log tail:\n" << tail);
  }
  CHECK_FALSE(status_error.empty());
  CHECK(spooled_in_outage > 0);
  CHECK(write_errors == 0);  // the application is never failed...
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Sanitized code runs many times slower (TSan on 2 busy cores: 2.2 s once):
  // the bound is still far below the outage, which is what it guards.
  CHECK(slowest_commit_us < 5000000);  // ...nor blocked for network IO
#else
  CHECK(slowest_commit_us < 2000000);  // ...nor blocked for network IO
#endif
  CHECK(gens.size() == 1);  // no frame lost, so no new generation
  CHECK(timeouts > 0);
  CHECK(other == 0);
  CHECK(last_msg.find("not durable") != std::string::npos);
  // Nothing is acknowledged while the store is down (a job in flight at the
  // start may finish in the first 1.5 s).
  CHECK(durable_in_outage == first_in_outage);
  CHECK(first_in_outage >= before_txid);
  CHECK(max_wal < (16ull << 20));
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Sanitizer runtimes keep freed memory in quarantine and add shadow
  // memory: RSS says nothing about the library there.
  WARN("RSS bound not checked under a sanitizer");
#else
  CHECK(peak_during < rss_before + (64ull << 20));
#endif
  // Nothing lost: the replica holds every commit, byte for byte.
  RestoreResult rr;
  CHECK(test::RestoreContent(s3.direct_url, dir / "out.db", 0, &rr) == test::DumpContent(db));
  CHECK(rr.txid == final_txid);
  CHECK(rr.checksum_verified);
  sqlite3* c = nullptr;
  REQUIRE(sqlite3_open((dir / "out.db").c_str(), &c) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(c, "SELECT count(*) FROM items", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(uint64_t(sqlite3_column_int64(st, 0)) == commits.load());
  sqlite3_finalize(st);
  sqlite3_close(c);
}

}  // namespace

TEST_CASE("s3 outage: writes continue, memory bounded, everything catches up", "[fault][s3][outage]") {
  RunOutage(0, "outage/app");
}

// With a small memory cap the backlog is staged in the spool and uploaded
// with PutFile. Regression: an upload in flight when the store started
// refusing connections never completed (libcurl 7.88 left it "pending",
// timeouts included: curl #13227; it comes back when libcurl is handed more
// transfers than it may open connections for), so the database never
// caught up. Fixed by not doing that, and guarded by the HTTP pool's watchdog (HttpClientOptions::
// stall_abandon_ms), which abandons a transfer libcurl never ends. The test
// stays bounded (WaitDurable with deadlines, the replicator leaked on
// failure).
TEST_CASE("s3 outage with a small memory cap: the spooled backlog catches up", "[fault][s3][outage]") {
  RunOutage(32ull << 20, "outage-spool/app");
}
