// [errors] Bad input gets a clear error that names the thing and the fix,
// and nothing is harmed: no partial restore output, no replica damage.
#include <dirent.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <fstream>

#include "format/layout.h"
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
