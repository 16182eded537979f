// [modes] Issue 14 item 10: replica objects, spool segments, positions and
// restored databases were 0644 (and new directories 0755) under umask 022,
// even when the source database was 0600: anyone on the machine could read
// a private database through its replica or its spool. Everything replite
// creates is now 0600, in directories it creates 0700; directories that
// existed already keep their mode.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "replite/replite.h"
#include "test_util.h"
#include "util/file_util.h"

using namespace replite;
namespace fs = std::filesystem;

namespace {

mode_t ModeOf(const std::string& p) {
  struct stat st;
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Every file under `root` is 0600 and every directory 0700 (root included);
// returns how many files there are.
int CheckTree(const std::string& root) {
  CHECK(ModeOf(root) == 0700);
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string p = e.path().string();
    INFO(p);
    if (e.is_directory()) {
      CHECK(ModeOf(p) == 0700);
    } else {
      CHECK(ModeOf(p) == 0600);
      files++;
    }
  }
  return files;
}

struct Umask {
  mode_t old = ::umask(022);
  ~Umask() { ::umask(old); }
};

}  // namespace

TEST_CASE("file modes: state, spool, replica objects and restored databases are private under umask 022", "[modes]") {
  Umask um;
  test::TempDir dir;
  const std::string db = dir / "app.db", replica = dir / "backups/replica", state = dir / "state";
  test::Writer w(db);
  w.Exec("CREATE TABLE t(v)");
  REQUIRE(::chmod(db.c_str(), 0600) == 0);
  REQUIRE(MakeDirs(dir / "backups").ok());
  REQUIRE(::chmod((dir / "backups").c_str(), 0755) == 0);  // existed before: left as it is
  ReplicatorOptions o;
  o.state_dir = state;
  o.defaults.replica_url = "file://" + replica;
  o.defaults.poll_interval_ms = 0;
  o.logger = [](const std::string&) {};
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  REQUIRE(r->Add(db).ok());
  REQUIRE(r->Sync(db).ok());  // the first snapshot
  // The store goes down (a regular file where the replica directory was):
  // captured segments wait in the upload spool.
  fs::rename(replica, replica + ".away");
  REQUIRE(WriteFileAtomic(replica, "not a directory").ok());
  for (int i = 0; i < 20; i++) {
    w.Exec("INSERT INTO t VALUES (randomblob(3000))");
    r->Sync(db);  // fails while the store is down: spooled
  }
  CheckTree(state);
  REQUIRE(FileExists(state + "/upload-spool"));
  CHECK(CheckTree(state + "/upload-spool") >= 1);  // segments waiting for the store
  CHECK(ModeOf(state + "/positions.db") == 0600);
  // The store comes back: the spool drains into directories created 0700.
  REQUIRE(::unlink(replica.c_str()) == 0);
  fs::rename(replica + ".away", replica);
  Status s;
  for (int i = 0; i < 100; i++) {
    s = r->Sync(db);
    if (s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(s.ok());
  CHECK(CheckTree(replica) >= 2);  // manifest, snapshot (and segments)
  CHECK(ModeOf(dir / "backups") == 0755);
  CHECK(r->Close().ok());
  CheckTree(state);
  REQUIRE(Restore("file://" + replica, dir / "restored.db", RestoreOptions()).ok());
  CHECK(ModeOf(dir / "restored.db") == 0600);
  CHECK(test::DumpContent(dir / "restored.db") == test::DumpContent(db));
}
