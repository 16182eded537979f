// replite: the example command-line program. Its verbs mirror Litestream's.
//
//   replite replicate [flags] DB_PATH... REPLICA_URL
//   replite replicate [flags] -dir DIR REPLICA_URL      every *.db in DIR
//   replite restore -o OUT [-txid N | -timestamp T] [-overwrite] [-stop-at-last-good] REPLICA_URL
//   replite generations REPLICA_URL
//   replite demo [-dir DIR]       the embedded default: replicate a sample
//                                  database to a local directory, write,
//                                  restore, verify
#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "metrics_server.h"
#include "config/options_apply.h"
#include "config/value_parse.h"
#include "replite/replite.h"
#include "util/redact.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

// Prints the usage to `f`: stdout when asked for (-h, --help, help: exit
// 0), stderr after a mistake (exit 2).
int Usage(FILE* f = stderr) {
  std::fprintf(f,
               "usage:\n"
               "  replite replicate [-state DIR] [-poll-ms N] [-sync-ms N] [-snapshot-interval DUR] [-retention DUR]\n"
               "                    [-enable-wal] [-once] [-print-durable] [-lease-ttl DUR (0s: no lease)]\n"
               "                    [-compaction-levels DUR+DUR+... | off] [-keep-every-txid DUR]\n"
               "                    [-pack-window MS (0: off, the default) [-pack-unpack DUR] [-pack-level N (-7..22, default -1)]]\n"
               "                    [-malloc-arena-max N (0: malloc's own; default one per core, at least 2)]\n"
               "                    [-metrics-addr 127.0.0.1:PORT] DB_PATH... REPLICA_URL\n"
               "  replite replicate [flags] -dir DIR REPLICA_URL\n"
               "  replite restore -o OUT [-txid N | -timestamp RFC3339] [-overwrite] [-stop-at-last-good] REPLICA_URL\n"
               "  replite generations REPLICA_URL\n"
               "  replite demo [-dir DIR]\n"
               "  replite version\n"
               "REPLICA_URL: file:///abs/path or s3://bucket/prefix[?endpoint=URL&region=R&force-path-style=true]\n"
               "             or abs://ACCOUNT@CONTAINER/prefix[?endpoint=URL] (Azure Blob Storage)\n"
               "             or gs://bucket/prefix[?endpoint=URL] (Google Cloud Storage: GOOGLE_APPLICATION_CREDENTIALS,\n"
               "             REPLITE_GCS_AUTH=metadata, or HMAC keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)\n"
               "             or sftp://USER@HOST[:PORT]/path[?key=PATH]\n"
               "DUR: 90s, 15m, 24h, 7d\n");
  return f == stderr ? 2 : 0;
}

bool IsHelp(const std::string& a) { return a == "-h" || a == "-help" || a == "--help" || a == "help"; }

// A flag's value refused by the shared options parser (lib/config/): the
// message names the flag, the value and the accepted form.
int BadFlag(const char* verb, const replite::Status& s) {
  std::fprintf(stderr, "replite %s: %s\n", verb, s.message().c_str());
  return 2;
}

int Fail(const replite::Status& s) {
  std::fprintf(stderr, "replite: %s\n", s.ToString().c_str());
  return 1;
}

std::vector<std::string> ListDbFiles(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 3 && n.compare(n.size() - 3, 3, ".db") == 0) out.push_back(dir + "/" + n);
  }
  ::closedir(d);
  return out;
}

// The sidecar's malloc arenas (ReplicatorOptions::malloc_arena_max): one
// per core, at least two, unless the user chose (-malloc-arena-max, or
// MALLOC_ARENA_MAX / arena_max in GLIBC_TUNABLES, which glibc reads
// itself). glibc gives each thread that allocates its own arena, up to
// eight per core, and after the first-snapshot storm of a cold start each
// of the sixteen arenas of a 2-core machine kept 1-2 MB that malloc_trim
// cannot return, the same at 20,000 or 100,000 databases (bench/README.md
// "cold settled"). This process is the library's own, so it chooses; an
// application that embeds the library decides for itself (README.md).
int SidecarArenaMax() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (std::getenv("MALLOC_ARENA_MAX") != nullptr || (tunables != nullptr && std::strstr(tunables, "arena_max")))
    return 0;
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return int(cores < 2 ? 2 : cores);
}

int CmdReplicate(std::vector<std::string> args) {
  replite::ReplicatorOptions o;
  o.malloc_arena_max = SidecarArenaMax();
  // The sidecar batches 200 ms of commits into a segment (the library's
  // default is 50 ms): a writer doing 200 small commits/s then uploads
  // 1.16x zstd -1 of its WAL pages instead of 1.36x, with a fifth of the
  // store requests (bench/README.md "foreign_writer"). -sync-ms changes it.
  o.defaults.sync_interval_ms = 200;
  std::string dir, metrics_addr;
  bool once = false;
  std::vector<std::string> pos;
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& a = args[i];
    auto next = [&](std::string* v) {
      if (i + 1 >= args.size()) return false;
      *v = args[++i];
      return true;
    };
    std::string v;
    // Flags that are option keys of the C ABI: the same parser, the same rules.
    const char* key = a == "-state"               ? "state-dir"
                      : a == "-poll-ms"           ? "poll-interval-ms"
                      : a == "-sync-ms"           ? "sync-interval-ms"
                      : a == "-snapshot-interval" ? "snapshot-interval"
                      : a == "-retention"         ? "retention"
                      : a == "-workers"           ? "worker-threads"
                      : a == "-lease-ttl"         ? "lease-ttl"
                      : a == "-compaction-levels" ? "compaction-levels"
                      : a == "-keep-every-txid"   ? "keep-every-txid"
                      : a == "-pack-window"       ? "pack-window-ms"
                      : a == "-pack-unpack"       ? "pack-unpack"
                      : a == "-pack-level"        ? "pack-compression-level"
                      : a == "-malloc-arena-max"  ? "malloc-arena-max"
                                                  : nullptr;
    if (key != nullptr) {
      if (!next(&v)) return Usage();
      replite::Status s = replite::config::ApplyReplicatorOption(&o, key, v, a);
      if (!s.ok()) return BadFlag("replicate", s);
    } else if (a == "-dir") {
      if (!next(&v)) return Usage();
      replite::Status s = replite::config::ParsePath(a, v, &dir);
      if (!s.ok()) return BadFlag("replicate", s);
    } else if (a == "-enable-wal") {
      o.defaults.enable_wal = true;
    } else if (a == "-once") {
      once = true;
    } else if (a == "-print-durable") {
      // One line per advance of a database's durable txid on stdout:
      // "durable <path> <txid>" (for scripts and the crash-torture tests).
      o.on_durable = [](const std::string& path, uint64_t txid) {
        std::printf("durable %s %llu\n", path.c_str(), static_cast<unsigned long long>(txid));
        std::fflush(stdout);
      };
    } else if (a == "-metrics-addr") {
      if (!next(&v)) return Usage();
      replite::Status s = replite::config::ParseAddress(a, v, &metrics_addr);
      if (!s.ok()) return BadFlag("replicate", s);
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "replite replicate: unknown flag %s\n", a.c_str());
      return Usage();
    } else {
      pos.push_back(a);
    }
  }
  if (pos.empty() || (dir.empty() && pos.size() < 2) || (!dir.empty() && pos.size() != 1)) return Usage();
  std::string url = pos.back();
  pos.pop_back();
  std::vector<std::string> dbs = pos;
  if (!dir.empty()) {
    o.replica_url = url;
    dbs = ListDbFiles(dir);
  } else if (dbs.size() == 1) {
    o.defaults.replica_url = url;  // the URL is this database's replica
  } else {
    o.replica_url = url;  // one sub-path each
  }
  std::unique_ptr<replite::Replicator> r;
  replite::Status s = replite::Replicator::Open(o, &r);
  if (!s.ok()) return Fail(s);
  std::set<std::string> added;
  const std::vector<replite::Status> got = r->AddMany(dbs);  // -dir: the headers are read on the workers
  for (size_t i = 0; i < dbs.size(); i++) {
    if (!got[i].ok()) {
      if (dir.empty()) {
        r->Close();
        return Fail(got[i]);
      }
      std::fprintf(stderr, "replite: skipping %s: %s\n", dbs[i].c_str(), got[i].ToString().c_str());
    }
    added.insert(dbs[i]);
  }
  std::fprintf(stderr, "replite: replicating %zu database(s) to %s\n", r->Databases().size(),
               replite::RedactUrl(url).c_str());
  MetricsServer metrics;
  if (!metrics_addr.empty()) {
    std::string err = metrics.Start(metrics_addr, [&r] { return r->Metrics(); });
    if (!err.empty()) {
      std::fprintf(stderr, "replite: %s\n", err.c_str());
      r->Close();
      return 2;
    }
    std::fprintf(stderr, "replite: metrics on http://%s/metrics\n", metrics_addr.c_str());
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  auto last_scan = std::chrono::steady_clock::now();
  while (!g_stop && !once) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!dir.empty() && std::chrono::steady_clock::now() - last_scan > std::chrono::seconds(5)) {
      last_scan = std::chrono::steady_clock::now();
      for (const auto& db : ListDbFiles(dir)) {
        if (added.count(db)) continue;
        added.insert(db);
        s = r->Add(db);
        if (s.ok()) std::fprintf(stderr, "replite: now replicating %s\n", db.c_str());
        else std::fprintf(stderr, "replite: skipping %s: %s\n", db.c_str(), s.ToString().c_str());
      }
    }
  }
  if (once) {
    for (const auto& db : r->Databases()) {
      uint64_t txid = 0;
      s = r->Sync(db, &txid);
      if (!s.ok()) std::fprintf(stderr, "replite: %s: %s\n", db.c_str(), s.ToString().c_str());
    }
  }
  std::fprintf(stderr, "replite: flushing and stopping\n");
  metrics.Stop();
  s = r->Close();
  if (!s.ok()) return Fail(s);
  return 0;
}

int CmdRestore(const std::vector<std::string>& args) {
  replite::RestoreOptions o;
  std::string out, url;
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& a = args[i];
    bool has = i + 1 < args.size();
    if (a == "-o" && has) {
      replite::Status s = replite::config::ParsePath(a, args[++i], &out);
      if (!s.ok()) return BadFlag("restore", s);
    } else if ((a == "-txid" || a == "-timestamp") && has) {
      replite::Status s = replite::config::ApplyRestoreOption(&o, a.substr(1), args[++i], a);
      if (!s.ok()) return BadFlag("restore", s);
    } else if (a == "-overwrite") {
      o.overwrite = true;
    } else if (a == "-stop-at-last-good") {
      o.stop_at_last_good = true;
    } else if (!a.empty() && a[0] != '-' && url.empty()) {
      url = a;
    } else {
      return Usage();
    }
  }
  if (out.empty() || url.empty()) return Usage();
  // On a terminal, a progress line (rewritten at most 10 times a second).
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  const auto start = std::chrono::steady_clock::now();
  if (tty)
    o.progress = [&](uint64_t done, uint64_t total) {
      const auto now = std::chrono::steady_clock::now();
      if (done < total && now - last < std::chrono::milliseconds(100)) return;
      last = now;
      const double s = std::chrono::duration<double>(now - start).count();
      std::fprintf(stderr, "\rrestore: %.1f of %.1f MB read (%3.0f%%), %.1f s ", done / 1e6, total / 1e6,
                   total ? 100.0 * double(done) / double(total) : 100.0, s);
    };
  replite::RestoreResult r;
  replite::Status s = replite::Restore(url, out, o, &r);
  if (tty) std::fprintf(stderr, "\n");
  if (!s.ok()) return Fail(s);
  std::printf("restored %s: generation %s txid %llu (%s), %u pages of %u bytes, checksum %016llx %s\n", out.c_str(),
              r.generation.c_str(), (unsigned long long)r.txid, replite::FormatRfc3339(r.timestamp_ms).c_str(), r.pages,
              r.page_size, (unsigned long long)r.checksum, r.checksum_verified ? "verified" : "(no recorded checksum)");
  if (r.stopped_early)
    std::printf("stopped at txid %llu, before the requested txid %llu: %s\n", (unsigned long long)r.txid,
                (unsigned long long)r.requested_txid, r.stop_reason.c_str());
  if (!r.overlap.empty()) std::fprintf(stderr, "replite restore: warning: %s\n", r.overlap.c_str());
  return 0;
}

int CmdGenerations(const std::vector<std::string>& args) {
  if (args.size() != 1) return Usage();
  std::vector<replite::GenerationInfo> gens;
  replite::Status s = replite::ListGenerations(args[0], &gens);
  if (!s.ok()) return Fail(s);
  std::printf("%-16s  %10s  %10s  %-24s  %-24s  %9s  %8s  %9s  %12s\n", "generation", "first_txid", "last_txid",
              "first", "last", "snapshots", "segments", "compacted", "bytes");
  for (const auto& g : gens)
    std::printf("%-16s  %10llu  %10llu  %-24s  %-24s  %9llu  %8llu  %9llu  %12llu\n", g.id.c_str(),
                (unsigned long long)g.first_txid, (unsigned long long)g.last_txid,
                replite::FormatRfc3339(g.first_ts_ms).c_str(), replite::FormatRfc3339(g.last_ts_ms).c_str(),
                (unsigned long long)g.snapshots, (unsigned long long)g.segments, (unsigned long long)g.compacted,
                (unsigned long long)g.bytes);
  for (const auto& g : gens)
    if (!g.overlaps.empty())
      std::fprintf(stderr, "replite generations: warning: generation %s overlaps %s (two instances wrote this "
                   "replica at once; restore takes the highest txid)\n", g.id.c_str(), g.overlaps.c_str());
  return 0;
}

bool Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite: %s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    return false;
  }
  return true;
}

std::string QueryString(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char* t = sqlite3_column_text(st, 0);
        out += t ? reinterpret_cast<const char*>(t) : "NULL";
        out += "\n";
      }
      sqlite3_finalize(st);
    }
  }
  sqlite3_close(db);
  return out;
}

// The embedded default: no server, a local directory replica.
int CmdDemo(const std::vector<std::string>& args) {
  std::string dir = "replite-demo";
  if (args.size() == 2 && args[0] == "-dir") dir = args[1];
  else if (!args.empty()) return Usage();
  ::mkdir(dir.c_str(), 0755);
  char abs[4096];
  if (!realpath(dir.c_str(), abs)) {
    std::perror("realpath");
    return 1;
  }
  const std::string root = abs, db_path = root + "/app.db", replica = "file://" + root + "/replica",
                    restored = root + "/restored.db";
  for (const auto& p : {db_path, db_path + "-wal", db_path + "-shm", restored}) ::unlink(p.c_str());
  std::system(("rm -rf '" + root + "/replica' '" + root + "/state'").c_str());
  std::printf("demo: writing %s, replicating to %s\n", db_path.c_str(), replica.c_str());
  sqlite3* db = nullptr;
  sqlite3_open(db_path.c_str(), &db);
  sqlite3_busy_timeout(db, 5000);  // as every application sharing a database should
  if (!Exec(db, "PRAGMA journal_mode=WAL") || !Exec(db, "PRAGMA wal_autocheckpoint=0") ||
      !Exec(db, "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, blob BLOB)"))
    return 1;
  replite::ReplicatorOptions o;
  o.state_dir = root + "/state";
  o.defaults.replica_url = replica;
  std::unique_ptr<replite::Replicator> r;
  replite::Status s = replite::Replicator::Open(o, &r);
  if (!s.ok()) return Fail(s);
  s = r->Add(db_path);
  if (!s.ok()) return Fail(s);
  uint64_t mid_txid = 0;
  for (int i = 0; i < 500; i++) {
    char sql[256];
    std::snprintf(sql, sizeof sql, "INSERT INTO notes(body, blob) VALUES ('note %d', randomblob(%d))", i, 100 + (i * 37) % 9000);
    if (!Exec(db, sql)) return 1;
    if (i % 50 == 49) {
      if (!Exec(db, "UPDATE notes SET body = body || ' (edited)' WHERE id % 7 = 0")) return 1;
      s = r->Notify(db_path);
      if (!s.ok()) return Fail(s);
    }
    if (i == 249) {
      s = r->Sync(db_path, &mid_txid);
      if (!s.ok()) return Fail(s);
    }
  }
  const std::string mid_count = "250";
  Exec(db, "DELETE FROM notes WHERE id % 3 = 0");
  uint64_t txid = 0;
  s = r->Sync(db_path, &txid);
  if (!s.ok()) return Fail(s);
  replite::DatabaseStatus st;
  r->GetStatus(db_path, &st);
  std::printf("demo: %llu transactions durable (generation %s, %llu segments, %llu bytes uploaded)\n",
              (unsigned long long)txid, st.generation.c_str(), (unsigned long long)st.segments_uploaded,
              (unsigned long long)st.bytes_uploaded);
  s = r->Close();
  if (!s.ok()) return Fail(s);
  sqlite3_close(db);
  replite::RestoreResult rr;
  s = replite::Restore(replica, restored, replite::RestoreOptions(), &rr);
  if (!s.ok()) return Fail(s);
  const char* q = "SELECT count(*) || ':' || total(length(blob)) || ':' || group_concat(body, ',') FROM notes";
  bool same = QueryString(restored, q) == QueryString(db_path, q);
  std::printf("demo: restored txid %llu to %s: checksum %s, integrity ok, content %s the source\n",
              (unsigned long long)rr.txid, restored.c_str(), rr.checksum_verified ? "verified" : "not recorded",
              same ? "equals" : "DIFFERS FROM");
  const std::string mid = root + "/restored-mid.db";
  ::unlink(mid.c_str());
  replite::RestoreOptions ro;
  ro.txid = mid_txid;
  s = replite::Restore(replica, mid, ro, &rr);
  if (!s.ok()) return Fail(s);
  std::string rows = QueryString(mid, "SELECT count(*) FROM notes");
  std::printf("demo: point-in-time restore at txid %llu holds %s rows (expected %s)\n", (unsigned long long)mid_txid,
              rows.substr(0, rows.size() - 1).c_str(), mid_count.c_str());
  if (!same || rows != mid_count + "\n") return 1;
  std::printf("demo: OK\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  // `replite -h`, `replite help`, `replite VERB -h` anywhere in the flags.
  if (IsHelp(cmd)) return Usage(stdout);
  for (const auto& a : args)
    if (IsHelp(a)) return Usage(stdout);
  if (cmd == "replicate") return CmdReplicate(args);
  if (cmd == "restore") return CmdRestore(args);
  if (cmd == "generations") return CmdGenerations(args);
  if (cmd == "demo") return CmdDemo(args);
  if (cmd == "version" || cmd == "-version" || cmd == "--version") {
    std::printf("replite %s (SQLite %s)\n", replite::Version(), sqlite3_libversion());
    return 0;
  }
  return Usage();
}
