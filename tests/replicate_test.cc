// [e2e] Replicate with a writer on a plain sqlite3 connection, restore at
// many points (by txid and by time), and compare with the source as it was
// at each point: PRAGMA integrity_check, row content, and the content
// checksum of the live source.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>

#include "format/layout.h"
#include "replite/replite.h"
#include "test_util.h"
#include "util/file_util.h"

using namespace replite;

namespace {

struct Point {
  std::string content;
  uint64_t checksum = 0;
  int64_t ts_ms = 0;
};

struct Fixture {
  test::TempDir dir;
  std::string db = dir / "app.db";
  std::string url = dir.url("replica");
  test::ManualClockEnv env{int64_t(1767225600) * 1000000};  // 2026-01-01T00:00:00Z
  std::unique_ptr<Replicator> r;
  std::vector<std::string> log;

  void Open(DatabaseOptions o = DatabaseOptions()) {
    ReplicatorOptions ro;
    ro.state_dir = dir / "state";
    ro.env = &env;
    ro.worker_threads = 2;
    ro.logger = [this](const std::string& l) { log.push_back(l); };
    o.replica_url = url;
    o.poll_interval_ms = 0;  // the test drives syncs
    ro.defaults = o;
    REQUIRE(Replicator::Open(ro, &r).ok());
    Status s = r->Add(db);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  // Closes the replicator (as a process that exits cleanly would).
  void Stop() {
    REQUIRE(r->Close().ok());
    r.reset();
  }
  uint64_t Sync() {
    uint64_t txid = 0;
    Status s = r->Sync(db, &txid);
    INFO(s.ToString());
    REQUIRE(s.ok());
    return txid;
  }
  size_t Count(const std::string& word) {
    size_t n = 0;
    for (const auto& l : log) n += l.find(word) != std::string::npos;
    return n;
  }
  void CheckRestore(const RestoreOptions& o, const Point& want, uint64_t want_txid) {
    static int n = 0;
    const std::string out = dir / ("restored-" + std::to_string(++n) + ".db");
    RestoreResult rr;
    Status s = Restore(url, out, o, &rr);
    INFO("restore txid=" << o.txid << " ts=" << o.timestamp_ms.value_or(-1) << ": " << s.ToString());
    REQUIRE(s.ok());
    CHECK(rr.txid == want_txid);
    CHECK(rr.checksum_verified);
    CHECK(rr.checksum == want.checksum);
    CHECK(test::IntegrityCheck(out) == "ok\n");
    CHECK(test::DumpContent(out) == want.content);
  }
  // The latest restore equals the live source, which is at `txid`.
  void CheckLatest(uint64_t txid) {
    Point p{test::DumpContent(db), test::LiveChecksum(db), 0};
    CheckRestore(RestoreOptions(), p, txid);
  }
};

// n one-row commits into t(v): prefix0, prefix1, ...
void InsertRows(test::Writer& w, const std::string& prefix, int n) {
  for (int i = 0; i < n; i++) w.Exec("INSERT INTO t(v) VALUES ('" + prefix + std::to_string(i) + "')");
}

}  // namespace

TEST_CASE("replicate a varied workload and restore every sampled txid and time", "[e2e]") {
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, n INTEGER, data BLOB)");
  w.Exec("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB)");
  DatabaseOptions o;
  o.checkpoint_pages = 400;  // several of our own checkpoints and WAL restarts during the run
  f.Open(o);
  const uint64_t base = f.Sync();
  CHECK(base == 1);
  std::mt19937 rng(42);
  std::map<uint64_t, Point> points;  // txid -> state right after it
  uint64_t txid = base;
  const int kTx = 2500;
  for (int i = 0; i < kTx; i++) {
    f.env.Advance(1000000);  // each transaction one second after the previous
    if (i == 1200) {
      w.Exec("ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'n'");
    } else if (i == 1800) {
      w.Exec("DELETE FROM blobs WHERE id % 2 = 0");
      if (sqlite3_changes(w.db()) > 0) txid++;
      w.Exec("VACUUM");  // rewrites and shrinks the database
    } else {
      test::MutateVaried(w, rng, i);
    }
    txid++;
    const bool sample = i % 97 == 0 || i == 1200 || i == 1800 || i == kTx - 1;
    if (sample) {
      points[txid] = {test::DumpContent(f.db), test::LiveChecksum(f.db), f.env.NowMicros() / 1000};
    }
    // Mostly one transaction per sync, sometimes a batch of several.
    if (sample || rng() % 4 != 0) {
      uint64_t got = f.Sync();
      INFO("transaction " << i);
      REQUIRE(got == txid);
    }
  }
  REQUIRE(f.Sync() == txid);
  CHECK(f.Count("new generation") == 1);  // only the first sync
  DatabaseStatus st;
  REQUIRE(f.r->GetStatus(f.db, &st).ok());
  CHECK(st.checkpoints > 0);
  CHECK(st.last_error.empty());

  for (const auto& [t, p] : points) {
    RestoreOptions ro;
    ro.txid = t;
    f.CheckRestore(ro, p, t);
  }
  // By time: half a second after each sampled commit.
  int k = 0;
  for (const auto& [t, p] : points) {
    if (k++ % 3) continue;
    RestoreOptions ro;
    ro.timestamp_ms = p.ts_ms + 500;
    f.CheckRestore(ro, p, t);
  }
  // Latest.
  f.CheckRestore(RestoreOptions(), points.rbegin()->second, txid);
  REQUIRE(f.r->Close().ok());
}

TEST_CASE("another connection truncates the WAL mid-run: every captured txid stays restorable", "[e2e]") {
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  f.Open();
  std::map<uint64_t, Point> points;
  uint64_t txid = f.Sync();
  auto commit = [&](int i) {
    f.env.Advance(1000000);
    w.Exec("INSERT INTO t(v) VALUES ('" + std::to_string(i) + "' || hex(randomblob(200)))");
  };
  auto sync = [&] {
    txid = f.Sync();
    points[txid] = {test::DumpContent(f.db), test::LiveChecksum(f.db), f.env.NowMicros() / 1000};
  };
  // Another process's TRUNCATE checkpoint; its output ends with the row
  // busy|log|checkpointed.
  auto truncate = [&] {
    std::string out;
    REQUIRE(test::Sqlite3(f.db, "PRAGMA busy_timeout=100; PRAGMA wal_checkpoint(TRUNCATE);", &out) == 0);
    return out;
  };
  // Phase 1: captured, then someone else checkpoints with TRUNCATE after we
  // synced: nothing is lost, no new generation.
  for (int i = 0; i < 50; i++) {
    commit(i);
    sync();
  }
  truncate();
  for (int i = 50; i < 80; i++) {
    commit(i);
    sync();
  }
  CHECK(f.Count("new generation") == 1);
  // Phase 2: commits not captured yet, and a TRUNCATE while the database is
  // hot: replite's read mark holds it back (busy), so nothing is lost.
  for (int i = 80; i < 90; i++) commit(i);
  CHECK(truncate().find("\n1|") != std::string::npos);
  commit(90);
  sync();
  CHECK(f.Count("new generation") == 1);
  // Phase 3: with replite stopped nothing holds a mark: commits that were
  // never captured are checkpointed and the WAL truncated before we look,
  // frames truly lost. A new generation starts from a snapshot; earlier
  // txids stay restorable from the old one.
  f.Stop();
  for (int i = 91; i < 100; i++) commit(i);
  CHECK(truncate().find("\n0|") != std::string::npos);
  f.Open();
  commit(100);
  sync();
  CHECK(f.Count("new generation") == 2);
  CHECK(f.Count("restarted or truncated by another connection") == 1);
  for (int i = 101; i < 110; i++) {
    commit(i);
    sync();
  }
  for (const auto& [t, p] : points) {
    RestoreOptions ro;
    ro.txid = t;
    f.CheckRestore(ro, p, t);
  }
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(f.url, &gens).ok());
  REQUIRE(gens.size() == 2);
  CHECK(gens[1].first_txid == gens[0].last_txid + 1);  // txids continue across generations
  REQUIRE(f.r->Close().ok());
}

TEST_CASE("the application's own autocheckpoint does not break exactness", "[e2e]") {
  Fixture f;
  test::Writer w(f.db, /*autocheckpoint=*/20);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  f.Open();
  std::map<uint64_t, Point> points;
  uint64_t txid = f.Sync();
  for (int i = 0; i < 120; i++) {
    f.env.Advance(1000000);
    w.Exec("INSERT INTO t(v) VALUES (randomblob(3000))");
    if (i % 3 == 0) w.Exec("UPDATE t SET v = randomblob(100) WHERE id = " + std::to_string(1 + i / 2));
    txid = f.Sync();
    points[txid] = {test::DumpContent(f.db), test::LiveChecksum(f.db), f.env.NowMicros() / 1000};
  }
  for (const auto& [t, p] : points) {
    RestoreOptions ro;
    ro.txid = t;
    f.CheckRestore(ro, p, t);
  }
  REQUIRE(f.r->Close().ok());
}

TEST_CASE("a restart resumes from the saved position without a new snapshot", "[e2e]") {
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  f.Open();
  for (int i = 0; i < 20; i++) w.Exec("INSERT INTO t(v) VALUES ('a" + std::to_string(i) + "')");
  uint64_t t1 = f.Sync();
  f.Stop();
  // Commits while the replicator is down are captured after the restart.
  for (int i = 0; i < 20; i++) w.Exec("INSERT INTO t(v) VALUES ('b" + std::to_string(i) + "')");
  f.Open();
  uint64_t t2 = f.Sync();
  CHECK(t2 == t1 + 20);
  CHECK(f.Count("new generation") == 1);
  // Written since the restart, so not quiet: this first sync does not
  // checkpoint (after a restart 1,000 hot databases would all checkpoint
  // at once). Once nothing changed for checkpoint_quiet_ms, it does.
  DatabaseStatus st;
  REQUIRE(f.r->GetStatus(f.db, &st).ok());
  CHECK(st.checkpoints == 0);
  f.env.Advance((DatabaseOptions().checkpoint_quiet_ms + 1) * 1000);
  CHECK(f.Sync() == t2);
  REQUIRE(f.r->GetStatus(f.db, &st).ok());
  CHECK(st.checkpoints == 1);
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(f.url, &gens).ok());
  REQUIRE(gens.size() == 1);
  CHECK(gens[0].snapshots == 1);
  Point p{test::DumpContent(f.db), test::LiveChecksum(f.db), 0};
  f.CheckRestore(RestoreOptions(), p, t2);
  REQUIRE(f.r->Close().ok());
}

// A database that commits rarely parks its position after each job (issue
// 20: core/slot_park.cc); the quiet checkpoint its timer brings later must
// still see the frames it left in the WAL (the slot's parked_frames).
TEST_CASE("a parked database still gets its quiet checkpoint", "[e2e]") {
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  DatabaseOptions o;
  o.checkpoint_quiet_ms = 2000;
  f.Open(o);
  REQUIRE(f.r->Notify(f.db).ok());  // notified: no polls, a quiet timer
  f.Sync();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the Notify's own job ran
  f.env.Advance(int64_t(11) * 1000 * 1000);  // idle longer than kParkAfterMs: the next job parks at its end
  w.Exec("INSERT INTO t(v) VALUES ('rare')");
  const uint64_t txid = f.Sync();
  DatabaseStatus st;
  REQUIRE(f.r->GetStatus(f.db, &st).ok());
  CHECK(st.checkpoints == 0);
  CHECK(st.wal_frames > 0);
  f.env.Advance(2500 * 1000);
  for (int i = 0; i < 1000 && st.checkpoints == 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(f.r->GetStatus(f.db, &st).ok());
  }
  CHECK(st.checkpoints == 1);
  CHECK(st.durable_txid == txid);
  f.CheckLatest(txid);
  REQUIRE(f.r->Close().ok());
}

// A notified database is not polled, so a timer brings its quiet
// checkpoint once writes stop. Every job used to arm one more: a hot
// database kept one entry per commit of the last checkpoint_quiet_ms in the
// timer queue (60,000 at 1,000 commits/s) and ran a second, empty job per
// commit when they came due. One entry now, moved while it keeps changing.
TEST_CASE("a notified database keeps one quiet-checkpoint timer however often it syncs", "[e2e]") {
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  DatabaseOptions o;
  o.checkpoint_quiet_ms = 2000;
  f.Open(o);
  f.Sync();
  uint64_t txid = 0;
  for (int i = 0; i < 15; i++) {
    f.env.Advance(100 * 1000);
    w.Exec("INSERT INTO t(v) VALUES ('x" + std::to_string(i) + "')");
    REQUIRE(f.r->Notify(f.db).ok());
    txid = f.Sync();
  }
  std::string m = f.r->Metrics();
  INFO(m);
  // The housekeeping timer, the first-syncs timer (not due on this clock),
  // the last notify batch and the quiet timer: not one per sync.
  CHECK(test::MetricSum(m, "replite_timers_armed") <= 4);
  DatabaseStatus st;
  REQUIRE(f.r->GetStatus(f.db, &st).ok());
  CHECK(st.checkpoints == 0);
  // Jobs started by a timer (no series until the first).
  auto timer_jobs_in = [](const std::string& text) {
    const std::string series = "\nreplite_polls_total{outcome=\"timer\"} ";
    const size_t p = text.find(series);
    return p == std::string::npos ? 0.0 : std::stod(text.substr(p + series.size()));
  };
  const double timer_jobs = timer_jobs_in(m);
  // Quiet now: the one timer runs one job, which checkpoints.
  f.env.Advance(2500 * 1000);
  for (int i = 0; i < 1000 && st.checkpoints == 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(f.r->GetStatus(f.db, &st).ok());
  }
  CHECK(st.checkpoints == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  m = f.r->Metrics();
  CHECK(timer_jobs_in(m) - timer_jobs <= 2);
  f.CheckLatest(txid);
  REQUIRE(f.r->Close().ok());
}

namespace {

// The saved position of `db` in the position store (state_dir/positions.db),
// and a way to rewrite it, field by field (see Position::Encode: field 14 is
// expect_restart).
std::vector<std::string> SavedPosition(const std::string& state, const std::string& db) {
  test::Writer ps(state + "/positions.db");
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(ps.db(), "SELECT pos FROM positions WHERE path = ?", -1, &st, nullptr) == SQLITE_OK);
  sqlite3_bind_text(st, 1, db.c_str(), -1, SQLITE_TRANSIENT);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  std::istringstream in(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  REQUIRE(fields.size() > 14);
  return fields;
}

void SavePosition(const std::string& state, const std::string& db, const std::vector<std::string>& fields) {
  std::string pos;
  for (const auto& f : fields) pos += (pos.empty() ? "" : " ") + f;
  test::Writer ps(state + "/positions.db");
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(ps.db(), "UPDATE positions SET pos = ? WHERE path = ?", -1, &st, nullptr) == SQLITE_OK);
  sqlite3_bind_text(st, 1, pos.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, db.c_str(), -1, SQLITE_TRANSIENT);
  REQUIRE(sqlite3_step(st) == SQLITE_DONE);
  sqlite3_finalize(st);
}

constexpr size_t kExpectRestartField = 14;

// What a crash leaves of the position store: a copy taken now (VACUUM INTO,
// consistent while the replicator runs), put back after it stopped.
void CopyPositions(const std::string& state, const std::string& copy) {
  test::Writer ps(state + "/positions.db");
  ps.Exec("VACUUM INTO '" + copy + "'");
}
void PutBackPositions(const std::string& state, const std::string& copy) {
  for (const char* sfx : {"", "-wal", "-shm"}) ::unlink((state + "/positions.db" + sfx).c_str());
  std::filesystem::copy(copy, state + "/positions.db");
}

}  // namespace

TEST_CASE("a clean restart trusts the WAL restart its saved position expects", "[e2e]") {
  // After our full checkpoint with no reader in the WAL, the next epoch is
  // certain to follow it; a restarted process keeps that knowledge and
  // captures the new epoch without reading the database.
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  InsertRows(w, "a", 10);
  f.Open();
  f.Sync();
  REQUIRE(f.r->Checkpoint(f.db).ok());
  f.Stop();
  const std::string state = f.dir / "state";
  CHECK(SavedPosition(state, f.db)[kExpectRestartField] == "1");
  InsertRows(w, "b", 5);  // restarts the WAL
  f.Open();
  const uint64_t latest = f.Sync();
  CHECK(test::MetricSum(f.r->Metrics(), "replite_epoch_checksums_total") == 0);
  CHECK(f.Count("new generation") == 1);
  f.CheckLatest(latest);
  REQUIRE(f.r->Close().ok());
}

TEST_CASE("a saved position that expects a WAL restart is saved again before commits of its epoch are shipped", "[e2e]") {
  // Positions are saved in batches, so after a crash the saved one may lag
  // what was uploaded. Here the saved position expects a WAL restart (forged:
  // as if a checkpoint had wrongly believed the restart certain), but a
  // reader held it back, so the process captures and uploads commits
  // appended to the OLD epoch, and then dies; the application checkpoints
  // them and restarts the WAL itself. Had the crash left the position that
  // expects the restart, the next process would number the new epoch's
  // commits as if they followed it (same txids as the uploaded ones, other
  // content). Before shipping commits of the epoch it expected to restart,
  // the position is saved again without the expectation, so the next epoch
  // is verified instead. (Commits of the restarted epoch need no such save:
  // see "a clean restart trusts ...", whose restart shows no read either.)
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  InsertRows(w, "a", 10);
  test::Writer reader(f.db);
  reader.Exec("BEGIN; SELECT count(*) FROM t");  // a read mark at the end of the WAL: blocks the restart
  f.Open();
  f.Sync();
  REQUIRE(f.r->Checkpoint(f.db).ok());
  f.Stop();
  const std::string state = f.dir / "state";
  auto fields = SavedPosition(state, f.db);
  CHECK(fields[kExpectRestartField] == "0");  // the reader made the restart uncertain
  fields[kExpectRestartField] = "1";
  SavePosition(state, f.db, fields);
  // The next process captures commits appended to the old epoch...
  f.Open();
  InsertRows(w, "b", 5);
  const uint64_t uploaded = f.Sync();
  // ... and dies: what it leaves is what the position store holds now.
  const std::string crash_copy = f.dir / "positions.crash";
  CopyPositions(state, crash_copy);
  f.Stop();
  PutBackPositions(state, crash_copy);
  CHECK(SavedPosition(state, f.db)[kExpectRestartField] == "0");
  // The application checkpoints them into the database and restarts the WAL.
  reader.Exec("COMMIT");
  w.Exec("PRAGMA wal_checkpoint(PASSIVE)");
  InsertRows(w, "c", 3);
  f.Open();
  const uint64_t latest = f.Sync();
  CHECK(latest > uploaded);
  // The saved position lags the store (it was saved before the upload), so
  // the new epoch is not adopted: a new generation after the store's txids.
  CHECK(f.Count("lags the replica") >= 1);
  f.CheckLatest(latest);
  REQUIRE(f.r->Close().ok());
}

TEST_CASE("commits appended to a checkpointed WAL epoch are captured before another connection restarts it", "[e2e]") {
  // Our checkpoint copies every captured frame into the database, but a
  // reader that began before it holds the WAL restart back: the next
  // commits go on in the same epoch. If the application's own checkpoint
  // then copies them into the database and restarts the WAL before we
  // capture them, the new epoch does not follow our position: it must be
  // verified (here: a new generation), never numbered as its continuation.
  // While the database is hot, replite's read mark keeps that checkpoint
  // from copying (and so from restarting) past what was captured.
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  InsertRows(w, "a", 10);
  f.Open();
  test::Writer reader(f.db);
  reader.Exec("BEGIN; SELECT count(*) FROM t");  // a read mark at the end of the WAL
  const uint64_t t0 = f.Sync();
  REQUIRE(f.r->Checkpoint(f.db).ok());
  InsertRows(w, "b", 5);  // same epoch
  reader.Exec("COMMIT");
  w.Exec("PRAGMA wal_checkpoint(PASSIVE)");
  InsertRows(w, "c", 3);  // appended too: our read mark kept the WAL from restarting
  const uint64_t t1 = f.Sync();
  CHECK(t1 == t0 + 8);
  CHECK(f.Count("new generation") == 1);
  f.CheckLatest(t1);
  // The same with replite stopped after its checkpoint: no read mark.
  reader.Exec("BEGIN; SELECT count(*) FROM t");
  REQUIRE(f.r->Checkpoint(f.db).ok());
  f.Stop();
  InsertRows(w, "d", 5);  // same epoch
  reader.Exec("COMMIT");
  w.Exec("PRAGMA wal_checkpoint(PASSIVE)");
  InsertRows(w, "e", 3);  // restarted
  f.Open();
  const uint64_t latest = f.Sync();
  CHECK(f.Count("new generation") == 2);
  CHECK(test::MetricSum(f.r->Metrics(), "replite_epoch_checksums_total") >= 1);
  f.CheckLatest(latest);
  REQUIRE(f.r->Close().ok());
}

TEST_CASE("after our checkpoint with no reader in the WAL the restarted epoch continues the generation", "[e2e]") {
  // The other side of the test above: nothing holds the restart back, so
  // the next epoch is trusted and captured without a new generation and
  // without reading the database. The restart is made by another
  // connection than the earlier ones: SQLite writes the restarting
  // connection's own restart count as the checkpoint sequence (here 1
  // after 2), so only salt1 + 1 tells a restart.
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  for (int i = 0; i < 2; i++) {  // two restarts by w: the header's sequence is 2
    InsertRows(w, "r" + std::to_string(i) + "_", 2);
    w.Exec("PRAGMA wal_checkpoint(PASSIVE)");
  }
  InsertRows(w, "s", 1);  // the second restart; not checkpointed, so the next commits append
  f.Open();
  InsertRows(w, "a", 10);
  const uint64_t t1 = f.Sync();
  REQUIRE(f.r->Checkpoint(f.db).ok());
  test::Writer w2(f.db);
  InsertRows(w2, "c", 3);  // w2 restarts the WAL: salt1 + 1, sequence 1
  const uint64_t t2 = f.Sync();
  CHECK(t2 == t1 + 3);
  CHECK(f.Count("new generation") == 1);
  CHECK(test::MetricSum(f.r->Metrics(), "replite_epoch_checksums_total") == 0);  // trusted: nothing read
  f.CheckLatest(t2);
  REQUIRE(f.r->Close().ok());
}

TEST_CASE("a database restored from the replica and written continues the txid sequence", "[e2e]") {
  Fixture f;
  uint64_t last = 0;
  {
    test::Writer w(f.db);
    w.Exec("CREATE TABLE t(v)");
    f.Open();
    for (int i = 0; i < 10; i++) w.Exec("INSERT INTO t VALUES (" + std::to_string(i) + ")");
    last = f.Sync();
    REQUIRE(f.r->Close().ok());
    f.r.reset();
  }
  // Restore over the original (lost its disk, say), with a fresh state dir.
  ::unlink(f.db.c_str());
  RestoreOptions ro;
  REQUIRE(Restore(f.url, f.db, ro).ok());
  std::system(("rm -rf '" + f.dir / "state" + "'").c_str());
  test::Writer w(f.db);
  w.Exec("INSERT INTO t VALUES (100)");
  f.Open();
  uint64_t t = f.Sync();
  CHECK(t > last);
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(f.url, &gens).ok());
  REQUIRE(gens.size() == 2);
  CHECK(gens[1].first_txid > gens[0].last_txid);
  Point p{test::DumpContent(f.db), test::LiveChecksum(f.db), 0};
  f.CheckRestore(RestoreOptions(), p, t);
  REQUIRE(f.r->Close().ok());
}

TEST_CASE("a transaction larger than the memory cap is built in the spool, not in memory", "[e2e]") {
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  ReplicatorOptions ro;
  ro.state_dir = f.dir / "state";
  ro.logger = [](const std::string&) {};
  ro.worker_threads = 1;
  ro.memory_cap = 1 << 20;  // 1 MiB for the one worker
  ro.defaults.replica_url = f.url;
  ro.defaults.poll_interval_ms = 0;
  REQUIRE(Replicator::Open(ro, &f.r).ok());
  REQUIRE(f.r->Add(f.db).ok());
  f.Sync();
  w.Exec("BEGIN; INSERT INTO t(v) VALUES (randomblob(3000000)); INSERT INTO t(v) VALUES (randomblob(2000000)); COMMIT");
  const uint64_t txid = f.Sync();
  Point p{test::DumpContent(f.db), test::LiveChecksum(f.db), 0};
  RestoreOptions o;
  o.txid = txid;
  f.CheckRestore(o, p, txid);
  REQUIRE(f.r->Close().ok());
  // The spool holds nothing once uploaded.
  size_t left = 0;
  for (auto& e : std::filesystem::directory_iterator(f.dir / "state/spool")) (void)e, left++;
  CHECK(left == 0);
}

// Issue 13 item 1: the WAL scan's read size doubled without a cap and
// reached 0 after ~61 MiB, so a bigger transaction was never captured while
// every signal (WaitDurable, status, Close) said all was well. One 150 MB
// transaction, then a VACUUM that rewrites ~75 MB, with SQLite's default
// autocheckpoint, both with polling and with Attach.
TEST_CASE("a 150 MB transaction and a VACUUM of the database are captured whole", "[big]") {
  const bool attached = GENERATE(false, true);
  INFO((attached ? "attached" : "polled"));
  test::TempDir dir;
  const std::string db = dir / "app.db", url = dir.url("replica");
  test::Writer w(db, 1000);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  ReplicatorOptions ro;
  ro.state_dir = dir / "state";
  ro.logger = [](const std::string&) {};
  ro.defaults.replica_url = url;
  ro.defaults.poll_interval_ms = attached ? 0 : 50;
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(ro, &r).ok());
  REQUIRE(r->Add(db).ok());
  if (attached) REQUIRE(r->Attach(db, w.db()).ok());
  auto wait = [&] {
    uint64_t txid = 0;
    Status s = r->WaitDurable(db, 120000, &txid);
    INFO(s.ToString());
    REQUIRE(s.ok());
    return txid;
  };
  const uint64_t base = wait();
  w.Exec("BEGIN");
  w.Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 37500) "
         "INSERT INTO t(v) SELECT randomblob(4000) FROM n");
  w.Exec("COMMIT");
  w.Exec("INSERT INTO t(v) VALUES ('small')");
  CHECK(wait() == base + 2);
  const std::string big = test::DumpContent(db);
  w.Exec("DELETE FROM t WHERE id % 2 = 0");
  w.Exec("VACUUM");
  w.Exec("INSERT INTO t(v) VALUES ('after vacuum')");
  const uint64_t last = wait();
  CHECK(last == base + 5);
  DatabaseStatus st;
  REQUIRE(r->GetStatus(db, &st).ok());
  CHECK(st.last_error.empty());
  CHECK(st.generations_started == 1);
  if (attached) REQUIRE(r->Detach(db, w.db()).ok());
  REQUIRE(r->Close().ok());
  CHECK(test::RestoreContent(url, dir / "big.db", base + 2) == big);
  CHECK(test::RestoreContent(url, dir / "latest.db", 0) == test::DumpContent(db));
}

// Issue 19 item 3: a WAL tail rewritten under the same salts (a volume
// snapshot rolled back, power loss with synchronous=NORMAL, db and WAL
// copied back) left the saved position pointing into frames of other
// transactions; the scan from there broke the chain at once and found "no
// new commits" forever while every call said OK.
TEST_CASE("a WAL tail rewritten under the same salts is detected, not taken for no new commits", "[e2e]") {
  Fixture f;
  uint64_t t5 = 0;
  std::string out;
  {
    test::Writer w(f.db);
    w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    f.Open();
    for (int i = 0; i < 4; i++) {
      InsertRows(w, "a" + std::to_string(i) + "-", 1);
      f.Sync();
    }
    // The files as a volume snapshot keeps them (copied by another process,
    // whose descriptors take no lock of ours with them).
    REQUIRE(test::Shell("cp '" + f.db + "' '" + f.db + ".snap' && cp '" + f.db + "-wal' '" + f.db + "-wal.snap'", &out) == 0);
    InsertRows(w, "b", 1);
    t5 = f.Sync();
    f.Stop();
  }  // the application's last connection checkpoints and deletes the WAL
  // The volume is rolled back to the snapshot, the machine restarts.
  REQUIRE(test::Shell("cp '" + f.db + ".snap' '" + f.db + "' && cp '" + f.db + "-wal.snap' '" + f.db +
                          "-wal' && rm -f '" + f.db + "-shm'", &out) == 0);
  test::Writer w(f.db);
  f.Open();
  InsertRows(w, "c", 64);  // appended after the 4th transaction, over the old 5th
  const uint64_t t = f.Sync();
  CHECK(t > t5);
  CHECK(f.Count("new generation") == 2);
  f.CheckLatest(t);
  REQUIRE(f.r->Close().ok());
}

// Issue 19 item 5a, confirmed: positions are saved in batches, so after a
// crash the saved one can lag the replica. If the WAL was then restarted by
// the application and the database file happens to equal the saved state
// again (a value toggled back), the new epoch was adopted and its commits
// numbered right after the saved position: under txids the store already
// held for other content (the old segment's key was even overwritten). An
// unknown epoch after a restart is now adopted only if the store's last txid
// is the position's; otherwise a new generation continues after the store.
TEST_CASE("after a crash a saved position that lags the replica does not number a new WAL epoch under stored txids", "[e2e]") {
  Fixture f;
  test::Writer w(f.db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO t VALUES (1, 0)");
  f.Open();
  const uint64_t t1 = f.Sync();
  f.Stop();  // the position at t1 is saved
  const std::string state = f.dir / "state", crash_copy = f.dir / "positions.crash";
  CopyPositions(state, crash_copy);
  f.Open();
  w.Exec("UPDATE t SET v = 1 WHERE id = 1");
  const Point toggled{test::DumpContent(f.db), test::LiveChecksum(f.db), 0};
  const uint64_t t2 = f.Sync();
  REQUIRE(t2 == t1 + 1);
  w.Exec("UPDATE t SET v = 0 WHERE id = 1");  // back: the database equals the saved state again
  const uint64_t t3 = f.Sync();
  REQUIRE(t3 == t2 + 1);
  // The process dies with its position store as it was at t1.
  f.Stop();
  PutBackPositions(state, crash_copy);
  // The application checkpoints and truncates the WAL; its next commit
  // starts a new epoch on a database file equal to the state at t1.
  w.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  w.Exec("INSERT INTO t VALUES (2, 2)");
  f.Open();
  const uint64_t latest = f.Sync();
  CHECK(latest > t3);
  CHECK(f.Count("lags the replica") >= 1);
  RestoreOptions ro;
  ro.txid = t2;
  f.CheckRestore(ro, toggled, t2);  // still the state it was reported durable with
  f.CheckLatest(latest);
  REQUIRE(f.r->Close().ok());
}

// A replicator of `w`'s database (table t(v), synced once) that
// checkpoints after every capture.
std::unique_ptr<Replicator> CheckpointingEveryCapture(const test::TempDir& dir, test::Writer* w) {
  w->Exec("CREATE TABLE t(v)");
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.logger = [](const std::string&) {};
  o.defaults.replica_url = dir.url("replica");
  o.defaults.poll_interval_ms = 0;
  o.defaults.checkpoint_pages = 1;  // every capture is followed by a checkpoint
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  REQUIRE(r->Add(dir / "app.db").ok());
  REQUIRE(r->Sync(dir / "app.db").ok());
  return r;
}

// WaitDurable answered only when the whole job ended, after the checkpoint
// that follows a capture: behind an application's write transaction that
// checkpoint waits the capture's busy timeout (5 s), and a 1 GB
// transaction's checkpoint (SQLite copying the WAL into the database)
// doubled the wait. It now returns once the capture is in the replica.
TEST_CASE("WaitDurable returns when the capture is durable and does not wait for the checkpoint after it", "[e2e]") {
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::Writer w(db);
  std::unique_ptr<Replicator> r = CheckpointingEveryCapture(dir, &w);
  w.Exec("INSERT INTO t VALUES (randomblob(5000))");
  // Another connection holds the write lock: our capture reads under it,
  // but the checkpoint after it needs the lock and waits for it.
  test::Writer other(db);
  other.Exec("BEGIN IMMEDIATE");
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t txid = 0;
  REQUIRE(r->WaitDurable(db, 20000, &txid).ok());
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(txid == 2);
  CHECK(waited < 2.5);  // the checkpoint waits 5 s for the lock
  other.Exec("COMMIT");
  REQUIRE(r->Close().ok());
  RestoreResult rr;
  CHECK(test::RestoreContent(dir.url("replica"), dir / "out.db", 0, &rr) == test::DumpContent(db));
  CHECK(rr.txid == 2);
  CHECK(rr.checksum_verified);
}

// What WaitDurable answered is what a status and the metrics read right
// after it show: the job woke the waiters before it set the database's
// live position and counted the transactions (at its end, after the
// checkpoint), so GetStatus reported the previous txid as local_txid, no
// durable time, and replite_transactions_total without them (seen once in
// CI under TSan with the C ABI; here the checkpoint waits for another
// connection's write lock, so the old code fails every time).
TEST_CASE("GetStatus and the metrics right after WaitDurable show the transaction it answered", "[e2e]") {
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::Writer w(db);
  std::unique_ptr<Replicator> r = CheckpointingEveryCapture(dir, &w);
  const double counted = test::MetricSum(r->Metrics(), "replite_transactions_total");
  w.Exec("INSERT INTO t VALUES (randomblob(5000))");
  w.Exec("INSERT INTO t VALUES (randomblob(5000))");
  test::Writer other(db);
  other.Exec("BEGIN IMMEDIATE");  // the checkpoint after the capture waits for this lock
  const int64_t notified_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  REQUIRE(r->Notify(db).ok());
  uint64_t txid = 0;
  REQUIRE(r->WaitDurable(db, 20000, &txid).ok());
  REQUIRE(txid == 3);
  DatabaseStatus st;
  REQUIRE(r->GetStatus(db, &st).ok());
  CHECK(st.durable_txid == 3);
  CHECK(st.local_txid == 3);
  CHECK(st.durable_ts_ms > 0);
  CHECK(st.last_sync_ms >= notified_ms);  // this sync's, not the first one's
  CHECK(test::MetricSum(r->Metrics(), "replite_transactions_total") == counted + 2);
  other.Exec("COMMIT");
  REQUIRE(r->Close().ok());
}

// A new database's first sync waits for a pause in Adds; when the
// application syncs first, that deferred job must not run as well: it
// captured whatever the application was in the middle of as a segment of
// its own (found by MakeHistory's one-segment-per-Sync check under TSan).
TEST_CASE("a database synced right after Add gets no deferred first sync of its own", "[e2e]") {
  test::TempDir dir;
  const std::string db = dir / "a.db";
  test::Writer w(db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
  auto r = test::OpenManual(dir, dir.url("replica"));
  REQUIRE(r->Add(db).ok());
  REQUIRE(r->Sync(db).ok());
  w.Exec("INSERT INTO t(v) VALUES (1)");
  // Past when the deferred first syncs start (no Add for 100 ms).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  DatabaseStatus st;
  REQUIRE(r->GetStatus(db, &st).ok());
  CHECK(st.segments_uploaded == 0);  // nothing ran but the Sync's job
  uint64_t txid = 0;
  REQUIRE(r->Sync(db, &txid).ok());
  REQUIRE(r->GetStatus(db, &st).ok());
  CHECK(st.segments_uploaded == 1);
  REQUIRE(r->Close().ok());
}
