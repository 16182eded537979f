// Change-driven wakeups (issue 13, item 2): a polled database that went
// idle is synced as soon as it is written again, not after its backed-off
// poll interval.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "replite/replite.h"
#include "test_util.h"

using namespace replite;

TEST_CASE("a write to a polled database wakes it within milliseconds, not at its next poll", "[e2e]") {
  test::TempDir dir;
  const std::string db = dir / "app.db", other = dir / "other.db";
  test::Writer w(db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  test::Writer w2(other);
  w2.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.replica_url = dir.url("backup");
  o.defaults.poll_interval_ms = 20000;  // as idle as a backed-off database
  o.logger = [](const std::string&) {};
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  REQUIRE(r->Add(db).ok());
  REQUIRE(r->Add(other).ok());  // one watch serves both (same directory)
  uint64_t first = 0;
  REQUIRE(r->Sync(db, &first).ok());
  REQUIRE(r->Sync(other).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  // GetStatus does not sync; only the wakeup (or the poll, 20 s away) can.
  auto durable_within = [&](const std::string& path, uint64_t after, int ms) {
    const auto t0 = std::chrono::steady_clock::now();
    DatabaseStatus st;
    while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(ms)) {
      REQUIRE(r->GetStatus(path, &st).ok());
      if (st.durable_txid > after) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  const auto t0 = std::chrono::steady_clock::now();
  w.Exec("INSERT INTO t(v) VALUES ('after a long idle')");
  CHECK(durable_within(db, first, 3000));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  INFO("commit to durable: " << took.count() << " ms");
  CHECK(took.count() < 3000);
  DatabaseStatus st;
  REQUIRE(r->GetStatus(other, &st).ok());
  const uint64_t other_txid = st.durable_txid;
  w2.Exec("INSERT INTO t(v) VALUES ('the neighbour')");
  CHECK(durable_within(other, other_txid, 3000));
  CHECK(test::MetricSum(r->Metrics(), "replite_polls_total") > 0);
  CHECK(r->Metrics().find("outcome=\"wakeup\"") != std::string::npos);
  REQUIRE(r->Close().ok());
  CHECK(test::RestoreContent(dir.url("backup/app"), dir / "r.db", 0) == test::DumpContent(db));
}
