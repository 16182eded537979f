// One very large transaction (issue 13: "One 1 GB transaction: durable in
// <= 2x the time zstd -1 -T1 takes on the same bytes, RSS within the memory
// cap"). A database on SQLite's defaults gets one transaction of MB
// megabytes of rows (half random, half zeros); the time from COMMIT to
// durable in a file:// replica (Sync) is compared, in the same run, with
// zstd -1 single-threaded over the WAL's bytes (what capture compresses),
// and the process's peak RSS growth during the capture with the memory cap.
//
//   build/bench/big_txn_bench [MB=1024] [DIR=/tmp] [MEMORY_CAP_MB=256]
#include <sqlite3.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "bench_util.h"
#include "replite/replite.h"

using namespace replite;
using bench::Exec;
using bench::Now;

namespace {

// Current resident set (VmRSS), MB.
double RssMb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  return 0;
}

// CPU seconds (user + system) of every thread of the process so far: on a
// loaded machine wall time measures the neighbours, CPU time the work.
double CpuS() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double PeakRssMb() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

// zstd -1, one thread, streamed over a file in 1 MiB pieces: seconds and
// compressed bytes. With `out_path`, the output is written to that file
// and fsynced before the clock stops (what `zstd -1 -T1 IN -o OUT && sync`
// costs: the same durability a replica object needs); else it is dropped.
double ZstdFile(const std::string& path, uint64_t* out_bytes, const std::string& out_path = "") {
  ZSTD_CCtx* cx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, 1);
  std::ifstream in(path, std::ios::binary);
  std::string buf(1 << 20, '\0'), out(ZSTD_CStreamOutSize(), '\0');
  *out_bytes = 0;
  const double t0 = Now();
  int fd = out_path.empty() ? -1 : ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  for (;;) {
    in.read(buf.data(), std::streamsize(buf.size()));
    const size_t got = size_t(in.gcount());
    const bool last = got < buf.size();
    ZSTD_inBuffer ib{buf.data(), got, 0};
    for (;;) {
      ZSTD_outBuffer ob{out.data(), out.size(), 0};
      const size_t rem = ZSTD_compressStream2(cx, &ob, &ib, last ? ZSTD_e_end : ZSTD_e_continue);
      *out_bytes += ob.pos;
      if (fd >= 0 && ::write(fd, out.data(), ob.pos) != ssize_t(ob.pos)) std::abort();
      if (last ? rem == 0 : ib.pos == ib.size) break;
    }
    if (last) break;
  }
  if (fd >= 0) {
    if (::fsync(fd) != 0) std::abort();
    ::close(fd);
  }
  const double t = Now() - t0;
  ZSTD_freeCCtx(cx);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const int mb = argc > 1 ? std::atoi(argv[1]) : 1024;
  const std::string base = std::string(argc > 2 ? argv[2] : "/tmp") + "/replite-big-txn-bench";
  const uint64_t cap_mb = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 256;
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  const std::string db_path = base + "/app.db";

  sqlite3* db = nullptr;
  sqlite3_open(db_path.c_str(), &db);
  Exec(db, "PRAGMA journal_mode=WAL");
  Exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");

  ReplicatorOptions o;
  o.state_dir = base + "/state";
  o.defaults.replica_url = "file://" + base + "/replica";
  o.defaults.poll_interval_ms = 0;  // Sync drives the capture
  o.memory_cap = cap_mb << 20;
  o.logger = [](const std::string& l) { std::fprintf(stderr, "  replite: %s\n", l.c_str()); };
  std::unique_ptr<Replicator> r;
  if (!Replicator::Open(o, &r).ok() || !r->Add(db_path).ok() || !r->Sync(db_path).ok()) return 1;

  // One transaction of `mb` MB: 4 KB rows.
  double t0 = Now();
  Exec(db, "BEGIN");
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES (randomblob(2000) || zeroblob(2000))", -1, &st, nullptr);
  for (int i = 0; i < mb * 256; i++) {
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  Exec(db, "COMMIT");
  const double write_s = Now() - t0;
  const uint64_t wal_bytes = std::filesystem::file_size(db_path + "-wal");
  // The baseline reads the WAL before the capture (both then read it from
  // the page cache, where the writer left it): after the capture replite's
  // checkpoint and the last close take the WAL away.
  uint64_t zbytes = 0;
  double c0 = CpuS();
  const double zstd_s = ZstdFile(db_path + "-wal", &zbytes);
  const double zstd_cpu = CpuS() - c0;
  // The same, its output written to a file beside the replica and fsynced.
  std::filesystem::create_directories(base + "/baseline");
  uint64_t zbytes_file = 0;
  const double zstd_file_s = ZstdFile(db_path + "-wal", &zbytes_file, base + "/baseline/wal.zst");
  // And the zstd command itself, when installed: `zstd -1 -T1 WAL -o OUT`
  // (reads the file, writes the output to the page cache, no fsync).
  double zstd_cli_s = -1;
  if (std::system("command -v zstd >/dev/null 2>&1") == 0) {
    const double t = Now();
    const std::string cmd = "zstd -q -f -1 -T1 '" + db_path + "-wal' -o '" + base + "/baseline/cli.zst'";
    if (std::system(cmd.c_str()) == 0) zstd_cli_s = Now() - t;
  }
  std::filesystem::remove_all(base + "/baseline");

  const double rss_before = RssMb();
  t0 = Now();
  c0 = CpuS();
  uint64_t txid = 0;
  // Durable: when WaitDurable returns (as soon as the capture is in the
  // replica, before the checkpoint that follows in the same job); then
  // Sync returns once that checkpoint (SQLite copying the WAL into the
  // database) is done too.
  Status s = r->WaitDurable(db_path, -1, &txid);
  const double durable_s = Now() - t0;
  const double durable_cpu = CpuS() - c0;
  if (s.ok()) s = r->Sync(db_path);
  const double job_s = Now() - t0;
  const double peak = PeakRssMb();
  if (!s.ok()) {
    std::fprintf(stderr, "sync: %s\n", s.ToString().c_str());
    return 1;
  }
  DatabaseStatus ds;
  r->GetStatus(db_path, &ds);
  r->Close();
  sqlite3_close(db);

  std::printf("transaction: %d MB of rows, WAL %.1f MB, written by SQLite in %.2f s\n", mb, wal_bytes / 1e6, write_s);
  std::printf("baseline zstd -1 -T1 over the WAL's bytes:   %.2f s (CPU %.2f s) -> %.1f MB\n", zstd_s, zstd_cpu,
              zbytes / 1e6);
  std::printf("baseline zstd -1 -T1 to a file, fsynced:      %.2f s\n", zstd_file_s);
  if (zstd_cli_s >= 0) std::printf("baseline command zstd -1 -T1 WAL -o OUT:     %.2f s\n", zstd_cli_s);
  std::printf("COMMIT -> durable (capture + upload, txid %llu): %.2f s (%.2fx zstd in memory, %.2fx zstd to a "
              "durable file, %.2fx the zstd command), uploaded %.1f MB\n",
              (unsigned long long)txid, durable_s, durable_s / zstd_s, durable_s / zstd_file_s,
              zstd_cli_s > 0 ? durable_s / zstd_cli_s : 0.0, ds.bytes_uploaded / 1e6);
  std::printf("  CPU during that wait (every thread): %.2f s (%.2fx zstd's CPU)\n", durable_cpu, durable_cpu / zstd_cpu);
  std::printf("  the job, with the checkpoint that follows: %.2f s\n", job_s);
  std::printf("RSS: %.0f MB before the capture, peak %.0f MB (memory cap %llu MB)\n", rss_before, peak,
              (unsigned long long)cap_mb);
  std::filesystem::remove_all(base);
  return 0;
}
