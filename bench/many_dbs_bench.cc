// bench/many_dbs: N databases in one process, 1% hot at one commit per
// second each, the rest idle, replicated to a local directory (or S3 with
// --s3-url). For each N it prints: time to add all databases (cold: no
// positions; warm: a restart with positions; and the cold add again into
// a new state dir, AddMany against a loop of Add), RSS per idle database,
// threads, open fds, HTTP connections, CPU seconds per minute of the
// library (and of the writer alone, the baseline with replication off),
// p50/p99 commit->durable lag of hot databases, and store requests per
// database-hour for hot and idle databases.
//
// Two modes: `notify` (the application calls Notify after each commit;
// databases are added with polling off, so idle ones cost nothing) and
// `poll` (no notifications: every database is polled, hot ones often,
// idle ones backing off to 30 s).
//
//   build/bench/many_dbs_bench [--n 1000,10000,100000] [--seconds 60]
//                              [--mode notify,poll] [--dir /tmp/replite-many]
//                              [--reuse 1]   (keep the prepared databases)
//                              [--s3 moto]   (replicate to a moto_server started here)
//                              [--pack MS [--pack-unpack-s S]]  (each mode also with packing:
//                                            DatabaseOptions::pack_window_ms, pack_unpack_ms)
//                              [--pack-levels -1,1] (the packed run once per level, in this order:
//                                            DatabaseOptions::pack_compression_level; default:
//                                            the library's)
//                              [--arena-max N] (ReplicatorOptions::malloc_arena_max)
//
// Each measurement runs in a fresh child process so that RSS is not
// polluted by the setup.
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "replite/replite.h"
// A real S3 endpoint on 127.0.0.1 for --s3 moto (keep-alive enabled; see
// tests/moto_server.h).
#include "../tests/moto_server.cc"
#include "../tests/server_process.cc"

extern char** environ;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double Now() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

long StatusField(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  return -1;
}
long RssKb() {
  malloc_trim(0);
  return StatusField("VmRSS:");
}
long Threads() { return StatusField("Threads:"); }
long OpenFds() {
  long n = 0;
  for (auto& e : fs::directory_iterator("/proc/self/fd")) (void)e, n++;
  return n;
}
double ProcessCpu() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}
double ThreadCpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

void RaiseFdLimit() {
  rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
}

std::string DbPath(const std::string& dir, int i) {
  char b[64];
  std::snprintf(b, sizeof b, "/dbs/t%06d.db", i);
  return dir + b;
}

double MetricSum(const std::string& text, const std::string& name, const std::string& must_contain) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0 || line[name.size()] == '_') continue;
    if (!must_contain.empty() && line.find(must_contain) == std::string::npos) continue;
    sum += std::atof(line.substr(line.rfind(' ') + 1).c_str());
  }
  return sum;
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * v.size()))];
}

int Run(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0) return -1;
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Room for the 1,000 hot databases at N = 100,000 to keep their
// connection: 7 descriptors each after 16 per worker (core/conn_cache.h).
// 6,144 (5 each, an older count) left room for 804: plain LRU then
// reopened every hot database at every sync.
constexpr int kFdBudget = 8192;

replite::ReplicatorOptions BaseOptions(const std::string& dir, const std::string& url, bool notify) {
  replite::ReplicatorOptions o;
  o.state_dir = dir + "/state";
  o.replica_url = url;
  o.worker_threads = std::atoi(std::getenv("REPLITE_BENCH_WORKERS"));  // set by main (--workers)
  if (const char* a = std::getenv("REPLITE_BENCH_ARENA_MAX")) o.malloc_arena_max = std::atoi(a);  // --arena-max
  // Room to keep the SQLite connection of each of the 1,000 hot databases
  // at N = 100,000 open between syncs (5 descriptors each, see ConnCache).
  o.fd_budget = kFdBudget;
  o.logger = [](const std::string& l) {
    if (l.find("new generation") == std::string::npos || std::getenv("REPLITE_BENCH_LOG_ALL")) std::fprintf(stderr, "replite: %s\n", l.c_str());
  };
  o.defaults.metrics_group = "idle";
  o.defaults.poll_interval_ms = notify ? 0 : 1000;
  o.defaults.sync_interval_ms = 20;
  return o;
}

// The memory report's parts (ReplicatorStatus::memory), per database.
void PrintMemory(const char* when, replite::Replicator* r, int n) {
  std::printf("    memory %s, bytes per database:", when);
  for (const auto& [part, bytes] : r->GetSummary(0).memory) std::printf(" %s %.0f", part.c_str(), double(bytes) / n);
  std::printf("\n");
}


// The cold add alone: all N prepared databases added to a new state dir
// (no saved positions: each header is read), by AddMany or (`loop`) one
// Add after the other, timed; the process then ends without closing (a
// Close would take their first snapshots), before any first sync starts.
int ColdAdd(const std::string& dir, int n, bool loop) {
  const std::string scratch = dir + "/coldadd";
  fs::remove_all(scratch);
  auto o = BaseOptions(scratch, "file://" + scratch + "/replica", true);
  std::unique_ptr<replite::Replicator> r;
  if (!replite::Replicator::Open(o, &r).ok()) return 1;
  std::vector<std::string> paths;
  for (int i = 0; i < n; i++) paths.push_back(DbPath(dir, i));
  const double t0 = Now();
  size_t failed = 0;
  if (loop) {
    for (const auto& p : paths) failed += !r->Add(p).ok();
  } else {
    for (const replite::Status& s : r->AddMany(paths)) failed += !s.ok();
  }
  const double t = Now() - t0;
  std::printf("  cold add of all %d into a new state dir: %s %.3f s (%zu failed)\n", n, loop ? "loop of Add" : "AddMany",
              t, failed);
  std::fflush(stdout);
  std::_Exit(failed == 0 ? 0 : 1);
}

// Creates N databases (copies of a template) and replicates each once.
int Prepare(const std::string& dir, int n, const std::string& url) {
  fs::remove_all(dir);
  fs::create_directories(dir + "/dbs");
  const std::string tmpl = dir + "/template.db";
  sqlite3* db;
  sqlite3_open(tmpl.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('seed')",
               nullptr, nullptr, nullptr);
  sqlite3_close(db);
  double t0 = Now();
  for (int i = 0; i < n; i++) fs::copy_file(tmpl, DbPath(dir, i));
  double t_create = Now() - t0;
  std::unique_ptr<replite::Replicator> r;
  auto o = BaseOptions(dir, url, true);
  // The baseline: the process before the Replicator (all of it, and its
  // anonymous part: code pages faulted in by a first run are no database's).
  const long rss_base = StatusField("VmRSS:"), anon_base = StatusField("RssAnon:");
  if (!replite::Replicator::Open(o, &r).ok()) return 1;
  double t_add;
  {
    // The list is the caller's: freed once added, so the settled figure
    // below counts only what the library keeps.
    std::vector<std::string> paths;
    for (int i = 0; i < n; i++) paths.push_back(DbPath(dir, i));
    t0 = Now();
    for (const replite::Status& s : r->AddMany(paths)) {
      if (!s.ok()) {
        std::fprintf(stderr, "add: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    t_add = Now() - t0;
  }
  for (int i = 0; i < n; i++) r->Sync(DbPath(dir, i), nullptr);
  double t_all = Now() - t0;
  std::printf("  prepare N=%d: created in %.1f s; cold Add of all %.2f s; first snapshot of all done after %.1f s\n", n,
              t_create, t_add, t_all);
  const long rss_done = StatusField("VmRSS:");
  // Settled: the library returns the burst's memory once its connection
  // opens stop (core/burst_trim.h): wait for that trim (at most 20 s).
  const double t_done = Now();
  const double trims = MetricSum(r->Metrics(), "replite_memory_trims_total", "");
  while (Now() - t_done < 20 && MetricSum(r->Metrics(), "replite_memory_trims_total", "") <= trims)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::printf("    cold RSS: %.0f B/db over the baseline of %.1f MiB when the last first snapshot was done, %.0f B/db "
              "settled (%.1f s later; anonymous: %.0f B/db over %.1f MiB)\n",
              (rss_done - rss_base) * 1024.0 / n, rss_base / 1024.0, (StatusField("VmRSS:") - rss_base) * 1024.0 / n,
              Now() - t_done, (StatusField("RssAnon:") - anon_base) * 1024.0 / n, anon_base / 1024.0);
  PrintMemory("cold (all added and first-snapshotted by this process), settled", r.get(), n);
  r->Close();
  std::fflush(stdout);
  return 0;
}

struct Lag {
  std::mutex mu;
  std::unordered_map<std::string, std::deque<double>> pending;  // commit times not yet durable
  std::unordered_map<std::string, uint64_t> durable;
  std::vector<double> lags;
  std::vector<double> lag_at;     // when each lag's commit happened (seconds since the writer started)
  double start = 0;
  std::vector<double> commit_ms;  // the application's commit latency (our locks show up here)
};

// The disk's own durability latency in the same run, as a baseline for the
// lag: every 20 ms one new 4 KiB object written the way the file store
// writes one (temp file, fsync, rename, fsync of the directory). Returns
// (seconds since `start`, latency) pairs.
void ProbeDisk(const std::string& dir, double start, const std::atomic<bool>& stop,
               std::vector<std::pair<double, double>>* out, double* cpu) {
  const double c0 = ThreadCpu();
  struct CpuOut {
    double c0;
    double* cpu;
    ~CpuOut() { *cpu = ThreadCpu() - c0; }  // not the library's: subtracted like the writer's
  } cpu_out{c0, cpu};
  const std::string d = dir + "/disk-probe";
  fs::create_directories(d);
  const std::string page(4096, 'x');
  for (long k = 0; !stop; k++) {
    const double t0 = Now();
    const std::string tmp = d + "/tmp", obj = d + "/obj-" + std::to_string(k % 64);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    bool ok = ::write(fd, page.data(), page.size()) == ssize_t(page.size()) && ::fsync(fd) == 0;
    ::close(fd);
    ok = ok && ::rename(tmp.c_str(), obj.c_str()) == 0;
    int dfd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      ok = ok && ::fsync(dfd) == 0;
      ::close(dfd);
    }
    if (!ok) return;
    const double t1 = Now();
    out->emplace_back(t0 - start, t1 - t0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int Measure(const std::string& dir, int n, const std::string& url, bool notify, int seconds, int64_t pack_ms,
            int64_t unpack_ms, const char* pack_level) {
  RaiseFdLimit();
  const int hot = std::max(1, n / 100);
  const long rss0 = RssKb(), fds0 = OpenFds(), threads0 = Threads();
  Lag lag;
  auto o = BaseOptions(dir, url, notify);
  o.defaults.pack_window_ms = pack_ms;
  if (unpack_ms > 0) o.defaults.pack_unpack_ms = unpack_ms;
  if (pack_level) o.defaults.pack_compression_level = std::atoi(pack_level);
  o.on_durable = [&](const std::string& path, uint64_t txid) {
    double now = Now();
    std::lock_guard<std::mutex> l(lag.mu);
    auto it = lag.durable.find(path);
    if (it == lag.durable.end()) return;
    uint64_t newly = txid - it->second;
    it->second = txid;
    auto& q = lag.pending[path];
    for (uint64_t k = 0; k < newly && !q.empty(); k++) {
      lag.lags.push_back(now - q.front());
      lag.lag_at.push_back(q.front() - lag.start);
      q.pop_front();
    }
  };
  std::unique_ptr<replite::Replicator> r;
  replite::Status s = replite::Replicator::Open(o, &r);
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.ToString().c_str());
    return 1;
  }
  replite::DatabaseOptions hot_opts = o.defaults;
  hot_opts.metrics_group = "hot";
  double t0 = Now();
  for (int i = 0; i < n; i++) {
    s = i < hot ? r->Add(DbPath(dir, i), hot_opts) : r->Add(DbPath(dir, i));
    if (!s.ok()) {
      std::fprintf(stderr, "add: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  const double t_add = Now() - t0;
  const long rss1 = RssKb(), fds1 = OpenFds();
  // Hot databases: the application's own connections.
  std::vector<sqlite3*> conns(hot);
  for (int i = 0; i < hot; i++) {
    sqlite3_open(DbPath(dir, i).c_str(), &conns[i]);
    sqlite3_busy_timeout(conns[i], 5000);
    sqlite3_exec(conns[i], "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
    replite::DatabaseStatus st;
    r->GetStatus(DbPath(dir, i), &st);
    lag.durable[DbPath(dir, i)] = st.durable_txid;
  }
  const long fds_app = OpenFds() - fds1;
  std::atomic<bool> stop{false};
  std::atomic<double> writer_cpu{0};
  std::atomic<long> commits{0};
  std::thread writer([&] {
    pthread_setname_np(pthread_self(), "bench-writer");  // apart from replite's threads in perf and top -H
    const double start = Now();
    {
      std::lock_guard<std::mutex> l(lag.mu);
      lag.start = start;
    }
    double c0 = ThreadCpu();
    for (int sec = 0; !stop; sec++) {
      for (int i = 0; i < hot && !stop; i++) {
        // Spread each database's commit over the second.
        const double due = start + sec + double(i) / hot;
        double wait = due - Now();
        if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
        const std::string path = DbPath(dir, i);
        const double c0 = Now();
        sqlite3_exec(conns[i], "INSERT INTO t(v) VALUES (hex(randomblob(64)))", nullptr, nullptr, nullptr);
        const double c1 = Now();  // the commit is done: lag counts from here
        {
          std::lock_guard<std::mutex> l(lag.mu);
          lag.pending[path].push_back(c1);
          lag.commit_ms.push_back((c1 - c0) * 1e3);
        }
        commits++;
        if (notify) r->Notify(path);
      }
    }
    writer_cpu = ThreadCpu() - c0;
  });
  const double cpu0 = ProcessCpu();
  const double w0 = Now();
  std::vector<std::pair<double, double>> disk;  // (when, latency) of the disk probe
  double prober_cpu = 0;
  std::thread prober([&] {
    pthread_setname_np(pthread_self(), "bench-probe");
    ProbeDisk(dir, w0, stop, &disk, &prober_cpu);
  });
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  writer.join();
  prober.join();
  const double wall = Now() - w0;
  const double cpu = ProcessCpu() - cpu0 - writer_cpu - prober_cpu;
  const long rss2 = RssKb(), threads2 = Threads(), fds2 = OpenFds() - fds_app;
  const std::string m = r->Metrics();
  std::vector<double> lags, lag_at, commit_ms;
  {
    std::lock_guard<std::mutex> l(lag.mu);
    lags = lag.lags;
    lag_at = lag.lag_at;
    commit_ms = lag.commit_ms;
  }
  const double req_hot = MetricSum(m, "replite_store_requests_total", "group=\"hot\"");
  const double req_idle = MetricSum(m, "replite_store_requests_total", "group=\"idle\"");
  const double http_conns = MetricSum(m, "replite_http_connections_opened", "");
  const double checkpoints = MetricSum(m, "replite_checkpoints_total", "");
  const double epoch_reads = MetricSum(m, "replite_epoch_checksums_total", "");
  const double epoch_adopted = MetricSum(m, "replite_epoch_checksums_total", "result=\"adopted\"");
  const double generations = MetricSum(m, "replite_generations_started_total", "");
  const double packs = MetricSum(m, "replite_packs_stored_total", "");
  const double members = MetricSum(m, "replite_pack_members_total", "");
  const double unpacked = MetricSum(m, "replite_packs_unpacked_total", "");
  for (auto* c : conns) sqlite3_close(c);
  PrintMemory("warm (added from saved positions), at the end of the run", r.get(), n);
  r->Close();
  const double hours = wall / 3600;
  std::printf(
      "  N=%-6d mode=%-6s%s add(warm) %.3f s | RSS %+.0f B/db after add, %.1f MiB total | threads %ld->%ld | "
      "fds %ld->%ld (app's own %ld excluded) | http conns %.0f | CPU replite %.2f s/min, writer alone %.2f s/min | "
      "lag p50 %.0f ms p99 %.0f ms (%zu commits of %ld) | app commit p99 %.1f ms max %.1f ms | store req/db-hour hot %.0f idle %.3f | req/s %.1f\n",
      n, notify ? "notify" : "poll", pack_ms > 0 ? ("+pack " + std::to_string(pack_ms) + " ms level " + std::to_string(o.defaults.pack_compression_level)).c_str() : "", t_add, (rss1 - rss0) * 1024.0 / n, rss2 / 1024.0, threads0, threads2, fds0, fds2,
      fds_app, http_conns < 0 ? 0 : http_conns, cpu * 60 / wall, writer_cpu * 60 / wall, Pct(lags, 0.5) * 1e3,
      Pct(lags, 0.99) * 1e3, lags.size(), commits.load(), Pct(commit_ms, 0.99), Pct(commit_ms, 1.0), req_hot / hot / hours, req_idle / std::max(1, n - hot) / hours,
      (req_hot + req_idle) / wall);
  std::printf("    hot store requests per db-hour by op:");
  for (const char* op : {"put", "get", "head", "list", "delete"})
    std::printf(" %s %.1f", op,
                MetricSum(m, "replite_store_requests_total", std::string("group=\"hot\",op=\"") + op + "\"") / hot / hours);
  std::printf("\n");
  std::printf("    replite CPU per captured commit %.3f ms | uploaded %.0f B per commit | packs stored %.0f (%.1f "
              "segments each), unpacked %.0f (unpack every %.0f s)\n",
              cpu * 1e3 / std::max<long>(1, commits.load()),
              MetricSum(m, "replite_uploaded_bytes_total", "") / std::max<long>(1, commits.load()), std::max(0.0, packs),
              packs > 0 ? members / packs : 0.0, std::max(0.0, unpacked), double(o.defaults.pack_unpack_ms) / 1e3);
  std::printf("    checkpoints %.0f | WAL epochs checked by reading the database %.0f (adopted %.0f) | new generations %.0f\n",
              std::max(0.0, checkpoints), std::max(0.0, epoch_reads), std::max(0.0, epoch_adopted),
              std::max(0.0, generations));
  // Where the tail is: p99 of the commits of each 5-second window.
  std::vector<std::vector<double>> windows;
  for (size_t k = 0; k < lags.size(); k++) {
    const size_t w = static_cast<size_t>(std::max(0.0, lag_at[k]) / 5);
    if (windows.size() <= w) windows.resize(w + 1);
    windows[w].push_back(lags[k]);
  }
  std::vector<double> after_warmup;  // the first syncs after a restart read cold WALs
  for (size_t w = 1; w < windows.size(); w++) after_warmup.insert(after_warmup.end(), windows[w].begin(), windows[w].end());
  std::printf("    lag p99 per 5 s window (ms):");
  for (auto& w : windows) std::printf(" %.0f", Pct(w, 0.99) * 1e3);
  std::printf(" | p99 after the first 5 s: %.0f ms\n", Pct(after_warmup, 0.99) * 1e3);
  // Baseline: the disk alone (writer-side CPU excluded, same moment).
  std::vector<std::vector<double>> dwin;
  std::vector<double> dall;
  for (const auto& [at, d] : disk) {
    const size_t w = static_cast<size_t>(std::max(0.0, at) / 5);
    if (dwin.size() <= w) dwin.resize(w + 1);
    dwin[w].push_back(d);
    dall.push_back(d);
  }
  std::printf("    disk alone, one object put+fsync every 20 ms: p50 %.1f ms p99 %.0f ms max %.0f ms; max per 5 s window (ms):",
              Pct(dall, 0.5) * 1e3, Pct(dall, 0.99) * 1e3, Pct(dall, 1.0) * 1e3);
  for (auto& w : dwin) std::printf(" %.0f", Pct(w, 1.0) * 1e3);
  std::printf("\n");
  std::fflush(stdout);
  return 0;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream in(s);
  std::string x;
  while (std::getline(in, x, ',')) v.push_back(x);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string ns = "1000,10000,100000", modes = "notify,poll", dir = "/tmp/replite-many", url;
  int seconds = 60;
  bool reuse = false;  // --reuse 1: keep prepared databases between runs (prepare only if missing)
  std::string s3;      // --s3 moto: replicate to a moto_server started here
  // --workers: the library's cap by default (workers start on demand up
  // to it). At 1,000 syncs/s on a local disk, concurrent fsyncs share the
  // disk's flushes, and during the kernel's writeback storms that
  // concurrency is the throughput (see bench/README.md). The fd_budget
  // here has room for 64.
  std::string workers = std::to_string(replite::ReplicatorOptions().worker_threads);
  std::string pack = "0", unpack = "0";  // --pack MS: each mode again with packing on
  std::string pack_levels;                // --pack-levels: "" = the library's default
  const bool child = !args.empty() && args[0] == "--child";
  if (!child && args.size() % 2 != 0) {
    // --help, a flag without its value: say so rather than start the
    // default run (three N, both modes, 100,000 databases prepared).
    std::fprintf(stderr,
                 "usage: many_dbs_bench [--n 1000,10000,100000] [--seconds 60] [--mode notify,poll] "
                 "[--dir DIR] [--url URL] [--reuse 1] [--s3 moto] [--workers N] [--pack MS [--pack-unpack-s S] "
                 "[--pack-levels L,L]] [--arena-max N]\n(see the comment at the top of bench/many_dbs_bench.cc and bench/README.md)\n");
    return 2;
  }
  for (size_t i = 0; !child && i + 1 < args.size(); i += 2) {
    if (args[i] == "--n") ns = args[i + 1];
    else if (args[i] == "--seconds") seconds = std::atoi(args[i + 1].c_str());
    else if (args[i] == "--mode") modes = args[i + 1];
    else if (args[i] == "--dir") dir = args[i + 1];
    else if (args[i] == "--url") url = args[i + 1];
    else if (args[i] == "--reuse") reuse = args[i + 1] == "1";
    else if (args[i] == "--s3") s3 = args[i + 1];
    else if (args[i] == "--workers") workers = args[i + 1];
    else if (args[i] == "--pack") pack = args[i + 1];
    else if (args[i] == "--pack-levels") pack_levels = args[i + 1];
    else if (args[i] == "--pack-unpack-s") unpack = std::to_string(std::atoll(args[i + 1].c_str()) * 1000);
    else if (args[i] == "--arena-max") setenv("REPLITE_BENCH_ARENA_MAX", args[i + 1].c_str(), 1);  // for the children
    else {
      std::fprintf(stderr, "many_dbs_bench: unknown option %s (run with no options for the default run; "
                   "options: see the comment at the top of bench/many_dbs_bench.cc)\n", args[i].c_str());
      return 2;
    }
  }
  if (!std::getenv("REPLITE_BENCH_WORKERS")) setenv("REPLITE_BENCH_WORKERS", workers.c_str(), 1);  // for the children
  if (child) {  // --child prepare|notify|poll DIR N URL SECONDS [PACK_MS UNPACK_MS [PACK_LEVEL]]
    const std::string what = args[1], d = args[2], u = args[4];
    const int n = std::atoi(args[3].c_str());
    if (what == "prepare") return Prepare(d, n, u);
    if (what == "coldadd" || what == "coldadd-loop") return ColdAdd(d, n, what == "coldadd-loop");
    const int64_t pack_ms = args.size() > 7 ? std::atoll(args[6].c_str()) : 0;
    const int64_t unpack_ms = args.size() > 7 ? std::atoll(args[7].c_str()) : 0;
    return Measure(d, n, u, what == "notify", std::atoi(args[5].c_str()), pack_ms, unpack_ms,
                   args.size() > 8 ? args[8].c_str() : nullptr);
  }
  std::unique_ptr<replite::testing::MotoServer> moto;
  if (s3 == "moto") {
    std::string why;
    moto = replite::testing::MotoServer::Start(&why);
    if (!moto || !moto->CreateBucket("many-dbs").ok()) {
      std::fprintf(stderr, "cannot start moto_server: %s\n", why.c_str());
      return 1;
    }
    setenv("AWS_ACCESS_KEY_ID", "AKIDBENCH", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "bench-secret", 1);
    url = "s3://many-dbs/run?endpoint=" + moto->endpoint() + "&force-path-style=true&region=us-east-1";
    dir += "/s3";
    reuse = false;  // the replica lives in this moto only
  }
  std::printf("many_dbs: %s databases, 1%% hot at 1 commit/s, %d s per mode, store %s\n", ns.c_str(), seconds,
              url.empty() ? "local directory" : url.c_str());
  std::printf("machine: %ld cores, %s; fd_budget %d, %s workers (library default %d), malloc_arena_max %s\n",
              sysconf(_SC_NPROCESSORS_ONLN), replite::Version(), kFdBudget, std::getenv("REPLITE_BENCH_WORKERS"),
              replite::ReplicatorOptions().worker_threads,
              std::getenv("REPLITE_BENCH_ARENA_MAX") ? std::getenv("REPLITE_BENCH_ARENA_MAX") : "0");
  for (const auto& nstr : Split(ns)) {
    const std::string d = dir + "/" + nstr;
    std::string u = "file://" + d + "/replica";
    if (!url.empty()) {  // a sub-prefix per N, before the URL's query
      const size_t q = url.find('?');
      u = q == std::string::npos ? url + "/" + nstr : url.substr(0, q) + "/" + nstr + url.substr(q);
    }
    const bool prepared = reuse && fs::exists(d + "/prepared");
    if (!prepared) {
      if (Run({"many_dbs_bench", "--child", "prepare", d, nstr, u, "0"}) != 0) return 1;
      std::ofstream(d + "/prepared") << "ok\n";
    }
    // The cold add against its baseline (a loop of Add), alternated.
    for (int k = 0; k < 2; k++)
      for (const char* how : {"coldadd", "coldadd-loop"})
        if (Run({"many_dbs_bench", "--child", how, d, nstr, u, "0"}) != 0) return 1;
    fs::remove_all(d + "/coldadd");
    for (const auto& mode : Split(modes)) {
      if (Run({"many_dbs_bench", "--child", mode, d, nstr, u, std::to_string(seconds)}) != 0) return 1;
      // The same workload with packing, beside it in the same run (once
      // per pack level asked for).
      if (pack == "0") continue;
      for (const auto& level : pack_levels.empty() ? std::vector<std::string>{""} : Split(pack_levels)) {
        std::vector<std::string> a = {"many_dbs_bench", "--child", mode, d, nstr, u, std::to_string(seconds), pack, unpack};
        if (!level.empty()) a.push_back(level);
        if (Run(a) != 0) return 1;
      }
    }
    if (!reuse) fs::remove_all(d);
  }
  return 0;
}
