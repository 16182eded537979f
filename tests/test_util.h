// Helpers shared by the tests: temporary directories, a SQLite writer, and
// content comparison (SQLite itself is the oracle for restores).
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <random>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

#include <memory>

#include "replite/replicator.h"
#include "replite/restore.h"
#include "replite/sys/env.h"

namespace replite::testing {
class MotoServer;
class AzuriteServer;
class SshdServer;
}  // namespace replite::testing

namespace replite {
struct ReplicaUrl;
}

namespace replite::test {

// The shared moto S3 server, with test credentials in the environment
// (secret: `secret`). FAILs the test when moto cannot start, unless
// REPLITE_ALLOW_S3_SKIP=1 (then WARNs and returns nullptr: skip).
testing::MotoServer* MotoForTest(const std::string& secret = "replite-test-secret");

// The shared azurite server; FAILs the test when it cannot start (there is
// no skip: install it with scripts/install-deps.sh).
testing::AzuriteServer* AzuriteForTest();
// The shared sshd (SFTP) server; FAILs the test when it cannot start.
testing::SshdServer* SshdForTest();

// A replica URL that must parse (REQUIREd).
ReplicaUrl ParsedUrl(const std::string& url);


// A fresh directory under $TMPDIR, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  std::string url(const std::string& name) const { return "file://" + path_ + "/" + name; }

 private:
  std::string path_;
};

// An application connection: WAL mode, busy timeout, autocheckpoint off
// unless asked.
class Writer {
 public:
  explicit Writer(const std::string& path, int autocheckpoint = 0, int page_size = 4096);
  ~Writer();
  void Exec(const std::string& sql);  // REQUIREs success
  sqlite3* db() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// One transaction of a varied workload on tables items(id, name, n, data)
// and blobs(id, data): inserts, overflow blobs, updates, deletes, a bulk
// insert. Always exactly one committed transaction.
void MutateVaried(Writer& w, std::mt19937& rng, int i);

// The WAL bytes `wal` with its header magic and whole checksum chain
// recomputed in the given byte order (what a machine of that order writes).
std::string RechainWal(const std::string& wal, bool big_endian);

// Every table's rows (ordered), the schema and user_version as one string.
std::string DumpContent(const std::string& db_path);
// Restores `url` at `txid` (0 = latest) into a fresh file `out`, REQUIREs
// success, CHECKs integrity_check, and returns the restored content.
std::string RestoreContent(const std::string& url, const std::string& out, uint64_t txid,
                           RestoreResult* res = nullptr);
// Restores `url` with `ro` into `out` and checks it is exactly the recorded
// commit: txid, verified checksum, PRAGMA integrity_check and content.
void CheckRestore(const std::string& url, const std::string& out, const RestoreOptions& ro, uint64_t txid,
                  uint64_t checksum, const std::string& content);
// A backend's end-to-end check: replicates `txs` transactions of
// MutateVaried (a VACUUM halfway) from a new database in `dir` to `url`,
// checkpointing every 50 pages, syncing after some of them; then restores
// every sampled txid (every `sample_every`-th, the VACUUM's and the last)
// and the latest, each checked exactly (CheckRestore).
void ReplicateVariedAndRestore(const std::string& url, const TempDir& dir, int txs, uint32_t seed, int sample_every);

// Sum of every series of metric `name` in Prometheus text; FAILs if the text
// does not export `name` at all (so a renamed metric cannot pass "== 0").
double MetricSum(const std::string& text, const std::string& name);
std::string IntegrityCheck(const std::string& db_path);
// A numeric field of /proc/self/status (e.g. "RssAnon:", in kB; "Threads:"),
// or -1.
long ProcStatus(const char* field);
// Runs a shell command line; returns its exit code, and its output (2>&1)
// in *out.
int Shell(const std::string& cmd, std::string* out);
// Runs `sql` on `db_path` in another process (the sqlite3 command-line
// program, SQLite's defaults, no busy wait): its exit code and output.
// Starts args[0] (a path) with args; Wait returns its exit code, or 128 +
// the signal that ended it.
pid_t Spawn(const std::vector<std::string>& args);
int Wait(pid_t pid);
int Sqlite3(const std::string& db_path, const std::string& sql, std::string* out);
// Content checksum of the live database (database file + WAL).
uint64_t LiveChecksum(const std::string& db_path);

// A clock tests can move: NowMicros returns the value set.
class ManualClockEnv : public EnvWrapper {
 public:
  explicit ManualClockEnv(int64_t start_us) : EnvWrapper(Env::Default()), now_(start_us) {}
  int64_t NowMicros() override { return now_.load(); }
  void Set(int64_t us) { now_ = us; }
  void Advance(int64_t us) { now_ += us; }

 private:
  std::atomic<int64_t> now_;
};

// A Replicator with polling off and no log, its state in dir/state, whose
// databases replicate to `url` (DatabaseOptions::replica_url).
std::unique_ptr<Replicator> OpenManual(const TempDir& dir, const std::string& url);

// Collects a Replicator's log lines (ReplicatorOptions::logger).
class LogCapture {
 public:
  std::function<void(const std::string&)> Logger();
  bool Has(const std::string& needle) const;
  std::vector<std::string> Lines() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// A replica ("replica" under dir) of dir/a.db with two generations, A then
// B, where B's first snapshot is older than the 60-minute retention window
// on the manual clock, so that retention drops A (the retention tests).
struct TwoGenerationReplica {
  TempDir dir;
  std::string db, url;
  ManualClockEnv env{int64_t(1767225600) * 1000000};
  int64_t retention_ms = 60 * 60 * 1000;
  std::vector<GenerationInfo> gens;  // A and B, as listed before retention
  TwoGenerationReplica();
  int64_t now_ms() { return env.NowMicros() / 1000; }
};

}  // namespace replite::test
