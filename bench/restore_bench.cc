// Restore speed (issue 15). Two parts, each printed with a baseline from
// the same run:
//
// 1. Latest restore of a large database (MB of rows, half random, half
//    zeros, with an index) from a file:// replica (a snapshot and a few
//    segments after it), and with --s3 from an S3 server started on
//    127.0.0.1: moto, or s3rver (npm install s3rver; $S3RVER names its
//    binary), which serves ranged GETs from files where moto reads the
//    whole object for each. Baseline: `zstd -d` of the same database's
//    bytes (zstd -1, one thread, streamed) written to a file and fsynced,
//    which is what a restore has to do at least; also `zstd -d` the command
//    when installed, PRAGMA integrity_check alone (a restore runs it too),
//    and with --s3 one GET of the snapshot object (curl).
// 2. --hours H (default 24): a database that ran H hours at one commit per
//    second on a simulated clock (default compaction levels and snapshot
//    interval). Printed: store requests per hot database-hour (compaction
//    included), then the restore of the latest txid: objects read and time,
//    against the restore of a replica holding only a snapshot of the same
//    final database.
//
//   build/bench/restore_bench [--mb 1024] [--dir /tmp] [--s3 moto|s3rver] [--hours 24] [--part latest,day] [--keep 1]
#include <sqlite3.h>
#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "replite/replite.h"
#include "replite/sys/env.h"
#include "format/layout.h"

// S3 servers on 127.0.0.1 for --s3 (see tests/moto_server.h, tests/server_process.h).
#include "../tests/moto_server.cc"
#include "../tests/server_process.cc"

using namespace replite;
using bench::Exec;
using bench::Now;

namespace {

// An Env whose clock the benchmark moves (the simulated day).
class ManualClock : public EnvWrapper {
 public:
  explicit ManualClock(int64_t start_us) : EnvWrapper(Env::Default()), now_(start_us) {}
  int64_t NowMicros() override { return now_.load(); }
  void Advance(int64_t us) { now_ += us; }

 private:
  std::atomic<int64_t> now_;
};

void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

// zstd -1 of `in` into `out` (not timed: the replica's side).
void Compress(const std::string& in, const std::string& out) {
  std::ifstream f(in, std::ios::binary);
  std::ofstream o(out, std::ios::binary | std::ios::trunc);
  ZSTD_CCtx* cx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, 1);
  std::string buf(1 << 20, '\0'), ob_buf(ZSTD_CStreamOutSize(), '\0');
  for (;;) {
    f.read(buf.data(), std::streamsize(buf.size()));
    const size_t got = size_t(f.gcount());
    const bool last = got < buf.size();
    ZSTD_inBuffer ib{buf.data(), got, 0};
    for (;;) {
      ZSTD_outBuffer ob{ob_buf.data(), ob_buf.size(), 0};
      const size_t rem = ZSTD_compressStream2(cx, &ob, &ib, last ? ZSTD_e_end : ZSTD_e_continue);
      o.write(ob_buf.data(), std::streamsize(ob.pos));
      if (last ? rem == 0 : ib.pos == ib.size) break;
    }
    if (last) break;
  }
  ZSTD_freeCCtx(cx);
}

// The baseline: zstd -d of `zst` (one thread, streamed) written to `out`
// and fsynced. Seconds.
double Decompress(const std::string& zst, const std::string& out) {
  const double t0 = Now();
  std::ifstream f(zst, std::ios::binary);
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ZSTD_DCtx* dx = ZSTD_createDCtx();
  std::string buf(ZSTD_DStreamInSize(), '\0'), ob_buf(ZSTD_DStreamOutSize(), '\0');
  for (;;) {
    f.read(buf.data(), std::streamsize(buf.size()));
    const size_t got = size_t(f.gcount());
    if (got == 0) break;
    ZSTD_inBuffer ib{buf.data(), got, 0};
    while (ib.pos < ib.size) {
      ZSTD_outBuffer ob{ob_buf.data(), ob_buf.size(), 0};
      ZSTD_decompressStream(dx, &ob, &ib);
      if (::write(fd, ob_buf.data(), ob.pos) != ssize_t(ob.pos)) std::abort();
    }
  }
  ::fsync(fd);
  ::close(fd);
  ZSTD_freeDCtx(dx);
  return Now() - t0;
}

double IntegrityCheckS(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  const double t0 = Now();
  Exec(db, "PRAGMA integrity_check");
  const double t = Now() - t0;
  sqlite3_close(db);
  return t;
}

std::string Content(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  std::string out;
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*), sum(length(v)), total(id * 7 + length(k)) FROM t", -1, &st, nullptr);
  if (sqlite3_step(st) == SQLITE_ROW)
    for (int i = 0; i < 3; i++) out += std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, i))) + " ";
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// Restores the latest txid of `url` to `out`; seconds (best of `runs`).
double TimeRestore(const std::string& url, const std::string& out, int runs, RestoreResult* res, uint64_t txid = 0) {
  double best = 1e9;
  for (int i = 0; i < runs; i++) {
    std::filesystem::remove(out);
    RestoreOptions ro;
    ro.txid = txid;
    const double t0 = Now();
    Status s = Restore(url, out, ro, res);
    const double t = Now() - t0;
    if (!s.ok()) Die("restore " + url, s);
    best = std::min(best, t);
  }
  return best;
}

std::unique_ptr<Replicator> OpenReplicator(const std::string& state, const std::string& url, Env* env = nullptr) {
  ReplicatorOptions o;
  o.state_dir = state;
  o.defaults.replica_url = url;
  o.defaults.poll_interval_ms = 0;
  o.logger = [](const std::string&) {};
  if (env) o.env = env;
  std::unique_ptr<Replicator> r;
  Status s = Replicator::Open(o, &r);
  if (!s.ok()) Die("open replicator", s);
  return r;
}

void LatestPart(int mb, const std::string& base, const std::string& s3) {
  const std::string db_path = base + "/app.db";
  sqlite3* db = bench::MakeRowsDb(db_path, mb);
  std::unique_ptr<testing::MotoServer> moto;
  pid_t s3rver = -1;
  std::string endpoint;  // of the S3 server, if any
  std::vector<std::pair<std::string, std::string>> replicas{{"file://", "file://" + base + "/replica"}};
  if (s3 == "moto") {
    setenv("AWS_ACCESS_KEY_ID", "AKIDBENCH", 1);  // moto checks no signature
    setenv("AWS_SECRET_ACCESS_KEY", "bench-secret", 1);
    std::string why;
    moto = testing::MotoServer::Start(&why);
    if (!moto || !moto->CreateBucket("restore-bench").ok()) {
      std::fprintf(stderr, "cannot start moto_server: %s\n", why.c_str());
      std::exit(1);
    }
    endpoint = moto->endpoint();
  } else if (s3 == "s3rver") {
    // s3rver (npm install s3rver; $S3RVER names the binary): objects in
    // files, ranged GETs served from them.
    setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    setenv("NODE_OPTIONS", "--openssl-legacy-provider", 1);
    const char* bin = std::getenv("S3RVER");
    const int port = testing::FreePort();
    endpoint = "http://127.0.0.1:" + std::to_string(port);
    std::filesystem::create_directories(base + "/s3rver");
    std::string why;
    s3rver = testing::SpawnLogged({bin ? bin : "s3rver", "-d", base + "/s3rver", "-a", "127.0.0.1", "-p",
                                   std::to_string(port), "--configure-bucket", "restore-bench"},
                                  base + "/s3rver.log", &why);
    const std::string probe = "curl -sf -o /dev/null " + endpoint + "/restore-bench";
    if (s3rver < 0 || !testing::WaitUntilUp(s3rver, [&] { return std::system(probe.c_str()) == 0; }, "s3rver",
                                            "is s3rver installed (npm install s3rver; S3RVER=path)?",
                                            base + "/s3rver.log", &why)) {
      std::fprintf(stderr, "cannot start s3rver: %s\n", why.c_str());
      std::exit(1);
    }
  }
  if (!endpoint.empty())
    replicas.push_back({"s3 (" + s3 + ")", "s3://restore-bench/app?endpoint=" + endpoint +
                                             "&force-path-style=true&region=us-east-1"});
  // The replica: a snapshot, then 10 small transactions in their segments.
  for (size_t k = 0; k < replicas.size(); k++) {
    auto r = OpenReplicator(base + "/state" + std::to_string(k), replicas[k].second);
    if (Status s = r->Add(db_path); !s.ok()) Die("add", s);
    if (Status s = r->Sync(db_path); !s.ok()) Die("sync", s);
    for (int i = 0; i < 10; i++) {
      Exec(db, "UPDATE t SET v = randomblob(3000) WHERE id = " + std::to_string(1 + i * 1000));
      if (Status s = r->Sync(db_path); !s.ok()) Die("sync", s);
    }
    r->Close();
  }
  sqlite3_close(db);
  const uint64_t bytes = std::filesystem::file_size(db_path);
  const std::string want = Content(db_path);

  Compress(db_path, base + "/app.db.zst");
  const uint64_t zst_bytes = std::filesystem::file_size(base + "/app.db.zst");
  ::sync();  // the database's creation is written back before anything is timed
  double zstd_s = 1e9;
  for (int i = 0; i < 3; i++) zstd_s = std::min(zstd_s, Decompress(base + "/app.db.zst", base + "/baseline.db"));
  double zstd_cmd_s = 0;
  if (std::system("command -v zstd >/dev/null 2>&1") == 0) {
    zstd_cmd_s = 1e9;
    for (int i = 0; i < 2; i++) {
      const double t0 = Now();
      const std::string cmd = "zstd -q -d -f " + base + "/app.db.zst -o " + base + "/baseline.db && sync " + base +
                              "/baseline.db";
      if (std::system(cmd.c_str()) != 0) std::exit(1);
      zstd_cmd_s = std::min(zstd_cmd_s, Now() - t0);
    }
  }
  const double ic_s = IntegrityCheckS(base + "/baseline.db");
  std::filesystem::remove(base + "/baseline.db");

  std::printf("database: %.1f MB, zstd -1: %.1f MB\n", bytes / 1e6, zst_bytes / 1e6);
  std::printf("baseline zstd -d + write + fsync (in process, 1 thread): %.3f s (%.0f MB/s)\n", zstd_s,
              bytes / 1e6 / zstd_s);
  if (zstd_cmd_s > 0) std::printf("baseline `zstd -d -o OUT && sync OUT` (command):       %.3f s\n", zstd_cmd_s);
  std::printf("PRAGMA integrity_check alone on the same database:     %.3f s\n", ic_s);
  if (!endpoint.empty()) {
    // The download alone: the snapshot object in one GET (curl).
    std::vector<GenerationInfo> gens;
    if (Status s = ListGenerations(replicas[1].second, &gens); !s.ok() || gens.empty()) Die("generations", s);
    const std::string obj = endpoint + "/restore-bench/" + SnapshotKey("app", gens[0].id, gens[0].first_txid);
    double get_s = 1e9;
    for (int i = 0; i < 2; i++) {
      const double t0 = Now();
      if (std::system(("curl -sf -o /dev/null " + obj).c_str()) != 0) std::exit(1);
      get_s = std::min(get_s, Now() - t0);
    }
    std::printf("baseline: one GET of the snapshot object from %s (curl): %.3f s (%.0f MB/s)\n", s3.c_str(), get_s,
                zst_bytes / 1e6 / get_s);
  }
  for (const auto& [name, url] : replicas) {
    RestoreResult res;
    const double t = TimeRestore(url, base + "/restored.db", 3, &res);
    if (Content(base + "/restored.db") != want) {
      std::fprintf(stderr, "restored content differs from the source\n");
      std::exit(1);
    }
    std::printf("restore latest from %-9s %.3f s (%.0f MB/s) = %.2fx zstd -d + write; %llu objects, %.1f MB read\n",
                name.c_str(), t, bytes / 1e6 / t, t / zstd_s, (unsigned long long)res.objects, res.bytes / 1e6);
  }
  std::filesystem::remove(base + "/restored.db");
  if (s3rver > 0) testing::StopChild(s3rver);
}

// Sums replite_store_requests_total by operation from `metrics`.
std::map<std::string, double> StoreRequests(const std::string& metrics) {
  std::map<std::string, double> out;
  std::istringstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("replite_store_requests_total{", 0) != 0) continue;
    const size_t op = line.find("op=\"");
    const size_t sp = line.rfind(' ');
    if (op == std::string::npos || sp == std::string::npos) continue;
    const std::string name = line.substr(op + 4, line.find('"', op + 4) - op - 4);
    out[name] += std::atof(line.c_str() + sp + 1);
  }
  return out;
}

void DayPart(double hours, const std::string& base) {
  const std::string db_path = base + "/day.db";
  sqlite3* db = nullptr;
  sqlite3_open(db_path.c_str(), &db);
  Exec(db, "PRAGMA journal_mode=WAL");  // SQLite's defaults otherwise (autocheckpoint on)
  Exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB)");
  Exec(db, "CREATE INDEX t_k ON t(k)");
  ManualClock clock(int64_t(1767225600) * 1000000);
  const std::string url = "file://" + base + "/day-replica";
  auto r = OpenReplicator(base + "/day-state", url, &clock);
  if (Status s = r->Add(db_path); !s.ok()) Die("add", s);
  if (Status s = r->Sync(db_path); !s.ok()) Die("sync", s);
  const int commits = int(hours * 3600);
  // The state one second before the end: with a whole number of days, the
  // last one before the daily snapshot, the restore reading the most.
  uint64_t before_txid = 0;
  std::string before_content;
  const double t0 = Now();
  // One commit a second: mostly inserts of ~500 B rows, some updates.
  for (int i = 1; i <= commits; i++) {
    clock.Advance(1000000);
    if (i % 4 == 0)
      Exec(db, "UPDATE t SET v = randomblob(500) WHERE id = " + std::to_string(1 + (i * 7919) % (i / 2 + 1)));
    else
      Exec(db, "INSERT INTO t(k, v) VALUES ('k" + std::to_string(i * 31 % 100003) + "', randomblob(500))");
    uint64_t txid = 0;
    if (Status s = r->Sync(db_path, &txid); !s.ok()) Die("sync", s);
    if (i == commits - 1) {
      before_txid = txid;
      before_content = Content(db_path);
    }
  }
  const double run_s = Now() - t0;
  const std::string metrics = r->Metrics();
  const auto req = StoreRequests(metrics);
  if (std::getenv("RESTORE_BENCH_METRICS")) std::fputs(metrics.c_str(), stderr);
  r->Close();
  sqlite3_close(db);
  double total = 0;
  std::string by_op;
  for (const auto& [op, n] : req) {
    total += n;
    char b[64];
    std::snprintf(b, sizeof b, " %s %.0f", op.c_str(), n / hours);
    by_op += b;
  }
  const std::string want = Content(db_path);
  std::printf("simulated %.1f h at one commit/s (%d commits, %.0f s of wall time), database %.1f MB\n", hours, commits,
              run_s, std::filesystem::file_size(db_path) / 1e6);
  std::printf("store requests per hot database-hour (compaction included): %.0f (%s)\n", total / hours,
              by_op.c_str() + 1);
  RestoreResult res, before;
  const double t = TimeRestore(url, base + "/day-restored.db", 5, &res);
  if (Content(base + "/day-restored.db") != want) {
    std::fprintf(stderr, "restored content differs from the source\n");
    std::exit(1);
  }
  const double tb = TimeRestore(url, base + "/day-restored.db", 5, &before, before_txid);
  if (Content(base + "/day-restored.db") != before_content) {
    std::fprintf(stderr, "restored content of txid %llu differs from the source's\n", (unsigned long long)before_txid);
    std::exit(1);
  }
  // The baseline: a replica holding one snapshot of the same final database.
  {
    auto r2 = OpenReplicator(base + "/snap-state", "file://" + base + "/snap-replica");
    if (Status s = r2->Add(db_path); !s.ok()) Die("add", s);
    if (Status s = r2->Sync(db_path); !s.ok()) Die("sync", s);
    r2->Close();
  }
  RestoreResult snap;
  const double ts = TimeRestore("file://" + base + "/snap-replica", base + "/day-restored.db", 5, &snap);
  std::printf("restore of a replica holding one snapshot of the final database: %.3f s (%llu object)\n", ts,
              (unsigned long long)snap.objects);
  std::printf("restore latest (txid %llu): %llu objects (%.1f MB), %.3f s = %.2fx the snapshot-only restore\n",
              (unsigned long long)res.txid, (unsigned long long)res.objects, res.bytes / 1e6, t, t / ts);
  std::printf("restore of txid %llu, 1 s earlier: %llu objects (%.1f MB), %.3f s = %.2fx the snapshot-only restore\n",
              (unsigned long long)before.txid, (unsigned long long)before.objects, before.bytes / 1e6, tb, tb / ts);
}

}  // namespace

int main(int argc, char** argv) {
  int mb = 1024;
  double hours = 24;
  std::string dir = "/tmp", s3, parts = "latest,day";
  bool keep = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--mb") mb = std::atoi(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--s3") s3 = argv[i + 1];
    else if (a == "--hours") hours = std::atof(argv[i + 1]);
    else if (a == "--part") parts = argv[i + 1];
    else if (a == "--keep") keep = std::atoi(argv[i + 1]) != 0;
    else {
      std::fprintf(stderr, "usage: restore_bench [--mb 1024] [--dir /tmp] [--s3 moto|s3rver] [--hours 24] [--part latest,day] [--keep 1]\n");
      return 2;
    }
  }
  const std::string base = dir + "/replite-restore-bench";
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  if (parts.find("latest") != std::string::npos) LatestPart(mb, base, s3);
  if (parts.find("day") != std::string::npos) DayPart(hours, base);
  if (!keep) std::filesystem::remove_all(base);
  return 0;
}
