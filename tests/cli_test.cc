// [cli] The example program end to end: `replite replicate` beside a writer
// in this process, stopped by SIGINT (flushes, exits 0), then `restore`
// and `generations`; `restore -stop-at-last-good` on a damaged replica.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

#include "replite/replite.h"
#include "server_process.h"
#include "test_util.h"
#include "util/file_util.h"

extern char** environ;
using namespace replite;

namespace {

using test::Spawn;
using test::Wait;

int Run(const std::vector<std::string>& args, std::string* out = nullptr) {
  std::string cmd;
  for (const auto& a : args) cmd += "'" + a + "' ";
  cmd += "2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  std::string s;
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) s.append(buf, n);
  int st = pclose(p);
  if (out) *out = s;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

TEST_CASE("replite replicate, SIGINT, restore, generations", "[cli]") {
  test::TempDir dir;
  const std::string cli = REPLITE_CLI_PATH, db = dir / "app.db", url = dir.url("backup/app");
  test::Writer w(db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  pid_t pid = Spawn({cli, "replicate", "-state", dir / "state", "-poll-ms", "50", db, url});
  for (int i = 0; i < 200; i++) {
    w.Exec("INSERT INTO t(v) VALUES ('row " + std::to_string(i) + "')");
    if (i % 20 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  REQUIRE(kill(pid, SIGINT) == 0);
  CHECK(Wait(pid) == 0);  // flushed and exited cleanly
  std::string out;
  CHECK(Run({cli, "restore", "-o", dir / "restored.db", url}, &out) == 0);
  INFO(out);
  CHECK(test::IntegrityCheck(dir / "restored.db") == "ok\n");
  CHECK(test::DumpContent(dir / "restored.db") == test::DumpContent(db));
  CHECK(Run({cli, "restore", "-o", dir / "restored.db", url}, &out) == 1);  // exists
  CHECK(out.find("exists") != std::string::npos);
  CHECK(Run({cli, "restore", "-o", dir / "r1.db", "-txid", "1", url}, &out) == 0);
  CHECK(Run({cli, "restore", "-o", dir / "r2.db", "-timestamp", "2000-01-01T00:00:00Z", url}, &out) == 1);
  CHECK(out.find("NotFound") != std::string::npos);
  CHECK(Run({cli, "generations", url}, &out) == 0);
  CHECK(out.find("first_txid") != std::string::npos);
  CHECK(Run({cli, "replicate", db, "not-a-url"}, &out) == 1);
  CHECK(out.find("replica URL") != std::string::npos);
}

TEST_CASE("replite replicate -dir picks up every database, also new ones", "[cli]") {
  test::TempDir dir;
  const std::string cli = REPLITE_CLI_PATH;
  REQUIRE(MakeDirs(dir / "tenants").ok());
  {
    test::Writer a(dir / "tenants/a.db");
    a.Exec("CREATE TABLE t(v); INSERT INTO t VALUES ('a')");
  }
  pid_t pid = Spawn({cli, "replicate", "-state", dir / "state", "-poll-ms", "50", "-dir", dir / "tenants",
                     dir.url("backups")});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  {
    test::Writer b(dir / "tenants/b.db");
    b.Exec("CREATE TABLE t(v); INSERT INTO t VALUES ('b')");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(6500));  // the folder is rescanned every 5 s
  REQUIRE(kill(pid, SIGTERM) == 0);
  CHECK(Wait(pid) == 0);
  for (const char* name : {"a", "b"}) {
    std::string out;
    const std::string o = dir / (std::string(name) + "-restored.db");
    CHECK(Run({cli, "restore", "-o", o, dir.url(std::string("backups/") + name)}, &out) == 0);
    INFO(out);
    CHECK(test::DumpContent(o) == test::DumpContent(dir / ("tenants/" + std::string(name) + ".db")));
  }
}

TEST_CASE("polling finds commits of another process, even one that deletes the WAL on close", "[cli][e2e]") {
  test::TempDir dir;
  const std::string cli = REPLITE_CLI_PATH, db = dir / "app.db", url = dir.url("backup");
  {
    test::Writer w(db);
    w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  }
  pid_t pid = Spawn({cli, "replicate", "-state", dir / "state", "-poll-ms", "20", db, url});
  // Each statement is its own short-lived connection (like a cron job): the
  // last connection to close checkpoints and deletes the WAL.
  for (int i = 0; i < 30; i++) {
    test::Writer w(db);
    w.Exec("INSERT INTO t(v) VALUES ('" + std::to_string(i) + "')");
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(kill(pid, SIGINT) == 0);
  CHECK(Wait(pid) == 0);
  std::string out;
  CHECK(Run({cli, "restore", "-o", dir / "restored.db", url}, &out) == 0);
  INFO(out);
  CHECK(test::IntegrityCheck(dir / "restored.db") == "ok\n");
  CHECK(test::DumpContent(dir / "restored.db") == test::DumpContent(db));
}

TEST_CASE("replite replicate -metrics-addr serves Prometheus text without database names", "[cli]") {
  test::TempDir dir;
  const std::string cli = REPLITE_CLI_PATH, db = dir / "secret-tenant-name.db";
  {
    test::Writer w(db);
    w.Exec("CREATE TABLE t(v); INSERT INTO t VALUES (1)");
  }
  // A port free a moment ago (a fixed pick once collided with a test
  // server's port in CI: "Address already in use", exit 2).
  const int port = replite::testing::FreePort();
  REQUIRE(port > 0);
  const std::string addr = "127.0.0.1:" + std::to_string(port);
  pid_t pid = Spawn({cli, "replicate", "-state", dir / "state", "-metrics-addr", addr, db, dir.url("backup")});
  std::string out;
  for (int i = 0; i < 50; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (Run({"curl", "-sf", "http://" + addr + "/metrics"}, &out) == 0 && out.find("replite_syncs_total") != std::string::npos)
      break;
  }
  CHECK(out.find("replite_databases 1") != std::string::npos);
  CHECK(out.find("# TYPE replite_commit_to_durable_seconds histogram") != std::string::npos);
  CHECK(out.find("secret-tenant-name") == std::string::npos);
  CHECK(Run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://" + addr + "/other"}, &out) == 0);
  CHECK(out == "404");
  REQUIRE(kill(pid, SIGTERM) == 0);
  CHECK(Wait(pid) == 0);
}

TEST_CASE("replite restore -stop-at-last-good says where it stopped and why", "[cli][corruption]") {
  test::TempDir dir;
  const std::string cli = REPLITE_CLI_PATH, db = dir / "app.db", url = dir.url("backup");
  test::Writer w(db);
  w.Exec("CREATE TABLE t(v)");
  std::unique_ptr<Replicator> r;
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.logger = [](const std::string&) {};
  REQUIRE(Replicator::Open(o, &r).ok());
  REQUIRE(r->Add(db, DatabaseOptions{.replica_url = url, .poll_interval_ms = 0}).ok());
  std::vector<uint64_t> txids;
  std::vector<std::string> content;
  for (int i = 0; i < 3; i++) {  // one segment each
    w.Exec("INSERT INTO t VALUES (randomblob(2000))");
    uint64_t txid = 0;
    REQUIRE(r->Sync(db, &txid).ok());
    txids.push_back(txid);
    content.push_back(test::DumpContent(db));
  }
  REQUIRE(r->Close().ok());
  // Truncate the last segment.
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(url, &gens).ok());
  char name[64];
  std::snprintf(name, sizeof name, "%016llx-%016llx.seg", (unsigned long long)txids[2], (unsigned long long)txids[2]);
  const std::string seg = dir / ("backup/generations/" + gens.at(0).id + "/segments/" + name);
  REQUIRE(::truncate(seg.c_str(), 50) == 0);

  std::string out;
  CHECK(Run({cli, "restore", "-o", dir / "r.db", url}, &out) == 1);
  INFO(out);
  CHECK(out.find(name) != std::string::npos);
  CHECK_FALSE(FileExists(dir / "r.db"));
  CHECK(Run({cli, "restore", "-o", dir / "r.db", "-stop-at-last-good", url}, &out) == 0);
  CHECK(out.find("stopped at txid " + std::to_string(txids[1]) + ", before the requested txid " +
                 std::to_string(txids[2]) + ": object ") != std::string::npos);
  CHECK(out.find(name) != std::string::npos);
  CHECK(test::IntegrityCheck(dir / "r.db") == "ok\n");
  CHECK(test::DumpContent(dir / "r.db") == content[1]);
}

// Issue 13 item 2: a writer in another process on SQLite's defaults
// (autocheckpoint 1000) beside `replite replicate` with its default polling.
// Its own checkpoints used to copy and restart the WAL between two polls:
// a new generation every few seconds, and many commits never restorable on
// their own. replite's read mark on the hot database keeps every frame until
// it is captured: one generation, every commit its own txid.
TEST_CASE("a writer process with SQLite's default autocheckpoint loses no commit to its own checkpoints", "[cli][e2e]") {
  test::TempDir dir;
  const std::string cli = REPLITE_CLI_PATH, db = dir / "app.db", url = dir.url("backup");
  {
    test::Writer w(db, 1000);
    w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  }
  pid_t pid = Spawn({cli, "replicate", "-state", dir / "state", db, url});  // default poll interval
  std::this_thread::sleep_for(std::chrono::milliseconds(700));              // its first sync (txid 1)
  const int kCommits = 4000;
  const std::string py =
      "import sqlite3, sys, time\n"
      "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
      "for i in range(" + std::to_string(kCommits) + "):\n"
      "    c.execute('INSERT INTO t(v) VALUES (randomblob(2000))')\n"
      "    if i % 20 == 0: time.sleep(0.01)\n"
      "c.close()\n";
  std::string out;
  REQUIRE(test::Shell("python3 -c \"$(cat <<'PY'\n" + py + "PY\n)\" '" + db + "'", &out) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // two more polls
  REQUIRE(kill(pid, SIGTERM) == 0);
  CHECK(Wait(pid) == 0);
  CHECK(Run({cli, "generations", url}, &out) == 0);
  INFO(out);
  CHECK(std::count(out.begin(), out.end(), '\n') == 2);  // the header and one generation
  RestoreResult rr;
  CHECK(test::RestoreContent(url, dir / "latest.db", 0, &rr) == test::DumpContent(db));
  CHECK(rr.txid == 1 + kCommits);
  // Every commit is a restore point of its own: txid 1 + k holds k rows.
  for (int k : {1, 999, 1000, 1001, 2500, kCommits - 1}) {
    const std::string o = dir / ("at-" + std::to_string(k) + ".db");
    test::RestoreContent(url, o, 1 + k);
    std::string n;
    REQUIRE(test::Sqlite3(o, "SELECT count(*), max(id) FROM t", &n) == 0);
    CHECK(n == std::to_string(k) + "|" + std::to_string(k) + "\n");
  }
}

// Issue 14 item 8: help is asked for, not a mistake.
TEST_CASE("replite -h, --help, help and VERB -h print the usage and exit 0", "[cli]") {
  const std::string cli = REPLITE_CLI_PATH;
  for (const std::vector<std::string>& a : std::vector<std::vector<std::string>>{
           {cli, "-h"}, {cli, "--help"}, {cli, "help"}, {cli, "replicate", "-h"}, {cli, "restore", "--help"},
           {cli, "generations", "-h"}}) {
    std::string out;
    INFO(a.back());
    CHECK(Run(a, &out) == 0);
    CHECK(out.find("usage:") != std::string::npos);
  }
  std::string out;
  CHECK(Run({cli, "replicate", "-no-such-flag"}, &out) == 2);  // a mistake still is one
}
