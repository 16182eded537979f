// A database that starts generations over and over (issue 13, item 3):
// reported (status, metric, one log line with the cause and the fix), and
// its further generations (each a full snapshot) back off.
#include <catch2/catch.hpp>
#include <mutex>

#include "replite/replite.h"
#include "test_util.h"

using namespace replite;

TEST_CASE("a database starting generations in quick succession is reported and its snapshots back off", "[e2e]") {
  test::TempDir dir;
  const std::string db = dir / "app.db";
  test::Writer w(db);
  w.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  test::LogCapture log;
  ReplicatorOptions o;
  o.state_dir = dir / "state";
  o.defaults.replica_url = dir.url("backup");
  o.defaults.poll_interval_ms = 0;
  o.worker_threads = 1;
  o.fd_budget = 16;  // no kept connection, so no read mark: frames can be lost
  o.logger = log.Logger();
  std::unique_ptr<Replicator> r;
  REQUIRE(Replicator::Open(o, &r).ok());
  REQUIRE(r->Add(db).ok());
  uint64_t txid = 0;
  REQUIRE(r->WaitDurable(db, 10000, &txid).ok());  // generation 1
  // The application checkpoints and truncates the WAL before replite reads
  // its commits: each time a new generation (the database no longer
  // matches the captured state).
  auto lose_frames = [&](int i) {
    w.Exec("INSERT INTO t(v) VALUES ('row " + std::to_string(i) + "')");
    w.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
    // No Notify: its batch would run a job later, which could capture the
    // next commit before the next truncate. WaitDurable syncs itself.
  };
  for (int i = 0; i < 2; i++) {
    lose_frames(i);
    Status s = r->WaitDurable(db, 10000, &txid);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  DatabaseStatus st;
  REQUIRE(r->GetStatus(db, &st).ok());
  CHECK(st.generations_started == 3);
  CHECK(st.generation_churn == 2);
  CHECK(st.next_generation_not_before_ms > 0);
  CHECK(r->GetSummary().with_generation_churn == 1);
  CHECK(test::MetricSum(r->Metrics(), "replite_generation_churn_total") == 1);
  {
    size_t reports = 0;
    for (const auto& l : log.Lines())
      if (l.find("3 generations in a row") != std::string::npos) {
        reports++;
        CHECK(l.find("last cause:") != std::string::npos);
        CHECK(l.find("Notify") != std::string::npos);  // the fix
        CHECK(l.find("wal_autocheckpoint=0") != std::string::npos);
      }
    CHECK(reports == 1);
  }

  // The next one waits (30 s): the commit is not durable meanwhile...
  lose_frames(2);
  Status s = r->WaitDurable(db, 1500, &txid);
  INFO(s.ToString());
  CHECK(s.code() == Code::kTimeout);
  CHECK(s.message().find("generations started in quick succession") != std::string::npos);
  REQUIRE(r->GetStatus(db, &st).ok());
  CHECK(st.generations_started == 3);
  CHECK(st.last_error.find("Sync starts it now") != std::string::npos);
  // ...unless the application asks for it.
  REQUIRE(r->Sync(db, &txid).ok());
  REQUIRE(r->GetStatus(db, &st).ok());
  CHECK(st.generations_started == 4);
  CHECK(st.generation_churn == 3);
  REQUIRE(r->Close().ok());
  CHECK(test::RestoreContent(dir.url("backup"), dir / "latest.db", 0) == test::DumpContent(db));
}
