// [compaction] Compaction levels (replica/compactor.h), the restore plan
// over them (restore/restore.cc) and the retention over levels
// (PruneLevels), on a clock the test moves. SQLite is the oracle: every
// restore is checked with PRAGMA integrity_check and compared with the
// source's content at the same txid.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <unistd.h>
#include <chrono>
#include <thread>

#include "fault_store.h"
#include "format/layout.h"
#include "metrics/metrics.h"
#include "replica/catalog.h"
#include "replica/compactor.h"
#include "replica/manifest.h"
#include "replica/recent_objects.h"
#include "replica/retention.h"
#include "replite/replite.h"
#include "store/counting_store.h"
#include "store/file_store.h"
#include "test_util.h"

using namespace replite;

namespace {

constexpr int64_t kSec = 1000, kMin = 60 * kSec, kHour = 60 * kMin;
constexpr int64_t kStartUs = int64_t(1767225600) * 1000000;

// The replica's key prefix: a file:// URL's path without its leading '/'
// (the store below is a FileStore rooted at '/').
std::string PrefixOf(const std::string& url) { return url.substr(std::string("file:///").size()); }

// A source database and its replica, written on the manual clock: one
// commit every `step_ms`, each synced, with what the database held after
// each txid and when it was captured.
struct Source {
  test::TempDir dir;
  std::string db = dir / "a.db", url = dir.url("replica");
  test::ManualClockEnv env{kStartUs};
  std::shared_ptr<test::FaultStore> store = std::make_shared<test::FaultStore>(NewFileStore("/"));
  std::unique_ptr<test::Writer> w;
  std::unique_ptr<Replicator> r;
  struct Point {
    int64_t ms;
    std::string content;
  };
  std::map<uint64_t, Point> points;  // txid -> state
  std::mt19937 rng{7};

  explicit Source(std::vector<int64_t> levels, int64_t snapshot_interval_ms = 0, int64_t retention_ms = 0) {
    // SQLite's defaults (autocheckpoint on), and auto_vacuum so that deletes
    // shrink the file (a compacted range then holds truncations).
    w = std::make_unique<test::Writer>(db, /*autocheckpoint=*/1000);
    w->Exec("PRAGMA auto_vacuum=FULL");
    w->Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v BLOB)");
    w->Exec("CREATE INDEX t_k ON t(k)");
    ReplicatorOptions o;
    o.state_dir = dir / "state";
    o.env = &env;
    o.logger = [](const std::string&) {};
    o.store_factory = [this](const std::string&, std::shared_ptr<ObjectStore>* out) {
      *out = store;
      return Status::OK();
    };
    o.defaults.replica_url = url;
    o.defaults.poll_interval_ms = 0;
    o.defaults.compaction_levels_ms = std::move(levels);
    if (snapshot_interval_ms) o.defaults.snapshot_interval_ms = snapshot_interval_ms;
    if (retention_ms) o.defaults.retention_ms = retention_ms;
    REQUIRE(Replicator::Open(o, &r).ok());
    REQUIRE(r->Add(db).ok());
    Sync();
  }
  ~Source() {
    if (r) r->Close();
  }
  int64_t now_ms() { return env.NowMicros() / 1000; }
  void Sync() {
    uint64_t txid = 0;
    REQUIRE(r->Sync(db, &txid).ok());
    points[txid] = {now_ms(), test::DumpContent(db)};
  }
  // One transaction: mostly small inserts and updates; now and then a bulk
  // insert, or a delete of most rows (the file shrinks).
  void Commit(int i) {
    const int kind = int(rng() % 20);
    if (kind == 0) {
      w->Exec("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 60) "
              "INSERT INTO t(k, v) SELECT x, randomblob(1500) FROM n");
    } else if (kind == 1) {
      w->Exec("DELETE FROM t WHERE id % 5 != 0");
    } else if (kind < 6) {
      w->Exec("UPDATE t SET v = randomblob(300) WHERE id IN (SELECT id FROM t ORDER BY random() LIMIT 3)");
    } else {
      w->Exec("INSERT INTO t(k, v) VALUES (" + std::to_string(i) + ", randomblob(" + std::to_string(100 + rng() % 900) +
              "))");
    }
  }
  // `n` commits, `step_ms` apart, each synced.
  void Run(int n, int64_t step_ms) {
    for (int i = 0; i < n; i++) {
      env.Advance(step_ms * 1000);
      Commit(i);
      Sync();
    }
  }
  GenerationCatalog Catalog() {
    std::vector<GenerationEntry> gens;
    REQUIRE(LoadGenerations(store.get(), PrefixOf(url), &gens).ok());
    REQUIRE(gens.size() == 1);
    GenerationCatalog cat;
    REQUIRE(ListGeneration(store.get(), PrefixOf(url), gens[0].id, &cat).ok());
    return cat;
  }
};

// Restores `txid` of `url` through `store` into a fresh file; when `must`,
// REQUIREs success. Checks integrity and content against `want`.
bool RestoreExact(const std::string& url, ObjectStore* store, const std::string& out, uint64_t txid,
                  const std::string& want, bool must, RestoreResult* res = nullptr) {
  RestoreOptions ro;
  ro.txid = txid;
  ro.store_factory = [store](const std::string&, std::shared_ptr<ObjectStore>* o) {
    *o = std::shared_ptr<ObjectStore>(store, [](ObjectStore*) {});
    return Status::OK();
  };
  RestoreResult local;
  RestoreResult* r = res ? res : &local;
  Status s = Restore(url, out, ro, r);
  INFO("restore of txid " << txid << ": " << s.ToString());
  if (must) REQUIRE(s.ok());
  if (!s.ok()) return false;
  CHECK(r->txid == txid);
  CHECK(test::IntegrityCheck(out) == "ok\n");
  CHECK(test::DumpContent(out) == want);
  return true;
}

// Every txid a restore must reach: a snapshot, inside a level 0 segment, or
// the end of a compacted object.
std::vector<uint64_t> RestorePoints(const GenerationCatalog& cat) {
  std::vector<uint64_t> out;
  for (const auto& s : cat.snapshots) out.push_back(s.first_txid);
  for (const auto& s : cat.segments)
    for (uint64_t t = s.first_txid; t <= s.last_txid; t++) out.push_back(t);
  for (const auto& c : cat.compacted) out.push_back(c.last_txid);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Sum of the store requests of one operation counted by a CountingStore.
double Requests(Metrics& m, const std::string& op) {
  double sum = 0;
  std::istringstream in(m.Render());
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("replite_store_requests_total{", 0) == 0 && line.find("op=\"" + op + "\"") != std::string::npos)
      sum += std::stod(line.substr(line.rfind(' ') + 1));
  return sum;
}

}  // namespace

TEST_CASE("compacted object keys parse back to themselves", "[compaction]") {
  for (const std::string prefix : {"", "db/x"}) {
    const std::string key = CompactedKey(prefix, "0123456789abcdef", 3, 17, 4242);
    ObjectInfo info;
    info.key = key;
    ObjectRef r;
    REQUIRE(ParseObjectKey(prefix, info, &r));
    CHECK(r.kind == ObjectRef::kSegment);
    CHECK(r.level == 3);
    CHECK(r.first_txid == 17);
    CHECK(r.last_txid == 4242);
    CHECK(r.generation == "0123456789abcdef");
    info.key = SegmentKey(prefix, "0123456789abcdef", 17, 4242);
    REQUIRE(ParseObjectKey(prefix, info, &r));
    CHECK(r.level == 0);
  }
  ObjectRef r;
  ObjectInfo bad;
  for (const std::string k : {"generations/0123456789abcdef/levels/0/0000000000000001-0000000000000002.seg",
                              "generations/0123456789abcdef/levels/a/0000000000000001-0000000000000002.seg",
                              "generations/0123456789abcdef/levels/1/0000000000000003-0000000000000002.seg",
                              "generations/0123456789abcdef/levels/10/0000000000000001-0000000000000002.seg"}) {
    bad.key = k;
    CHECK_FALSE(ParseObjectKey("", bad, &r));
  }
}

// The measurement: a database written for hours restored from a
// snapshot plus every per-sync segment since (one GET each, hundreds); with
// the levels, the latest restore reads the snapshot, a few compacted objects
// and the last interval's segments. Fails without compaction.
TEST_CASE("a restore after hours of commits reads few objects", "[compaction]") {
  Source src({30 * kSec, 5 * kMin, kHour});
  src.Run(360, 10 * kSec);  // the first hour (no level 3 object yet)
  // Store requests in a steady hour: the segments' PUTs plus compaction and
  // the retention over levels.
  uint64_t before[int(test::StoreOp::kCount)];
  for (int op = 0; op < int(test::StoreOp::kCount); op++) before[op] = src.store->calls(test::StoreOp(op));
  src.Run(2 * 360, 10 * kSec);  // 2 more hours, a commit every 10 s
  std::string per_hour;
  for (int op = 0; op < int(test::StoreOp::kCount); op++)
    per_hour += std::string(" ") + test::StoreOpName(test::StoreOp(op)) + " " +
                std::to_string((src.store->calls(test::StoreOp(op)) - before[op]) / 2);
  WARN("store requests per hour at one commit per 10 s (360 segments an hour):" << per_hour);
  const GenerationCatalog cat = src.Catalog();
  const uint64_t latest = src.points.rbegin()->first;
  Metrics m;
  DeclareStoreMetrics(&m);
  auto counting = NewCountingStore(src.store, &m);
  RestoreResult res;
  RestoreExact(src.url, counting.get(), src.dir / "latest.db", latest, src.points.rbegin()->second.content, true, &res);
  const double gets = Requests(m, "get");
  WARN("3 h at one commit per 10 s (" << src.points.size() << " txids): latest restore read " << res.objects
       << " objects with " << gets << " GETs; the replica holds " << cat.snapshots.size() << " snapshots, "
       << cat.segments.size() << " segments, " << cat.compacted.size() << " compacted objects");
  CHECK(res.objects <= 40);
  CHECK(gets <= 45);
  // `replite generations` counts the compacted objects apart from the
  // per-sync segments.
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(src.url, &gens).ok());
  REQUIRE(gens.size() == 1);
  CHECK(gens[0].segments == cat.segments.size());
  CHECK(gens[0].compacted == cat.compacted.size());
  CHECK(gens[0].compacted > 0);
  // Per-sync segments older than the hour kept in full are gone.
  CHECK(cat.segments.size() < 400);
}

TEST_CASE("every restore point after compaction and retention over levels is exact", "[compaction][retention]") {
  Source src({30 * kSec, 5 * kMin, kHour});
  src.Run(2 * 360 + 60, 10 * kSec);  // 2 h 10 min
  const GenerationCatalog cat = src.Catalog();
  REQUIRE(!cat.compacted.empty());
  const int64_t now = src.now_ms();
  std::set<uint64_t> points;
  for (uint64_t t : RestorePoints(cat)) points.insert(t);
  // Every txid of the last hour is a restore point.
  for (const auto& [txid, p] : src.points) {
    if (p.ms >= now - kHour) {
      INFO("txid " << txid << " captured " << (now - p.ms) / 1000 << " s ago");
      CHECK(points.count(txid) == 1);
    }
  }
  // Each is exact (every fourth one of the per-sync ones, to keep it short,
  // and every compacted object's end and snapshot).
  std::set<uint64_t> ends;
  for (const auto& c : cat.compacted) ends.insert(c.last_txid);
  for (const auto& s : cat.snapshots) ends.insert(s.first_txid);
  int n = 0, checked = 0;
  for (uint64_t t : points) {
    if (!ends.count(t) && n++ % 4 != 0) continue;
    REQUIRE(src.points.count(t) == 1);
    RestoreExact(src.url, src.store.get(), src.dir / ("r" + std::to_string(t) + ".db"), t, src.points[t].content, true);
    checked++;
  }
  CHECK(checked > 50);
  // Restore by time lands on the last restore point at or before it.
  for (int64_t ago : {int64_t(90) * kMin, int64_t(30) * kMin}) {
    RestoreOptions ro;
    ro.timestamp_ms = now - ago;
    ro.store_factory = [&](const std::string&, std::shared_ptr<ObjectStore>* o) {
      *o = src.store;
      return Status::OK();
    };
    RestoreResult rr;
    const std::string out = src.dir / ("t" + std::to_string(ago) + ".db");
    REQUIRE(Restore(src.url, out, ro, &rr).ok());
    REQUIRE(points.count(rr.txid) == 1);
    CHECK(src.points[rr.txid].ms <= now - ago);
    auto next = points.upper_bound(rr.txid);
    if (next != points.end()) CHECK(src.points[*next].ms > now - ago);
    CHECK(test::DumpContent(out) == src.points[rr.txid].content);
  }
}

// Retention by snapshots over a replica with levels: what is older than the
// newest snapshot before the window goes (compacted objects too), and every
// restore point left, by txid or by time inside the window, is exact.
TEST_CASE("retention by snapshots with compaction levels keeps the window restorable", "[compaction][retention]") {
  Source src({30 * kSec, 5 * kMin, kHour}, /*snapshot_interval_ms=*/kHour, /*retention_ms=*/2 * kHour);
  src.Run(5 * 180, 20 * kSec);  // 5 h, a commit every 20 s
  const GenerationCatalog cat = src.Catalog();
  const int64_t now = src.now_ms();
  CHECK(cat.snapshots.size() >= 2);
  CHECK(cat.snapshots.size() <= 4);
  const uint64_t base = cat.snapshots.front().first_txid;
  for (const auto& o : cat.segments) CHECK(o.last_txid > base);
  for (const auto& o : cat.compacted) CHECK(o.last_txid > base);
  CHECK(src.points[base].ms <= now - 2 * kHour);
  std::set<uint64_t> points;
  for (uint64_t t : RestorePoints(cat)) points.insert(t);
  for (const auto& [txid, p] : src.points)
    if (p.ms >= now - kHour) CHECK(points.count(txid) == 1);
  std::set<uint64_t> ends;
  for (const auto& c : cat.compacted) ends.insert(c.last_txid);
  int n = 0;
  for (uint64_t t : points)
    if (ends.count(t) || cat.snapshots.front().first_txid == t || n++ % 8 == 0)
      RestoreExact(src.url, src.store.get(), src.dir / ("s" + std::to_string(t) + ".db"), t, src.points[t].content,
                   true);
  // A txid inside a compacted range whose segments are gone is refused, and
  // the error names the next restore point.
  uint64_t gone = 0;
  for (const auto& [txid, p] : src.points)
    if (txid > base && !points.count(txid)) {
      gone = txid;
      break;
    }
  REQUIRE(gone != 0);
  RestoreOptions ro;
  ro.txid = gone;
  ro.store_factory = [&](const std::string&, std::shared_ptr<ObjectStore>* o) {
    *o = src.store;
    return Status::OK();
  };
  Status s = Restore(src.url, src.dir / "gone.db", ro);
  CHECK(s.code() == Code::kNotFound);
  CHECK(s.message().find("no longer a restore point") != std::string::npos);
  // By time, anywhere in the window: the last restore point at or before it.
  for (int64_t ago = 2 * kHour - kMin; ago > 0; ago -= 17 * kMin) {
    ro.txid = 0;
    ro.timestamp_ms = now - ago;
    RestoreResult rr;
    const std::string out = src.dir / ("w" + std::to_string(ago) + ".db");
    INFO(ago / 1000 << " s ago");
    REQUIRE(Restore(src.url, out, ro, &rr).ok());
    REQUIRE(points.count(rr.txid) == 1);
    CHECK(src.points[rr.txid].ms <= now - ago);
    auto next = points.upper_bound(rr.txid);
    if (next != points.end()) CHECK(src.points[*next].ms > now - ago);
    CHECK(test::IntegrityCheck(out) == "ok\n");
    CHECK(test::DumpContent(out) == src.points[rr.txid].content);
  }
}

TEST_CASE("an idle database makes no request when compaction is due", "[compaction]") {
  Source src({30 * kSec, 5 * kMin, kHour});
  src.Run(20, 10 * kSec);
  const uint64_t before = src.store->total_calls();
  for (int i = 0; i < 10; i++) {
    src.env.Advance(10 * kMin * 1000);
    REQUIRE(src.r->Sync(src.db).ok());
  }
  CHECK(src.store->total_calls() == before);
}

// Rounds of `commits` synced commits, each round followed by one compaction
// run by hand (levels 1 and 2, level 2 merging two level 1 objects), without
// pruning.
void CompactInRounds(Source& src, int rounds, int commits) {
  CompactionPolicy p;
  p.intervals_ms = {30 * kSec, 60 * kSec};
  const std::string gen = src.Catalog().id;
  for (int i = 0; i < rounds; i++) {
    src.Run(commits, 10 * kSec);
    CompactionStats cs;
    REQUIRE(CompactGeneration(src.store.get(), PrefixOf(src.url), gen, p, &cs).ok());
  }
}

// Retention over levels at its exact boundary: a level n object goes when the
// level n + 1 object covering it was last captured keep_ms ago, not a
// millisecond sooner.
TEST_CASE("retention over levels deletes covered objects exactly at the boundary", "[compaction][retention]") {
  Source src({});  // the test compacts by hand
  CompactInRounds(src, 4, 5);
  const std::string prefix = PrefixOf(src.url);
  GenerationCatalog cat = src.Catalog();
  std::vector<ObjectRef> l1, l2;
  for (const auto& c : cat.compacted) (c.level == 1 ? l1 : l2).push_back(c);
  REQUIRE(l1.size() == 4);
  REQUIRE(l2.size() == 2);
  const size_t segs = cat.segments.size();
  int64_t f = 0, l1_last_ms = 0, l2_last_ms = 0;
  REQUIRE(ReadObjectTimes(src.store.get(), l1[0].key, &f, &l1_last_ms).ok());
  REQUIRE(ReadObjectTimes(src.store.get(), l2[0].key, &f, &l2_last_ms).ok());
  const int64_t keep = kHour;
  LevelPruneStats ps;
  // One millisecond before: nothing goes.
  REQUIRE(PruneLevels(src.store.get(), prefix, cat.id, l1_last_ms + keep - 1, keep, 2, &ps).ok());
  CHECK(ps.objects_deleted == 0);
  // At the boundary of the first level 1 object: the segments it covers go,
  // no level 1 object yet (their cover is younger).
  REQUIRE(PruneLevels(src.store.get(), prefix, cat.id, l1_last_ms + keep, keep, 2, &ps).ok());
  CHECK(ps.objects_deleted == 5);
  GenerationCatalog after = src.Catalog();
  CHECK(after.segments.size() == segs - 5);
  CHECK(after.compacted.size() == 6);
  REQUIRE(PruneLevels(src.store.get(), prefix, cat.id, l2_last_ms + keep - 1, keep, 2, &ps).ok());
  CHECK(ps.objects_deleted == 0);  // the first level 2 object and the second level 1 one are a millisecond too young
  REQUIRE(PruneLevels(src.store.get(), prefix, cat.id, l2_last_ms + keep, keep, 2, &ps).ok());
  CHECK(ps.objects_deleted == 5 + 2);  // the second level 1 object's segments, and both level 1 objects
  after = src.Catalog();
  CHECK(after.compacted.size() == 4);
  CHECK(after.segments.size() == segs - 10);
  // Everything still a restore point is exact.
  for (uint64_t t : RestorePoints(after))
    RestoreExact(src.url, src.store.get(), src.dir / ("b" + std::to_string(t) + ".db"), t, src.points[t].content,
                 true);
}

// A crash (SIGKILL) at any point of compaction and pruning is a run stopped
// after some store request: the fault store fails request n with an error
// nothing retries (and the run stops there, as a killed process would), for
// every n. The replica must stay restorable at every restore point it then
// holds, and the next run must finish the work.
TEST_CASE("compaction stopped at every store request leaves every restore point exact", "[compaction][fault]") {
  Source src({});
  CompactInRounds(src, 3, 6);  // level 1 x 3, level 2 x 1
  src.Run(6, 10 * kSec);       // and segments not compacted yet
  const std::string prefix = PrefixOf(src.url);
  const std::string gen = src.Catalog().id;
  src.r->Close();
  src.r.reset();
  const int64_t far = src.now_ms() + 10 * kHour;
  CompactionPolicy p;
  p.intervals_ms = {30 * kSec, 60 * kSec};
  // One process run: a compaction (a level 1 object and a level 2 one) and
  // the pruning that deletes what they cover.
  auto run = [&](ObjectStore* st) -> Status {
    CompactionStats cs;
    Status s = CompactGeneration(st, prefix, gen, p, &cs);
    if (!s.ok()) return s;
    LevelPruneStats ps;
    return PruneLevels(st, prefix, gen, far, kHour, 2, &ps);
  };
  const std::string replica = src.dir / "replica", pristine = src.dir / "pristine";
  std::string out;
  REQUIRE(test::Shell("cp -a '" + replica + "' '" + pristine + "'", &out) == 0);
  auto restore = [&] {
    REQUIRE(test::Shell("rm -rf '" + replica + "' && cp -a '" + pristine + "' '" + replica + "'", &out) == 0);
  };
  // How many requests a whole run makes, and what it leaves.
  auto counter = std::make_shared<test::FaultStore>(NewFileStore("/"));
  REQUIRE(run(counter.get()).ok());
  const uint64_t total = counter->total_calls();
  const GenerationCatalog done = src.Catalog();
  REQUIRE(done.compacted.size() == 2);  // the two level 2 objects: what they cover is gone
  REQUIRE(done.segments.empty());
  REQUIRE(total > 10);
  auto check = [&](const std::string& when, bool all) {
    const GenerationCatalog cat = src.Catalog();
    std::set<uint64_t> ends;
    for (const auto& c : cat.compacted) ends.insert(c.last_txid);
    const std::vector<uint64_t> points = RestorePoints(cat);
    CHECK(points.back() == src.points.rbegin()->first);  // the latest is always a restore point
    for (uint64_t t : points) {
      if (!all && !ends.count(t) && t != points.back()) continue;
      INFO(when << ", txid " << t);
      RestoreExact(src.url, src.store.get(), src.dir / "check.db", t, src.points[t].content, true);
      ::unlink((src.dir / "check.db").c_str());
    }
  };
  for (uint64_t n = 1; n <= total; n++) {
    restore();
    auto faulty = std::make_shared<test::FaultStore>(NewFileStore("/"));
    faulty->FailNthCall(n, Code::kInternal);
    CHECK_FALSE(run(faulty.get()).ok());
    check("stopped at request " + std::to_string(n), true);
    REQUIRE(run(src.store.get()).ok());  // the next process
    check("after the run that followed request " + std::to_string(n), false);
    const GenerationCatalog after = src.Catalog();
    CHECK(after.compacted.size() == done.compacted.size());
    CHECK(after.segments.empty());
  }
}

namespace {

// One synthetic transaction of a level 0 segment: its pages (pgno -> byte
// the page is filled with) and the database size after it.
struct Tx {
  uint64_t txid;
  uint32_t db_pages;
  std::map<uint32_t, char> pages;
};

constexpr uint32_t kPs = 512;

// Stores a level 0 segment of `txs` (checksum after each = its txid, so a
// test can tell whose checksum an object carries).
void PutSegment(ObjectStore* store, const std::string& prefix, const std::string& gen, const std::vector<Tx>& txs) {
  SegmentHeader h;
  h.page_size = kPs;
  h.generation = gen;
  h.first_txid = txs.front().txid;
  h.last_txid = txs.back().txid;
  StringSink sink;
  SegmentBuilder b(&sink, h);
  REQUIRE(b.Start().ok());
  for (const Tx& t : txs) {
    std::vector<uint32_t> pgnos;
    std::string data;
    for (const auto& [p, c] : t.pages) {
      pgnos.push_back(p);
      data += std::string(kPs, c);
    }
    REQUIRE(b.AddBlock(t.txid, int64_t(t.txid) * 1000, t.db_pages, t.txid, kBlockTxEnd, pgnos, data).ok());
  }
  h.first_ts_ms = int64_t(h.first_txid) * 1000;
  h.last_ts_ms = int64_t(h.last_txid) * 1000;
  h.checksum_after = h.last_txid;
  h.pages_after = txs.back().db_pages;
  REQUIRE(b.Finish(h).ok());
  REQUIRE(store->Put(SegmentKey(prefix, gen, h.first_txid, h.last_txid), sink.buffer()).ok());
}

}  // namespace

// The format's promise for a compacted object (FORMAT.md, "Compaction
// levels"): the last version of each page, nothing past the final size, and
// zeros for a page cut off by a shrink and grown over without being written;
// a segment re-captured after a crash (overlapping) merges the same.
TEST_CASE("a compacted range that shrank and grew again holds zeros for the pages it cut off", "[compaction]") {
  test::TempDir dir;
  auto store = NewFileStore(dir.path());
  const std::string prefix = "db", gen = "0123456789abcdef";
  std::map<uint32_t, char> first;
  for (uint32_t p = 1; p <= 10; p++) first[p] = char('a' + p);
  PutSegment(store.get(), prefix, gen, {{1, 10, first}, {2, 10, {{3, 'X'}}}});
  PutSegment(store.get(), prefix, gen, {{3, 5, {{1, 'Y'}}}, {4, 8, {{8, 'Z'}}}});  // shrink to 5, grow to 8
  PutSegment(store.get(), prefix, gen, {{2, 10, {{3, 'X'}}}, {3, 5, {{1, 'Y'}}}, {4, 8, {{8, 'Z'}}}});  // a re-capture
  PutSegment(store.get(), prefix, gen, {{5, 8, {{2, 'W'}}}});
  CompactionPolicy p;
  p.intervals_ms = {30 * kSec};
  CompactionStats cs;
  REQUIRE(CompactGeneration(store.get(), prefix, gen, p, &cs).ok());
  CHECK(cs.objects_written == 1);
  std::string obj;
  REQUIRE(store->Get(CompactedKey(prefix, gen, 1, 1, 5), &obj).ok());
  SegmentHeader h;
  std::vector<DecodedBlock> blocks;
  REQUIRE(DecodeSegment(obj, &h, &blocks).ok());
  CHECK(h.first_txid == 1);
  CHECK(h.last_txid == 5);
  CHECK(h.pages_after == 8);
  CHECK(h.checksum_after == 5);
  CHECK(h.last_ts_ms == 5000);
  REQUIRE(blocks.size() == 1);
  const DecodedBlock& b = blocks[0];
  CHECK(b.txid == 5);
  CHECK(b.db_pages == 8);
  CHECK(b.checksum_after == 5);
  CHECK((b.flags & kBlockTxEnd) != 0);
  std::map<uint32_t, char> got;
  for (size_t k = 0; k < b.pgnos.size(); k++) {
    const std::string page = b.pages.substr(k * kPs, kPs);
    CHECK(page == std::string(kPs, page[0]));
    got[b.pgnos[k]] = page[0];
  }
  const std::map<uint32_t, char> want = {{1, 'Y'}, {2, 'W'}, {3, 'X'}, {4, char('a' + 4)},
                                         {5, char('a' + 5)}, {6, '\0'}, {7, '\0'}, {8, 'Z'}};
  CHECK(got == want);
  SegmentHeader vh;
  CHECK(VerifyCompacted(store.get(), CompactedKey(prefix, gen, 1, 1, 5), obj.size(), gen, 1, 5, &vh).ok());
  // A damaged copy is refused before anything it covers could be deleted.
  obj[obj.size() / 2] ^= 1;
  REQUIRE(store->Put(CompactedKey(prefix, gen, 1, 1, 5), obj).ok());
  CHECK(VerifyCompacted(store.get(), CompactedKey(prefix, gen, 1, 1, 5), obj.size(), gen, 1, 5, &vh).code() ==
        Code::kCorruption);
  LevelPruneStats ps;
  CHECK_FALSE(PruneLevels(store.get(), prefix, gen, 1ll << 50, 0, 1, &ps).ok());
  GenerationCatalog cat;
  REQUIRE(ListGeneration(store.get(), prefix, gen, &cat).ok());
  CHECK(cat.segments.size() == 4);
}

// FORMAT.md: a reader checks the manifest's version; a replica is brought to
// version 2 before its first compacted object, so a reader that knows only
// version 1 refuses it instead of missing objects.
TEST_CASE("the manifest is version 2 before a generation's first compacted object", "[compaction]") {
  Source src({});
  src.Run(5, 10 * kSec);
  const std::string prefix = PrefixOf(src.url);
  const std::string gen = src.Catalog().id;
  std::string text;
  REQUIRE(src.store->Get(ManifestKey(prefix), &text).ok());
  // A replica written before levels existed.
  REQUIRE(text.rfind("replite-manifest 2\n", 0) == 0);
  text.replace(0, std::string("replite-manifest 2").size(), "replite-manifest 1");
  REQUIRE(src.store->Put(ManifestKey(prefix), text).ok());
  Manifest m;
  REQUIRE(DecodeManifest(text, &m).ok());
  CHECK(m.version == 1);
  CompactionPolicy p;
  p.intervals_ms = {30 * kSec};
  CompactionStats cs;
  REQUIRE(CompactGeneration(src.store.get(), prefix, gen, p, &cs).ok());
  CHECK(cs.objects_written == 1);
  REQUIRE(src.store->Get(ManifestKey(prefix), &text).ok());
  CHECK(text.rfind("replite-manifest 2\n", 0) == 0);
  REQUIRE(DecodeManifest(text, &m).ok());
  CHECK(m.version == 2);
  CHECK(m.generations.size() == 1);
  CHECK(DecodeManifest("replite-manifest 3\npage_size 4096\n", &m).code() == Code::kCorruption);
}

namespace {

// Bytes this process has passed to write(2)/pwrite(2) so far (/proc/self/io).
uint64_t BytesWritten() {
  std::ifstream in("/proc/self/io");
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v)
    if (k == "wchar:") return v;
  return 0;
}

}  // namespace

// Issue 15 item 3: each page is written once. A snapshot of a 4 MB database
// followed by 300 commits rewriting the same page: applying every object in
// order wrote the snapshot and then each version again (5.26 MB for a 4.02
// MB database); newest first writes each page of the result once (4.02 MB).
TEST_CASE("a restore writes each page of the result once", "[compaction]") {
  Source src({});
  src.w->Exec("CREATE TABLE big(v BLOB)");
  for (int i = 0; i < 4; i++) src.w->Exec("INSERT INTO big VALUES (randomblob(1000000))");
  src.Sync();
  REQUIRE(src.r->Snapshot(src.db).ok());
  for (int i = 0; i < 300; i++) {
    src.env.Advance(10 * kSec * 1000);
    src.w->Exec("UPDATE t SET v = randomblob(2000) WHERE id = 1");
    if (i == 0) src.w->Exec("INSERT INTO t(k, v) VALUES (1, randomblob(2000))");
    src.Sync();
  }
  const uint64_t latest = src.points.rbegin()->first;
  const uint64_t db_bytes = uint64_t(std::filesystem::file_size(src.db));
  RestoreOptions ro;
  ro.txid = latest;
  ro.store_factory = [&](const std::string&, std::shared_ptr<ObjectStore>* o) {
    *o = src.store;
    return Status::OK();
  };
  RestoreResult rr;
  const uint64_t before = BytesWritten();
  REQUIRE(Restore(src.url, src.dir / "once.db", ro, &rr).ok());
  const uint64_t wrote = BytesWritten() - before;
  CHECK(test::IntegrityCheck(src.dir / "once.db") == "ok\n");
  CHECK(test::DumpContent(src.dir / "once.db") == src.points.rbegin()->second.content);
  WARN("restore of a " << db_bytes << "-byte database from " << rr.objects << " objects wrote " << wrote << " bytes");
  CHECK(rr.objects > 100);
  CHECK(wrote < db_bytes + db_bytes / 10);
}

// Compaction's inputs are what this process stored seconds earlier: it
// merges them from memory (replica/recent_objects.h) instead of GETting
// each back, one GET per per-sync segment before.
TEST_CASE("compaction merges the segments this process just stored without reading them back", "[compaction]") {
  Source src({30 * kSec, 5 * kMin, kHour});
  const uint64_t gets_before = src.store->calls(test::StoreOp::kGet);
  src.Run(360, 10 * kSec);
  const uint64_t gets = src.store->calls(test::StoreOp::kGet) - gets_before;
  double local = 0, store = 0;
  std::istringstream in(src.r->Metrics());
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("replite_compaction_inputs_total{", 0) != 0) continue;
    const double v = std::stod(line.substr(line.rfind(' ') + 1));
    if (line.find("source=\"local\"") != std::string::npos) local += v;
    if (line.find("source=\"store\"") != std::string::npos) store += v;
  }
  INFO("inputs merged from memory " << local << ", from the store " << store << "; GETs in the hour " << gets);
  CHECK(local >= 350);  // ~360 segments into level 1, ~12 level 1 objects into level 2
  CHECK(store == 0);
  // Before, every input was one GET; now the GETs are the read-backs of
  // compacted objects, their verification and one header per level and run.
  CHECK(gets < local);
}

TEST_CASE("recent objects are taken once and the oldest leave first past the budget", "[compaction]") {
  RecentObjects r(/*budget_bytes=*/1000, /*max_object_bytes=*/400);
  r.Keep("a", std::string(300, 'a'));
  r.Keep("b", std::string(300, 'b'));
  r.Keep("big", std::string(401, 'x'));  // over max_object_bytes: not kept
  std::string out;
  CHECK_FALSE(r.Take("big", &out));
  CHECK(r.Take("a", &out));
  CHECK(out == std::string(300, 'a'));
  CHECK_FALSE(r.Take("a", &out));  // once
  r.Keep("c", std::string(300, 'c'));
  r.Keep("d", std::string(300, 'd'));
  r.Keep("e", std::string(300, 'e'));  // 1,200 bytes: "b", the oldest, goes
  CHECK(r.bytes() == 900);
  CHECK_FALSE(r.Take("b", &out));
  for (const char* k : {"c", "d", "e"}) CHECK(r.Take(k, &out));
  CHECK(r.bytes() == 0);
  // What waited too long goes (a database that went idle is not compacted).
  r.Keep("old", std::string(100, 'o'));
  r.Expire(/*max_age_us=*/3600ll * 1000 * 1000);
  CHECK(r.bytes() == 100);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  r.Expire(/*max_age_us=*/1000);
  CHECK(r.bytes() == 0);
  CHECK_FALSE(r.Take("old", &out));
  // Many taken keys do not make the queue grow without bound.
  for (int i = 0; i < 10000; i++) {
    r.Keep("k" + std::to_string(i), "v");
    REQUIRE(r.Take("k" + std::to_string(i), &out));
  }
  CHECK(r.bytes() == 0);
}

TEST_CASE("first compactions after a start are spread over the level-1 interval", "[compaction]") {
  // 1,000 databases added one after another (consecutive ids) that all
  // change in the same second after a restart: their first compactions are
  // spread over the next interval, not all in one second.
  std::vector<int> per_second(10, 0);
  for (uint32_t id = 1; id <= 1000; id++) {
    const uint32_t s = CompactionStaggerS(id, 10 * 1000);
    REQUIRE(s < 10);
    per_second[s]++;
  }
  for (int n : per_second) {
    CHECK(n >= 70);
    CHECK(n <= 130);
  }
  // An interval under two seconds has nothing to spread over.
  for (uint32_t id = 1; id <= 100; id++) {
    CHECK(CompactionStaggerS(id, 1000) == 0);
    CHECK(CompactionStaggerS(id, 200) == 0);
  }
  // An hour's interval spreads over the hour.
  uint32_t lo = UINT32_MAX, hi = 0;
  for (uint32_t id = 1; id <= 1000; id++) {
    lo = std::min(lo, CompactionStaggerS(id, 3600 * 1000));
    hi = std::max(hi, CompactionStaggerS(id, 3600 * 1000));
  }
  CHECK(lo < 60);
  CHECK(hi >= 3540);
  CHECK(hi < 3600);
}
