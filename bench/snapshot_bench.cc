// What checking a snapshot before it is reported durable costs
// (ReplicatorOptions::snapshot_verify_max_bytes): the first sync (a full
// snapshot to a file:// replica) of one database, with the check and
// without, and as baselines in the same run: zstd -1 of the database file's
// bytes (compression alone) and SQLite's PRAGMA quick_check on the database
// itself (the check alone).
//
//   build/bench/snapshot_bench [MB=256] [DIR=/tmp]
#include <sqlite3.h>
#include <zstd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "replite/replite.h"

using namespace replite;
using bench::Exec;
using bench::Now;

namespace {

double FirstSync(const std::string& db, const std::string& work, uint64_t verify_max) {
  std::filesystem::remove_all(work);
  ReplicatorOptions o;
  o.state_dir = work + "/state";
  o.defaults.replica_url = "file://" + work + "/replica";
  o.defaults.poll_interval_ms = 0;
  o.snapshot_verify_max_bytes = verify_max;
  o.logger = [](const std::string&) {};
  std::unique_ptr<Replicator> r;
  if (!Replicator::Open(o, &r).ok() || !r->Add(db).ok()) std::exit(1);
  const double t0 = Now();
  Status s = r->Sync(db);
  const double t = Now() - t0;
  if (!s.ok()) {
    std::fprintf(stderr, "sync: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  r->Close();
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const int mb = argc > 1 ? std::atoi(argv[1]) : 256;
  const std::string base = std::string(argc > 2 ? argv[2] : "/tmp") + "/replite-snapshot-bench";
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base);
  const std::string db_path = base + "/app.db";
  sqlite3* db = bench::MakeRowsDb(db_path, mb);
  sqlite3_close(db);
  const uint64_t bytes = std::filesystem::file_size(db_path);

  // Baseline 1: zstd -1 over the same bytes (in memory).
  std::string raw(bytes, '\0');
  std::ifstream(db_path, std::ios::binary).read(raw.data(), std::streamsize(bytes));
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  double t0 = Now();
  ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 1);
  const double zstd_s = Now() - t0;
  // Baseline 2: quick_check of the database itself.
  sqlite3_open(db_path.c_str(), &db);
  t0 = Now();
  Exec(db, "PRAGMA quick_check");
  const double qc_s = Now() - t0;
  sqlite3_close(db);

  // Each measured twice, alternating; the better of two is printed.
  double off = 1e9, on = 1e9;
  for (int i = 0; i < 2; i++) {
    off = std::min(off, FirstSync(db_path, base + "/off", 0));
    on = std::min(on, FirstSync(db_path, base + "/on", UINT64_MAX));
  }
  std::printf("database: %.1f MB (%d MB of rows)\n", bytes / 1e6, mb);
  std::printf("baseline zstd -1 of the file's bytes:      %.3f s (%.0f MB/s)\n", zstd_s, bytes / 1e6 / zstd_s);
  std::printf("baseline PRAGMA quick_check on the db:     %.3f s\n", qc_s);
  std::printf("first sync (snapshot), check off:          %.3f s (%.0f MB/s)\n", off, bytes / 1e6 / off);
  std::printf("first sync (snapshot), check on:           %.3f s (%.0f MB/s)\n", on, bytes / 1e6 / on);
  std::printf("check cost: +%.3f s (+%.0f%%)\n", on - off, (on - off) / off * 100);
  std::filesystem::remove_all(base);
  return 0;
}
