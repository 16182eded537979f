// [names] Replica names under one replica root (issue 14 items 1 and 2): a
// database's replica is root/<file name without .db/.sqlite/.sqlite3>, so
// two databases with one file name would share a replica (one manifest,
// each other's rows served on restore). The second is refused with an
// error naming both; a derived name that is not a valid path segment is
// refused like a bad explicit URL.
#include <catch2/catch.hpp>

#include <filesystem>

#include "replite/replite.h"
#include "test_util.h"
#include "util/file_util.h"

using namespace replite;

namespace {

std::unique_ptr<Replicator> OpenUnderRoot(const test::TempDir& dir) {
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.replica_url = dir.url("root");
  o.logger = [](const std::string&) {};
  o.defaults.poll_interval_ms = 0;
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  return r;
}

void MakeDb(const std::string& path, const std::string& row) {
  test::Writer w(path);
  w.Exec("CREATE TABLE t(v TEXT); INSERT INTO t VALUES ('" + row + "')");
}

}  // namespace

TEST_CASE("two databases with one file name under one replica root: the second is refused, naming both", "[names]") {
  test::TempDir dir;
  REQUIRE(MakeDirs(dir / "d1").ok());
  REQUIRE(MakeDirs(dir / "d2").ok());
  MakeDb(dir / "d1/app.db", "one");
  MakeDb(dir / "d2/app.db", "two");
  MakeDb(dir / "d2/app.sqlite", "three");
  auto r = OpenUnderRoot(dir);
  REQUIRE(r->Add(dir / "d1/app.db").ok());
  for (const char* other : {"d2/app.db", "d2/app.sqlite"}) {
    Status s = r->Add(dir / other);
    INFO(s.ToString());
    CHECK(s.code() == Code::kAlreadyExists);
    CHECK(s.message().find(dir / other) != std::string::npos);
    CHECK(s.message().find(dir / "d1/app.db") != std::string::npos);
    CHECK(s.message().find("its own replica URL") != std::string::npos);
  }
  REQUIRE(r->Sync(dir / "d1/app.db").ok());
  // Once the first is removed, the name is free again.
  REQUIRE(r->Remove(dir / "d1/app.db").ok());
  REQUIRE(r->Add(dir / "d2/app.db").ok());
  REQUIRE(r->Close().ok());
}

TEST_CASE("a replica name derived from a file name cannot escape the replica root", "[names]") {
  test::TempDir dir;
  MakeDb(dir / "...db", "dots");   // name ".."
  MakeDb(dir / "..db", "dot");     // name "."
  auto r = OpenUnderRoot(dir);
  for (const char* f : {"...db", "..db"}) {
    Status s = r->Add(dir / f);
    INFO(s.ToString());
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(s.message().find("not a valid path segment") != std::string::npos);
  }
  // With its own URL the same file is fine.
  DatabaseOptions o;
  o.replica_url = dir.url("own/dots");
  o.poll_interval_ms = 0;
  REQUIRE(r->Add(dir / "...db", o).ok());
  REQUIRE(r->Sync(dir / "...db").ok());
  REQUIRE(r->Close().ok());
  CHECK(test::RestoreContent(dir.url("own/dots"), dir / "restored.db", 0) == test::DumpContent(dir / "...db"));
}

TEST_CASE("replite replicate refuses two databases with one file name for one replica root", "[names][cli]") {
  test::TempDir dir;
  REQUIRE(MakeDirs(dir / "d1").ok());
  REQUIRE(MakeDirs(dir / "d2").ok());
  MakeDb(dir / "d1/app.db", "one");
  MakeDb(dir / "d2/app.db", "two");
  std::string out;
  const int rc = test::Shell("'" + std::string(REPLITE_CLI_PATH) + "' replicate -once -state '" + dir / "state" +
                                 "' '" + dir / "d1/app.db" + "' '" + dir / "d2/app.db" + "' '" + dir.url("r") + "'",
                             &out);
  INFO(out);
  CHECK(rc != 0);
  CHECK(out.find("already uses") != std::string::npos);
}

// A database is known by its absolute, lexically normal path (two spellings
// of one path are one database). AbsolutePath returns an already normal
// absolute path as it is (the warm-add fast path) and normalises the rest
// exactly as std::filesystem does.
TEST_CASE("a database path is made absolute and normal the same way with or without the fast path", "[names]") {
  const std::string cwd = std::filesystem::current_path().string();
  for (const char* p :
       {"/a/b.db", "/a//b.db", "/a/./b.db", "/a/../b.db", "/a/b.db/", "/a/b.db/.", "/a/b.db/..", "//a/b.db", "/.",
        "/..", "/", "/a/.b.db", "/a/..b.db", "/a/b..db", "/a/b.", "a/b.db", "./a.db", "../a.db", "a.db", "/.hidden/x"}) {
    INFO(p);
    const std::string want = std::filesystem::absolute(p).lexically_normal().string();
    CHECK(AbsolutePath(p) == want);
  }
  CHECK(AbsolutePath("x.db") == cwd + "/x.db");
}
