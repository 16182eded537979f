// [errors] Bad input gets a clear error that names the thing and the fix,
// and nothing is harmed: no partial restore output, no replica damage.
#include <dirent.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>
#include <algorithm>
#include <fstream>
#include <map>

#include "format/layout.h"
#include "format/segment.h"
#include "replite/replite.h"
#include "test_util.h"
#include "util/file_util.h"

using namespace replite;

namespace {

std::unique_ptr<Replicator> OpenReplicator(test::TempDir& dir, const std::string& url) {
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.replica_url = url;
  o.defaults.poll_interval_ms = 0;
  o.logger = [](const std::string&) {};
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  return r;
}

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> v;
  DIR* d = ::opendir(dir.c_str());
  while (d && (errno = 0, true)) {
    dirent* e = ::readdir(d);
    if (!e) break;
    std::string n = e->d_name;
    if (n != "." && n != "..") v.push_back(n);
  }
  if (d) ::closedir(d);
  return v;
}

// A replica with a few segments; returns the last txid.
uint64_t MakeReplica(test::TempDir& dir, const std::string& db, const std::string& url) {
  test::Writer w(db);
  w.Exec("CREATE TABLE t(v)");
  auto r = OpenReplicator(dir, "");
  DatabaseOptions o;
  o.replica_url = url;
  o.poll_interval_ms = 0;
  REQUIRE(r->Add(db, o).ok());
  uint64_t txid = 0;
  for (int i = 0; i < 5; i++) {
    w.Exec("INSERT INTO t VALUES (randomblob(5000))");
    REQUIRE(r->Sync(db, &txid).ok());
  }
  REQUIRE(r->Close().ok());
  return txid;
}

}  // namespace

TEST_CASE("adding bad databases fails clearly", "[errors]") {
  test::TempDir dir;
  auto r = OpenReplicator(dir, dir.url("replica"));
  Status s = r->Add(dir / "missing.db");
  CHECK(s.code() == Code::kNotFound);
  CHECK(s.message().find("missing.db") != std::string::npos);

  {  // rollback-journal database
    sqlite3* db = nullptr;
    sqlite3_open((dir / "journal.db").c_str(), &db);
    sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  s = r->Add(dir / "journal.db");
  CHECK(s.code() == Code::kFailedPrecondition);
  CHECK(s.message().find("journal.db") != std::string::npos);
  CHECK(s.message().find("PRAGMA journal_mode=WAL") != std::string::npos);
  DatabaseOptions o;
  o.enable_wal = true;
  o.poll_interval_ms = 0;
  CHECK(r->Add(dir / "journal.db", o).ok());  // the option lets the library switch it
  CHECK(r->Sync(dir / "journal.db").ok());

  {
    std::ofstream f(dir / "text.db");
    f << "this is not a database, just some text that is long enough to have a header........................";
  }
  s = r->Add(dir / "text.db");
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("text.db") != std::string::npos);

  {
    test::Writer w(dir / "twice.db");
    w.Exec("CREATE TABLE t(x)");
  }
  REQUIRE(r->Add(dir / "twice.db").ok());
  s = r->Add(dir / "twice.db");
  CHECK(s.code() == Code::kAlreadyExists);
  CHECK(s.message().find("already") != std::string::npos);

  s = r->Add(dir / "twice.db", DatabaseOptions{.replica_url = "ftp://nope"});
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(r->Close().ok());
  CHECK(r->Add(dir / "twice.db").code() == Code::kCancelled);
}

TEST_CASE("malformed replica URLs name the problem", "[errors]") {
  for (const char* url : {"", "/abs/path", "file://relative/path", "file:///", "s3://", "s3://ab/x",
                          "s3://Bucket/x", "s3://bucket/x?bogus=1", "file:///a/../b", "file:///a?endpoint=x"}) {
    std::vector<GenerationInfo> gens;
    Status s = ListGenerations(url, &gens);
    INFO(url << " -> " << s.ToString());
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(s.message().find("replica URL") != std::string::npos);
  }
}

TEST_CASE("restore refuses an existing target unless asked", "[errors]") {
  test::TempDir dir;
  const std::string url = dir.url("replica");
  MakeReplica(dir, dir / "a.db", url);
  { std::ofstream(dir / "out.db") << "precious"; }
  Status s = Restore(url, dir / "out.db", RestoreOptions());
  CHECK(s.code() == Code::kAlreadyExists);
  CHECK(s.message().find("out.db") != std::string::npos);
  std::string content;
  REQUIRE(ReadFileToString(dir / "out.db", &content).ok());
  CHECK(content == "precious");
  RestoreOptions o;
  o.overwrite = true;
  CHECK(Restore(url, dir / "out.db", o).ok());
  CHECK(test::IntegrityCheck(dir / "out.db") == "ok\n");
}

TEST_CASE("restoring from an empty replica or a missing txid says so", "[errors]") {
  test::TempDir dir;
  Status s = Restore(dir.url("nothing-here"), dir / "out.db", RestoreOptions());
  CHECK(s.code() == Code::kNotFound);
  CHECK(s.message().find("no generations") != std::string::npos);
  const std::string url = dir.url("replica");
  uint64_t last = MakeReplica(dir, dir / "a.db", url);
  RestoreOptions o;
  o.txid = last + 100;
  s = Restore(url, dir / "out.db", o);
  CHECK(s.code() == Code::kNotFound);
  CHECK(s.message().find(std::to_string(last + 100)) != std::string::npos);
  CHECK_FALSE(FileExists(dir / "out.db"));
}

TEST_CASE("a damaged or missing object is named and leaves no partial output", "[errors][corruption]") {
  test::TempDir dir;
  const std::string url = dir.url("replica");
  MakeReplica(dir, dir / "a.db", url);
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(url, &gens).ok());
  REQUIRE(gens.size() == 1);
  const std::string seg_dir = dir / ("replica/generations/" + gens[0].id + "/segments");
  const std::string snap_dir = dir / ("replica/generations/" + gens[0].id + "/snapshots");
  auto segs = Files(seg_dir);
  auto snaps = Files(snap_dir);
  REQUIRE(segs.size() >= 2);
  REQUIRE(snaps.size() == 1);
  std::sort(segs.begin(), segs.end());

  auto expect_refused = [&](const std::string& object, Code code) {
    Status s = Restore(url, dir / "out.db", RestoreOptions());
    INFO(s.ToString());
    CHECK(s.code() == code);
    CHECK(s.message().find(object) != std::string::npos);
    CHECK_FALSE(FileExists(dir / "out.db"));
    for (const auto& f : Files(dir.path())) CHECK(f.find("restore") == std::string::npos);  // no temp files
  };
  auto flip = [&](const std::string& path, long offset) {
    std::string data;
    REQUIRE(ReadFileToString(path, &data).ok());
    size_t at = offset >= 0 ? size_t(offset) : data.size() + offset;
    data[at] ^= 0x20;
    REQUIRE(WriteFileAtomic(path, data).ok());
    return data;
  };

  // A flipped byte inside a block of a segment.
  const std::string seg = seg_dir + "/" + segs[1];
  std::string orig;
  REQUIRE(ReadFileToString(seg, &orig).ok());
  flip(seg, 200);
  expect_refused(segs[1], Code::kCorruption);
  REQUIRE(WriteFileAtomic(seg, orig).ok());
  // A flipped byte in the index.
  flip(seg, -40);
  expect_refused(segs[1], Code::kCorruption);
  // Truncated.
  REQUIRE(WriteFileAtomic(seg, orig.substr(0, orig.size() - 7)).ok());
  expect_refused(segs[1], Code::kCorruption);
  REQUIRE(WriteFileAtomic(seg, orig).ok());
  CHECK(Restore(url, dir / "out.db", RestoreOptions()).ok());
  ::unlink((dir / "out.db").c_str());
  // Snapshot damage.
  const std::string snap = snap_dir + "/" + snaps[0];
  REQUIRE(ReadFileToString(snap, &orig).ok());
  flip(snap, 300);
  expect_refused(snaps[0], Code::kCorruption);
  REQUIRE(WriteFileAtomic(snap, orig).ok());
  // A missing segment: the gap is named by txid.
  ::unlink(seg.c_str());
  Status s = Restore(url, dir / "out.db", RestoreOptions());
  CHECK(s.code() == Code::kNotFound);
  CHECK(s.message().find("no segment holding txid") != std::string::npos);
  CHECK_FALSE(FileExists(dir / "out.db"));
}

namespace {

// A replica whose segments each hold one batch of transactions (one SQL
// statement = one transaction), with the source's content at every txid.
struct History {
  std::string url, seg_dir, snap_dir;
  std::vector<std::string> segs;  // sorted: by first txid
  std::map<uint64_t, std::string> content;
  uint64_t last = 0;
};

History MakeHistory(test::TempDir& dir, const std::vector<std::vector<std::string>>& batches) {
  History h;
  h.url = dir.url("replica");
  const std::string db = dir / "src.db";
  test::Writer w(db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
  auto r = OpenReplicator(dir, "");
  DatabaseOptions o;
  o.replica_url = h.url;
  o.poll_interval_ms = 0;
  REQUIRE(r->Add(db, o).ok());
  REQUIRE(r->Sync(db, &h.last).ok());
  h.content[h.last] = test::DumpContent(db);
  for (const auto& batch : batches) {
    for (size_t i = 0; i < batch.size(); i++) {
      w.Exec(batch[i]);
      h.content[h.last + 1 + i] = test::DumpContent(db);
    }
    uint64_t txid = 0;
    REQUIRE(r->Sync(db, &txid).ok());
    REQUIRE(txid == h.last + batch.size());  // one txid per transaction
    h.last = txid;
  }
  REQUIRE(r->Close().ok());
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(h.url, &gens).ok());
  REQUIRE(gens.size() == 1);
  h.seg_dir = dir / ("replica/generations/" + gens[0].id + "/segments");
  h.snap_dir = dir / ("replica/generations/" + gens[0].id + "/snapshots");
  h.segs = Files(h.seg_dir);
  std::sort(h.segs.begin(), h.segs.end());
  REQUIRE(h.segs.size() == batches.size());
  return h;
}

// The block index of a stored segment file.
std::vector<BlockIndexEntry> BlockIndex(const std::string& path) {
  std::string data;
  REQUIRE(ReadFileToString(path, &data).ok());
  SegmentTrailer t;
  REQUIRE(DecodeSegmentTrailer(data.substr(data.size() - kSegTrailerSize), &t).ok());
  SegmentHeader hdr;
  std::vector<BlockIndexEntry> index;
  REQUIRE(DecodeSegmentIndex(data.substr(0, kSegHeaderSize),
                             data.substr(t.index_offset, data.size() - kSegTrailerSize - t.index_offset), t, data.size(),
                             &hdr, &index)
              .ok());
  return index;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::string data;
  REQUIRE(ReadFileToString(path, &data).ok());
  data[offset] ^= 0x20;
  REQUIRE(WriteFileAtomic(path, data).ok());
}

// Restores with and without stop_at_last_good: without, the restore is
// refused naming `named` (no output); with, it stops at `expect_txid`,
// verified and equal to the source at that txid.
void ExpectStop(test::TempDir& dir, const History& h, const std::string& named, Code refused_code, uint64_t expect_txid,
                const std::string& bad_object) {
  const std::string out = dir / "out.db";
  ::unlink(out.c_str());
  Status s = Restore(h.url, out, RestoreOptions());
  INFO(s.ToString());
  CHECK(s.code() == refused_code);
  CHECK(s.message().find(named) != std::string::npos);
  CHECK_FALSE(FileExists(out));
  RestoreOptions o;
  o.stop_at_last_good = true;
  RestoreResult rr;
  s = Restore(h.url, out, o, &rr);
  INFO(s.ToString() << " stop_reason: " << rr.stop_reason);
  REQUIRE(s.ok());
  CHECK(rr.stopped_early);
  CHECK(rr.txid == expect_txid);
  CHECK(rr.requested_txid == h.last);
  CHECK(rr.checksum_verified);
  CHECK(rr.bad_object.find(bad_object) != std::string::npos);
  CHECK(bad_object.empty() == rr.bad_object.empty());
  CHECK(rr.stop_reason.find(named) != std::string::npos);
  CHECK(test::IntegrityCheck(out) == "ok\n");
  CHECK(test::DumpContent(out) == h.content.at(expect_txid));
  for (const auto& f : Files(dir.path())) CHECK(f.find("restore") == std::string::npos);  // no temp files
}

}  // namespace

TEST_CASE("stop_at_last_good restores up to the damaged or missing object", "[errors][corruption]") {
  test::TempDir dir;
  const std::string row = "INSERT INTO t(v) VALUES (randomblob(3000))";
  const History h = MakeHistory(dir, {{row, row, row}, {row, row, row}, {row, row, row}, {row, row}});
  const uint64_t base = h.content.begin()->first;  // the snapshot's txid
  REQUIRE(h.last == base + 11);
  const std::string mid = h.seg_dir + "/" + h.segs[1];  // txids base+4 .. base+6
  std::string orig;
  REQUIRE(ReadFileToString(mid, &orig).ok());
  auto index = BlockIndex(mid);
  REQUIRE(index.size() == 3);

  SECTION("a flipped byte in the second transaction of a middle segment") {
    FlipByte(mid, index[1].offset + index[1].comp_len / 2);
    ExpectStop(dir, h, h.segs[1], Code::kCorruption, base + 4, h.segs[1]);
  }
  SECTION("a flipped byte in the first block of a middle segment") {
    FlipByte(mid, index[0].offset + 3);
    ExpectStop(dir, h, h.segs[1], Code::kCorruption, base + 3, h.segs[1]);
  }
  SECTION("a flipped byte in a segment's index") {
    FlipByte(mid, orig.size() - kSegTrailerSize - 10);
    ExpectStop(dir, h, h.segs[1], Code::kCorruption, base + 3, h.segs[1]);
  }
  SECTION("the last segment truncated") {
    const std::string last = h.seg_dir + "/" + h.segs[3];
    std::string data;
    REQUIRE(ReadFileToString(last, &data).ok());
    REQUIRE(WriteFileAtomic(last, data.substr(0, data.size() - 100)).ok());
    ExpectStop(dir, h, h.segs[3], Code::kCorruption, base + 9, h.segs[3]);
  }
  SECTION("a middle segment deleted") {
    REQUIRE(::unlink(mid.c_str()) == 0);
    ExpectStop(dir, h, "txids " + std::to_string(base + 4) + ".." + std::to_string(base + 6), Code::kNotFound,
               base + 3, "");
  }
  SECTION("at a txid before the damage nothing stops") {
    FlipByte(mid, index[1].offset + 5);
    RestoreOptions o;
    o.stop_at_last_good = true;
    o.txid = base + 4;
    RestoreResult rr;
    REQUIRE(Restore(h.url, dir / "out.db", o, &rr).ok());
    CHECK_FALSE(rr.stopped_early);
    CHECK(rr.txid == base + 4);
    CHECK(rr.requested_txid == base + 4);
    CHECK(rr.bad_object.empty());
    CHECK(test::DumpContent(dir / "out.db") == h.content.at(base + 4));
  }
  SECTION("a damaged snapshot leaves nothing to restore") {
    const auto snaps = Files(h.snap_dir);
    REQUIRE(snaps.size() == 1);
    FlipByte(h.snap_dir + "/" + snaps[0], 300);
    RestoreOptions o;
    o.stop_at_last_good = true;
    Status s = Restore(h.url, dir / "out.db", o);
    CHECK(s.code() == Code::kCorruption);
    CHECK(s.message().find(snaps[0]) != std::string::npos);
    CHECK_FALSE(FileExists(dir / "out.db"));
  }
}

// A transaction of more pages than a block holds spans blocks; damage in
// its second block comes after its first block's pages were written, so the
// restore must rebuild the file without them.
TEST_CASE("stop_at_last_good inside a transaction spanning blocks rebuilds the file", "[errors][corruption]") {
  test::TempDir dir;
  const std::string small = "INSERT INTO t(v) VALUES (randomblob(3000))";
  const std::string big = "UPDATE t SET v = randomblob(6000000) WHERE id = 1";  // ~1,500 pages
  const History h = MakeHistory(dir, {{small, small}, {small, big, small}});
  const uint64_t base = h.content.begin()->first;
  const std::string seg = h.seg_dir + "/" + h.segs[1];  // base+3 .. base+5
  auto index = BlockIndex(seg);
  size_t second = 0;  // the big transaction's second block
  for (size_t i = 1; i < index.size() && !second; i++)
    if (index[i].txid == base + 4 && index[i - 1].txid == base + 4) second = i;
  REQUIRE(second > 0);
  REQUIRE_FALSE(index[second - 1].flags & kBlockTxEnd);
  FlipByte(seg, index[second].offset + index[second].comp_len / 2);
  ExpectStop(dir, h, h.segs[1], Code::kCorruption, base + 3, h.segs[1]);
}

TEST_CASE("timestamps parse as RFC 3339 UTC", "[errors]") {
  int64_t ms = 0;
  REQUIRE(ParseRfc3339("2026-11-26T21:00:00Z", &ms).ok());
  CHECK(ms == int64_t(1795726800) * 1000);
  REQUIRE(ParseRfc3339("2026-11-26T22:00:00.250+01:00", &ms).ok());
  CHECK(ms == int64_t(1795726800) * 1000 + 250);
  CHECK(FormatRfc3339(int64_t(1795726800) * 1000) == "2026-11-26T21:00:00.000Z");
  CHECK(ParseRfc3339("yesterday", &ms).code() == Code::kInvalidArgument);
  CHECK(ParseRfc3339("2026-11-26T21:00:00", &ms).code() == Code::kInvalidArgument);  // zone required
}

// Issue 14 item 3: Close left threads blocked in WaitDurable (timeout -1)
// blocked for good, and ones with a timeout returned kTimeout at its end,
// although the header said Close releases them.
TEST_CASE("Close releases threads blocked in WaitDurable with kCancelled", "[errors]") {
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::Writer w(db);
  w.Exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.logger = [](const std::string&) {};
  o.defaults.replica_url = "file:///proc/replite-cannot-write-here";  // every upload fails
  o.defaults.poll_interval_ms = 0;
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  REQUIRE(r->Add(db).ok());
  std::vector<std::thread> waiters;
  std::vector<Status> got(3);
  std::vector<double> waited(3);
  for (int i = 0; i < 3; i++)
    waiters.emplace_back([&, i] {
      const auto t0 = std::chrono::steady_clock::now();
      uint64_t txid = 0;
      got[i] = r->WaitDurable(db, 20000, &txid);
      waited[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Status cs = r->Close();
  CHECK(!cs.ok());  // the final capture could not be uploaded
  for (auto& t : waiters) t.join();
  for (int i = 0; i < 3; i++) {
    INFO(got[i].ToString());
    CHECK(got[i].code() == Code::kCancelled);
    CHECK(waited[i] < 10.0);
  }
}

// Issue 14 item 7: with the snapshot of the latest generation gone (or the
// last segments of a generation), the latest restore silently returned an
// earlier state with rc 0. The replica records later txids (the manifest
// names every generation and its first txid, and a generation starts at the
// txid after the last one captured before it): a restore now refuses,
// naming the generation and the txids it cannot restore, or with
// stop_at_last_good says where it stopped and which txid it aimed at.
TEST_CASE("restore says so when a later txid is known but its objects are missing", "[errors][corruption][cli]") {
  test::TempDir dir;
  const std::string db = dir / "app.db", url = dir.url("replica"), out = dir / "out.db", cli = REPLITE_CLI_PATH;
  test::Writer w(db);
  w.Exec("CREATE TABLE t(v)");
  // One run of a replicator with its own state dir: a new state dir (lost,
  // or another machine) starts a new generation.
  auto run = [&](const std::string& state, int rows) {
    ReplicatorOptions o;
    o.state_dir = state;
    o.defaults.replica_url = url;
    o.defaults.poll_interval_ms = 0;
    o.logger = [](const std::string&) {};
    std::unique_ptr<Replicator> r;
    REQUIRE(Replicator::Open(o, &r).ok());
    REQUIRE(r->Add(db).ok());
    uint64_t txid = 0;
    for (int i = 0; i < rows; i++) {
      w.Exec("INSERT INTO t VALUES (randomblob(2000))");
      REQUIRE(r->Sync(db, &txid).ok());
    }
    REQUIRE(r->Close().ok());
    return txid;
  };
  const uint64_t end1 = run(dir / "state1", 3);
  const std::string content1 = test::DumpContent(db);
  const uint64_t end2 = run(dir / "state2", 3);
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(url, &gens).ok());
  REQUIRE(gens.size() == 2);
  REQUIRE(gens[1].first_txid == end1 + 1);
  REQUIRE(gens[1].last_txid == end2);
  const std::string gen_dir = dir.path() + "/replica/generations/";
  for (const auto& f : Files(gen_dir + gens[1].id + "/snapshots"))
    REQUIRE(::unlink((gen_dir + gens[1].id + "/snapshots/" + f).c_str()) == 0);

  // Latest: refused, naming the generation and the txids it cannot restore.
  Status s = Restore(url, out, RestoreOptions());
  INFO(s.ToString());
  CHECK(s.code() == Code::kNotFound);
  CHECK(s.message().find(gens[1].id) != std::string::npos);
  CHECK(s.message().find(std::to_string(end2)) != std::string::npos);
  CHECK_FALSE(FileExists(out));
  // With stop_at_last_good: the last state before them, and it says so.
  RestoreOptions o;
  o.stop_at_last_good = true;
  RestoreResult rr;
  REQUIRE(Restore(url, out, o, &rr).ok());
  CHECK(rr.txid == end1);
  CHECK(rr.stopped_early);
  CHECK(rr.requested_txid == end2);
  CHECK(rr.stop_reason.find(gens[1].id) != std::string::npos);
  CHECK(test::DumpContent(out) == content1);
  std::string text;
  CHECK(test::Shell("'" + cli + "' restore -o '" + dir / "cli.db" + "' '" + url + "'", &text) == 1);
  CHECK(text.find("cannot be restored") != std::string::npos);
  CHECK(test::Shell("'" + cli + "' restore -o '" + dir / "cli.db" + "' -stop-at-last-good '" + url + "'", &text) == 0);
  INFO(text);
  CHECK(text.find("stopped at txid " + std::to_string(end1) + ", before the requested txid " + std::to_string(end2)) !=
        std::string::npos);

  // The last segment of the first generation gone too: its txid is still
  // known (the next generation starts after it).
  std::vector<std::string> segs = Files(gen_dir + gens[0].id + "/segments");
  std::sort(segs.begin(), segs.end());
  REQUIRE(!segs.empty());
  REQUIRE(::unlink((gen_dir + gens[0].id + "/segments/" + segs.back()).c_str()) == 0);
  ::unlink(out.c_str());
  rr = RestoreResult();
  REQUIRE(Restore(url, out, o, &rr).ok());
  CHECK(rr.txid < end1);
  CHECK(rr.stopped_early);
  CHECK(rr.requested_txid == end2);
  CHECK(rr.stop_reason.find("no segment holding txid") != std::string::npos);
  RestoreOptions by_txid;
  by_txid.txid = end1;
  s = Restore(url, dir / "t.db", by_txid);
  INFO(s.ToString());
  CHECK(s.code() == Code::kNotFound);
  CHECK(s.message().find("no segment holding txid " + std::to_string(end1)) != std::string::npos);
}
