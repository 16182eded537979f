// [crash] Crash torture (DESIGN.md §3, invariant 1; issue 6 item 2).
//
// A child `replite replicate -print-durable -poll-ms 20` replicates a
// database to file:// while this process commits continuously on its own
// connection (kept open; each commit is one transaction). At random moments
// (seeded; the seed is printed, REPLITE_CRASH_SEED replays it) the child is
// killed with SIGKILL and restarted on the same state dir. Afterwards:
//  - every txid the child reported durable restores (integrity_check ok) to
//    an exact state of the source: a prefix of the commit sequence, rows
//    byte-identical to what the writer wrote (the workload is deterministic
//    per commit number), and later txids never restore to earlier states;
//  - after a final clean run the latest restore equals the source.
// The same torture with kills aimed at one stage (the child is killed the
// moment the stage is seen, else at a timeout): during snapshot upload (a
// database of several MiB, a snapshot every second; seen as a snapshot temp
// file in the spool or the replica), during a multipart upload to S3 (moto
// behind tests/fault_proxy.py, 5 MiB parts, a part held by the proxy), and
// during retention cleanup (a snapshot and a 1 s retention every second;
// seen as a deletion in the replica). With retention, txids that expired
// may be gone, but every txid inside a stored generation, and every txid
// reported within the retention window before the end, restores exactly.
// After each of these, every stored object passes its checksums: no temp or
// torn object is visible to restore.
// Then `replite restore` is killed at random moments: the target is never
// half-written (absent, or complete and verified); leftover temp files are
// reported.
//
// Knobs: REPLITE_CRASH_ROUNDS (default 10; the aimed tests use fewer),
// REPLITE_CRASH_SAMPLES (txids restored, default 40; 0 = all),
// REPLITE_CRASH_SEED, REPLITE_RESTORE_KILLS (default 12).
// bench/crash_bench.sh runs it with many more rounds.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "fault_proxy.h"
#include "format/layout.h"
#include "moto_server.h"
#include "replica/catalog.h"
#include "replite/replite.h"
#include "replica/object_reader.h"
#include "store/replica_url.h"
#include "store/store_registry.h"
#include "test_util.h"
#include "util/file_util.h"

extern char** environ;
using namespace replite;

namespace {

using Clock = std::chrono::steady_clock;

int64_t EnvInt(const char* name, int64_t def) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoll(v) : def;
}

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> v;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return v;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") v.push_back(n);
  }
  ::closedir(d);
  return v;
}

// A child process with stdout on a pipe (read by a thread into lines) and
// stderr appended to a log file.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::string& stderr_log) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addopen(&fa, 2, stderr_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    REQUIRE(rc == 0);
    fd_ = fds[0];
    reader_ = std::thread([this] {
      char buf[4096];
      std::string partial;
      ssize_t n;
      while ((n = ::read(fd_, buf, sizeof buf)) > 0) {
        partial.append(buf, size_t(n));
        size_t p;
        while ((p = partial.find('\n')) != std::string::npos) {
          std::lock_guard<std::mutex> l(mu_);
          lines_.push_back(partial.substr(0, p));
          times_.push_back(Clock::now());
          partial.erase(0, p + 1);
        }
      }
    });
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  void Kill(int sig) { ::kill(pid_, sig); }
  // Exit code, or 128 + signal.
  int Wait() {
    int st = 0;
    if (pid_ <= 0) return exit_;
    REQUIRE(::waitpid(pid_, &st, 0) == pid_);
    pid_ = -1;
    if (reader_.joinable()) reader_.join();
    exit_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return exit_;
  }
  // Waits up to timeout_ms for the exit; false if still running.
  bool WaitFor(int64_t timeout_ms, int* code) {
    const auto t0 = Clock::now();
    int st = 0;
    while (MsSince(t0) < timeout_ms) {
      pid_t p = ::waitpid(pid_, &st, WNOHANG);
      if (p == pid_) {
        pid_ = -1;
        if (reader_.joinable()) reader_.join();
        exit_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        *code = exit_;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  std::vector<std::string> Lines() {
    std::lock_guard<std::mutex> l(mu_);
    return lines_;
  }
  // When each line was read.
  std::vector<Clock::time_point> LineTimes() {
    std::lock_guard<std::mutex> l(mu_);
    return times_;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int exit_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::vector<std::string> lines_;
  std::vector<Clock::time_point> times_;
};

// "durable <path> <txid>" lines -> txids (and, with `times`, when each was
// read).
std::vector<uint64_t> DurableTxids(const std::vector<std::string>& lines,
                                   const std::vector<Clock::time_point>* times = nullptr,
                                   std::vector<Clock::time_point>* when = nullptr) {
  std::vector<uint64_t> out;
  for (size_t i = 0; i < lines.size(); i++) {
    const std::string& l = lines[i];
    if (l.rfind("durable ", 0) != 0) continue;
    size_t sp = l.rfind(' ');
    out.push_back(std::stoull(l.substr(sp + 1)));
    if (when) when->push_back((*times)[i]);
  }
  return out;
}

// Watches a directory tree with inotify, directories created later
// included, for the first event `match` accepts (directory, name, mask).
class TreeWatch {
 public:
  using Match = std::function<bool(const std::string& dir, const std::string& name, uint32_t mask)>;
  TreeWatch(const std::string& root, Match match) : match_(std::move(match)) {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    REQUIRE(fd_ >= 0);
    Add(root);
  }
  ~TreeWatch() { ::close(fd_); }
  // Waits up to timeout_ms for a matching event; true if one came.
  bool Wait(int64_t timeout_ms) {
    const auto t0 = Clock::now();
    alignas(inotify_event) char buf[64 * 1024];
    while (MsSince(t0) < timeout_ms) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, int(std::max<int64_t>(1, timeout_ms - MsSince(t0)))) <= 0) continue;
      ssize_t n = ::read(fd_, buf, sizeof buf);
      for (ssize_t off = 0; off < n;) {
        const auto* e = reinterpret_cast<const inotify_event*>(buf + off);
        off += ssize_t(sizeof(inotify_event) + e->len);
        auto it = dirs_.find(e->wd);
        if (it == dirs_.end() || e->len == 0) continue;
        const std::string name = e->name;
        if ((e->mask & IN_ISDIR) && (e->mask & (IN_CREATE | IN_MOVED_TO))) Add(it->second + "/" + name);
        if (match_(it->second, name, e->mask)) return true;
      }
    }
    return false;
  }

 private:
  void Add(const std::string& dir) {
    int wd = inotify_add_watch(fd_, dir.c_str(), IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_ONLYDIR);
    if (wd < 0) return;  // gone already
    dirs_[wd] = dir;
    for (const auto& n : FilesIn(dir)) {
      struct stat st;
      if (::stat((dir + "/" + n).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) Add(dir + "/" + n);
    }
  }
  int fd_ = -1;
  std::map<int, std::string> dirs_;
  Match match_;
};

// The deterministic workload: commit i inserts row i and sets meta.v = i,
// in one transaction. The state after i commits is a function of i.
std::string CommitSql(uint64_t i) {
  return "BEGIN; INSERT INTO items(id, name, n, data) VALUES (" + std::to_string(i) + ", 'row" + std::to_string(i) +
         "', " + std::to_string((i * i) % 1000003) + ", zeroblob(" + std::to_string(100 + (i * 37) % 3000) +
         ")); UPDATE meta SET v = " + std::to_string(i) + "; COMMIT";
}

// Checks that the database at `path` is exactly the state after k commits
// for some k (returned; -1 when it is not).
int64_t CommitsIn(const std::string& path, std::string* why) {
  sqlite3* c = nullptr;
  if (sqlite3_open_v2(path.c_str(), &c, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    *why = "cannot open";
    sqlite3_close(c);
    return -1;
  }
  int64_t k = -1;
  sqlite3_stmt* st = nullptr;
  const char* sql =
      "SELECT count(*), coalesce(min(id), 0), coalesce(max(id), -1), "
      "sum(name = 'row' || id AND n = (id * id) % 1000003 AND length(data) = 100 + (id * 37) % 3000 "
      "AND data = zeroblob(100 + (id * 37) % 3000)), (SELECT v FROM meta) FROM items";
  if (sqlite3_prepare_v2(c, sql, -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    const int64_t count = sqlite3_column_int64(st, 0), lo = sqlite3_column_int64(st, 1),
                  hi = sqlite3_column_int64(st, 2), good = sqlite3_column_int64(st, 3),
                  meta = sqlite3_column_int64(st, 4);
    if (count == 0 && meta == -1) k = 0;
    else if (lo == 0 && hi == count - 1 && good == count && meta == hi) k = count;
    else
      *why = "not a commit prefix: count " + std::to_string(count) + " ids " + std::to_string(lo) + ".." +
             std::to_string(hi) + " good rows " + std::to_string(good) + " meta " + std::to_string(meta);
  } else {
    *why = sqlite3_errmsg(c);
  }
  sqlite3_finalize(st);
  sqlite3_close(c);
  return k;
}


// What a torture run varies. The defaults are the plain torture: a file://
// replica, kills at random moments.
struct TortureSpec {
  std::string what;
  int rounds = 10;
  std::string url;                       // default: file:// under the test's directory
  std::string check_url;                 // where restores read; default: url
  std::vector<std::string> flags;        // extra `replicate` flags
  int ballast_mib = 0;                   // incompressible MiB in a table of their own: big snapshots
  int64_t retention_ms = 0;              // the -retention given: txids may expire
  int samples = -1;                      // txids restored; -1: REPLITE_CRASH_SAMPLES (default 40); 0: all
  // Kills the child of one round at the stage the test aims at, or at its
  // own timeout; returns true when the stage was seen. Unset: a random
  // moment, mostly short lives, some long enough to reach steady state.
  std::function<bool(int round, Child& c, const std::string& dir, std::mt19937_64& rng)> kill;
};

struct TortureResult {
  int rounds = 0, aimed = 0;  // aimed: kills at the stage the spec aims at
  uint64_t commits = 0, max_reported = 0;
  std::map<uint64_t, int> reported;  // durable txid -> round it was reported in
  int checked = 0, restore_failures = 0, not_prefix = 0, backwards = 0, regressions = 0, expired = 0;
  int window_missing = 0;  // reported inside the retention window, yet not restorable
  uint64_t latest_txid = 0;
  bool latest_equals_source = false, clean_exit = false;
  size_t generations = 0;
  uint64_t objects = 0, bad_objects = 0;  // stored objects, and those failing their checksums
  uint64_t spool_temps = 0, replica_temps = 0;  // temp files (*.tmp-*) left by kills in the state dir and a file:// replica
  int64_t torture_ms = 0, check_ms = 0;
  std::string first_backwards, first_bad_object, log_tail;
};

// Files named like TempSuffix() (".tmp-<pid>-...") under `dir`, recursively.
uint64_t CountTempFiles(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& f : FilesIn(dir)) {
    struct stat st;
    if (::stat((dir + "/" + f).c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) n += CountTempFiles(dir + "/" + f);
    else n += f.find(".tmp-") != std::string::npos;
  }
  return n;
}

// Opens every snapshot and segment of every generation at `url` and checks
// header, index and trailer (ObjectReader::Open): what a restore would see.
void CheckStoredObjects(const std::string& url, TortureResult* res) {
  ReplicaUrl u;
  REQUIRE(ParseReplicaUrl(url, &u).ok());
  StoreRegistry reg(Env::Default(), StoreConfig());
  std::shared_ptr<ObjectStore> store;
  REQUIRE(reg.Open(u, &store).ok());
  std::vector<GenerationEntry> gens;
  REQUIRE(LoadGenerations(store.get(), u.prefix, &gens).ok());
  for (const auto& g : gens) {
    GenerationCatalog cat;
    REQUIRE(ListGeneration(store.get(), u.prefix, g.id, &cat).ok());
    std::vector<ObjectRef> objs = cat.snapshots;
    objs.insert(objs.end(), cat.segments.begin(), cat.segments.end());
    for (const auto& o : objs) {
      res->objects++;
      ObjectReader rd(store.get(), o.key, o.size);
      Status s = rd.Open();
      if (!s.ok() && res->bad_objects++ == 0) res->first_bad_object = s.ToString();
    }
  }
}

// Runs the torture and checks every sampled txid; the caller asserts.
void RunTorture(const TortureSpec& spec, TortureResult* res) {
  const int rounds = spec.rounds;
  const int samples = spec.samples >= 0 ? spec.samples : int(EnvInt("REPLITE_CRASH_SAMPLES", 40));
  const uint64_t seed = uint64_t(EnvInt("REPLITE_CRASH_SEED", int64_t(std::random_device()() & 0x7fffffff)));
  WARN(spec.what << ": seed " << seed << " (REPLITE_CRASH_SEED=" << seed << " replays it), " << rounds << " rounds");
  res->rounds = rounds;
  std::mt19937_64 rng(seed);
  test::TempDir dir;
  const std::string cli = REPLITE_CLI_PATH, db = dir / "app.db", state = dir / "state", log = dir / "replicate.log";
  const std::string url = spec.url.empty() ? dir.url("replica/app") : spec.url;
  const std::string check_url = spec.check_url.empty() ? url : spec.check_url;
  {
    test::Writer w(db);
    w.Exec("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, n INTEGER, data BLOB)");
    w.Exec("CREATE TABLE meta(v INTEGER); INSERT INTO meta VALUES (-1)");
    if (spec.ballast_mib > 0) {
      w.Exec("CREATE TABLE ballast(b BLOB)");
      for (int i = 0; i < spec.ballast_mib; i++) w.Exec("INSERT INTO ballast VALUES (randomblob(1048576))");
    }
  }
  std::vector<std::string> args = {cli, "replicate", "-state", state, "-poll-ms", "20", "-print-durable"};
  args.insert(args.end(), spec.flags.begin(), spec.flags.end());
  args.push_back(db);
  args.push_back(url);
  // The application: its own connection for the whole test, SQLite's
  // default autocheckpoint (so the application checkpoints too).
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> commits{0}, write_errors{0};
  std::thread writer([&] {
    sqlite3* c = nullptr;
    sqlite3_open(db.c_str(), &c);
    sqlite3_busy_timeout(c, 10000);
    uint64_t i = 0;
    while (!stop) {
      if (sqlite3_exec(c, CommitSql(i).c_str(), nullptr, nullptr, nullptr) == SQLITE_OK) {
        i++;
        commits = i;
      } else {
        write_errors++;
        sqlite3_exec(c, "ROLLBACK", nullptr, nullptr, nullptr);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(2000 + (i * 7919) % 3000));
    }
    sqlite3_close(c);
  });

  auto& reported = res->reported;
  std::map<uint64_t, Clock::time_point> reported_at;  // when first seen
  auto collect = [&](Child& c, int round) {
    const auto times = c.LineTimes();
    std::vector<Clock::time_point> when;
    auto txids = DurableTxids(c.Lines(), &times, &when);
    for (size_t i = 0; i < txids.size(); i++) {
      reported.emplace(txids[i], round);
      reported_at.emplace(txids[i], when[i]);
    }
    return txids;
  };
  const auto t0 = Clock::now();
  for (int round = 0; round < rounds; round++) {
    Child c(args, log);
    if (spec.kill) {
      res->aimed += spec.kill(round, c, dir.path(), rng);
    } else {
      // Mostly short lives (kills during start-up, the first snapshot and
      // catch-up), some long enough to reach steady state, position
      // flushes (every 1 s) and checkpoints.
      const int ms = (rng() % 3 == 0) ? int(300 + rng() % 1500) : int(rng() % 400);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    c.Kill(SIGKILL);
    CHECK(c.Wait() == 128 + SIGKILL);
    auto txids = collect(c, round);
    if (!txids.empty()) {
      if (txids.front() < res->max_reported) res->regressions++;  // a restart re-reported an older txid
      res->max_reported = std::max(res->max_reported, *std::max_element(txids.begin(), txids.end()));
    }
  }
  stop = true;
  writer.join();
  REQUIRE(write_errors == 0);  // the application never failed a commit
  res->commits = commits.load();
  // A last, clean run: catch up, then SIGTERM (flush) and exit 0.
  Clock::time_point end;
  {
    Child c(args, log);
    const auto t = Clock::now();
    size_t seen = 0;
    auto last_change = Clock::now();
    while (MsSince(t) < 30000) {
      size_t n = c.Lines().size();
      if (n != seen) seen = n, last_change = Clock::now();
      if (MsSince(last_change) > 1500) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    c.Kill(SIGTERM);
    int code = -1;
    res->clean_exit = c.WaitFor(20000, &code) && code == 0;
    end = Clock::now();
    collect(c, rounds);
  }
  res->torture_ms = MsSince(t0);
  std::string log_text;
  (void)ReadFileToString(log, &log_text);
  res->log_tail = log_text.substr(log_text.size() > 6000 ? log_text.size() - 6000 : 0);

  // The latest restore equals the source.
  const std::string out = dir / "out.db";
  RestoreResult rr;
  Status s = Restore(check_url, out, RestoreOptions(), &rr);
  INFO(s.ToString() << "\nreplicate log (tail):\n" << res->log_tail);
  REQUIRE(s.ok());
  CHECK(test::IntegrityCheck(out) == "ok\n");
  std::string why;
  res->latest_equals_source = test::DumpContent(out) == test::DumpContent(db) &&
                              CommitsIn(out, &why) == int64_t(res->commits);
  res->latest_txid = rr.txid;
  REQUIRE(!reported.empty());
  std::vector<GenerationInfo> gens;
  REQUIRE(ListGenerations(check_url, &gens).ok());
  res->generations = gens.size();
  CheckStoredObjects(check_url, res);
  res->spool_temps = CountTempFiles(state);
  res->replica_temps = CountTempFiles(dir / "replica");

  // With retention, a txid may have expired: it must then lie outside every
  // stored generation, and must not have been reported inside the window
  // (a second of slack for the time between capture and report).
  auto stored = [&](uint64_t t) {
    for (const auto& g : gens)
      if (g.first_txid <= t && t <= g.last_txid) return true;
    return false;
  };
  std::map<uint64_t, int> candidates;
  for (const auto& [t, r] : reported) {
    if (spec.retention_ms > 0 && !stored(t)) {
      res->expired++;
      if (std::chrono::duration_cast<std::chrono::milliseconds>(end - reported_at[t]).count() <
          spec.retention_ms - 1000) {
        res->window_missing++;
        WARN("txid " << t << " reported inside the retention window is not stored");
      }
      continue;
    }
    candidates.emplace(t, r);
  }

  // Every candidate txid (or a sample, always with the first and last of
  // each round) restores to an exact commit prefix.
  std::vector<uint64_t> all;
  for (const auto& [t, r] : candidates) all.push_back(t);
  std::set<uint64_t> pick;
  {
    std::map<int, std::pair<uint64_t, uint64_t>> ends;
    for (const auto& [t, r] : candidates) {
      auto it = ends.find(r);
      if (it == ends.end()) ends[r] = {t, t};
      else it->second.second = t;
    }
    for (const auto& [r, e] : ends) pick.insert(e.first), pick.insert(e.second);
    if (samples <= 0 || size_t(samples) >= all.size()) pick.insert(all.begin(), all.end());
    else
      while (pick.size() < size_t(samples) + ends.size() * 2 && pick.size() < all.size())
        pick.insert(all[rng() % all.size()]);
  }
  const auto t1 = Clock::now();
  int64_t prev_k = -1;
  uint64_t prev_t = 0;
  for (uint64_t t : pick) {
    ::unlink(out.c_str());
    RestoreOptions ro;
    ro.txid = t;
    RestoreResult r;
    Status rs = Restore(check_url, out, ro, &r);
    res->checked++;
    if (!rs.ok() || r.txid != t || test::IntegrityCheck(out) != "ok\n") {
      res->restore_failures++;
      WARN("txid " << t << " reported durable in round " << reported[t] << " does not restore: "
                            << rs.ToString());
      continue;
    }
    const int64_t k = CommitsIn(out, &why);
    if (k < 0) {
      res->not_prefix++;
      WARN("txid " << t << ": " << why);
      continue;
    }
    if (k < prev_k && res->backwards++ == 0)
      res->first_backwards = "txid " + std::to_string(prev_t) + " (round " + std::to_string(reported[prev_t]) +
                             ") restores " + std::to_string(prev_k) + " commits, the later txid " + std::to_string(t) +
                             " (round " + std::to_string(reported[t]) + ") only " + std::to_string(k);
    prev_k = k;
    prev_t = t;
  }
  res->check_ms = MsSince(t1);
  WARN(spec.what << ": " << rounds << " SIGKILLs of replicate survived"
                 << (spec.kill ? " (" + std::to_string(res->aimed) + " at the aimed stage)" : std::string()) << ", "
                 << res->commits << " commits, " << reported.size() << " distinct durable txids reported (max "
                 << res->max_reported << "), " << res->checked << " restored by txid and checked in " << res->check_ms
                 << " ms (failures " << res->restore_failures << ", not a commit prefix " << res->not_prefix
                 << ", txid order != commit order " << res->backwards << "); expired by retention " << res->expired
                 << " (inside the window " << res->window_missing << "); latest restore txid " << res->latest_txid
                 << "; " << res->generations << " generation(s), " << res->objects << " objects ("
                 << res->bad_objects << " failing checksums); temp files left by kills: " << res->spool_temps
                 << " in the state dir, " << res->replica_temps << " in the replica"
                 << "; restarts that re-reported an older txid: "
                 << res->regressions << "; torture " << res->torture_ms << " ms");
}

// The plain torture: random kill moments, REPLITE_CRASH_ROUNDS rounds.
TortureSpec PlainSpec(const std::string& what) {
  TortureSpec spec;
  spec.what = what;
  spec.rounds = int(EnvInt("REPLITE_CRASH_ROUNDS", 10));
  return spec;
}

// The checks every torture must pass.
void CheckTorture(const TortureResult& r) {
  INFO("replicate log (tail):\n" << r.log_tail);
  INFO(r.first_bad_object);
  CHECK(r.clean_exit);             // the last run flushed on SIGTERM and exited 0
  CHECK(r.restore_failures == 0);  // every durable txid is restorable, integrity_check ok
  CHECK(r.not_prefix == 0);        // ... to an exact committed state
  CHECK(r.latest_equals_source);   // the final restore equals the source
  CHECK(r.window_missing == 0);    // retention kept every restore point of its window
  CHECK(r.bad_objects == 0);       // nothing torn or temporary is visible to restore
}

}  // namespace

TEST_CASE("crash torture: SIGKILL the replicator at random moments, every durable txid restores", "[crash]") {
  TortureResult r;
  RunTorture(PlainSpec("crash torture"), &r);
  CheckTorture(r);
}

// Regression: after a SIGKILL the saved position can lag the replica by up
// to position_flush_ms; a new generation started by the restarted process
// must still continue after the replica's last txid (found by listing the
// replica's generations, orphans included), never re-use a txid that was
// already reported durable.
TEST_CASE("crash torture: txids never go backwards across restarts", "[crash]") {
  TortureResult r;
  RunTorture(PlainSpec("txid order"), &r);
  INFO("replicate log (tail):\n" << r.log_tail);
  INFO(r.first_backwards);
  CHECK(r.backwards == 0);  // regression: a new generation once re-used acknowledged txids
  REQUIRE(!r.reported.empty());
  CHECK(r.latest_txid >= r.reported.rbegin()->first);  // regression: same cause
}

namespace {

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

int AimedRounds() { return int(EnvInt("REPLITE_CRASH_AIMED_ROUNDS", 8)); }

void SleepMs(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// How many requests the proxy has held ("stall" faults) so far.
int StallsSoFar(test::FaultProxy* proxy) {
  const std::string stats = proxy->Control("/stats");
  const size_t p = stats.find("\"stall\": ");
  return p == std::string::npos ? 0 : std::atoi(stats.c_str() + p + 9);
}

}  // namespace

TEST_CASE("crash torture: SIGKILL during snapshot upload", "[crash]") {
  TortureSpec spec;
  spec.what = "kills during snapshot upload";
  spec.rounds = AimedRounds();
  spec.ballast_mib = 8;  // snapshots of ~8 MiB: streamed through the spool, then written into the replica
  spec.flags = {"-snapshot-interval", "1s"};
  spec.kill = [](int round, Child&, const std::string& dir, std::mt19937_64& rng) {
    // Even rounds: while the snapshot is staged in the spool
    // (state/spool/snapshot.tmp-*); odd ones: while it is written into the
    // replica (generations/<g>/snapshots/<txid>.snap.tmp-*), a few ms in.
    const bool spool = round % 2 == 0;
    TreeWatch w(dir, [spool](const std::string& d, const std::string& name, uint32_t mask) {
      if (!(mask & IN_CREATE)) return false;
      return spool ? name.rfind("snapshot.tmp-", 0) == 0
                   : BaseName(d) == "snapshots" && name.find(".snap.tmp-") != std::string::npos;
    });
    // Sometimes a later snapshot: a periodic one, from a saved position.
    bool seen = true;
    for (int skip = int(rng() % 3); seen && skip >= 0; skip--) seen = w.Wait(4000);
    if (seen) SleepMs(int64_t(rng() % 10));
    return seen;
  };
  TortureResult r;
  RunTorture(spec, &r);
  CheckTorture(r);
  CHECK(r.aimed * 2 >= r.rounds);  // the kills did land where aimed (not only at the timeout)
}

// moto refuses parts below 5 MiB except the last: a ~12 MiB database in
// 5 MiB parts makes every snapshot a 3-part upload.
TEST_CASE("crash torture: SIGKILL during a multipart upload to S3", "[crash][s3]") {
  test::S3Through s3;
  if (!test::SetUpS3("replite-crash", "multipart/app", &s3)) return;
  TortureSpec spec;
  spec.what = "kills during S3 multipart upload";
  spec.rounds = int(EnvInt("REPLITE_CRASH_S3_ROUNDS", 6));
  spec.url = s3.url + "&multipart-threshold=5M&multipart-part-size=5M";
  spec.check_url = s3.direct_url;
  spec.ballast_mib = 12;
  // Each restore reads 12 MiB from moto; the first and last txid of every
  // round are always checked, plus this many more.
  spec.samples = int(EnvInt("REPLITE_CRASH_S3_SAMPLES", 4));
  spec.flags = {"-snapshot-interval", "2s"};
  test::FaultProxy* proxy = s3.proxy.get();
  spec.kill = [proxy](int round, Child&, const std::string&, std::mt19937_64& rng) {
    if (round % 2 == 0) {  // a life long enough to finish snapshots (and maybe be killed in one)
      SleepMs(int64_t(1500 + rng() % 2000));
      return false;
    }
    // The proxy holds the next upload of part 2 for 3 s: while it is held,
    // the upload is certainly in progress (parts 1 and 3 may be done).
    const int before = StallsSoFar(proxy);
    proxy->Set("mode=stall&t=3&n=1&method=PUT&path=partNumber%3D2");
    bool seen = false;
    for (int i = 0; i < 300 && !(seen = StallsSoFar(proxy) > before); i++) SleepMs(20);
    proxy->Set("mode=pass");
    if (seen) SleepMs(int64_t(rng() % 1500));
    return seen;
  };
  TortureResult r;
  RunTorture(spec, &r);
  CheckTorture(r);
  CHECK(r.aimed * 2 >= r.rounds / 2);  // most multipart-aimed rounds saw the held part
  // A killed upload is never completed, so never an object a restore could
  // see (checked above: every stored object passes its checksums); on AWS
  // its parts stay until aborted (a lifecycle rule with
  // AbortIncompleteMultipartUpload reclaims them).
}

TEST_CASE("crash torture: SIGKILL during retention cleanup", "[crash][retention]") {
  TortureSpec spec;
  spec.what = "kills during retention cleanup";
  spec.rounds = AimedRounds();
  // A snapshot every second, each followed by retention deleting about a
  // second's worth of segments (one per 20 ms poll) and a snapshot.
  spec.flags = {"-snapshot-interval", "1s", "-retention", "3s"};
  spec.retention_ms = 3000;
  spec.kill = [](int, Child&, const std::string& dir, std::mt19937_64&) {
    TreeWatch w(dir, [](const std::string&, const std::string& name, uint32_t mask) {
      return (mask & IN_DELETE) && !(mask & IN_ISDIR) && (EndsWith(name, ".seg") || EndsWith(name, ".snap"));
    });
    return w.Wait(6000);
  };
  TortureResult r;
  RunTorture(spec, &r);
  CheckTorture(r);
  CHECK(r.aimed * 2 >= r.rounds);
  CHECK(r.expired > 0);  // retention did run and delete restore points
}

// Compaction levels (issue 15): killed while a compacted object is written
// (its temporary file in levels/<n>/, or just after it is in place and
// before it is read back), the replica keeps every durable txid exact:
// restores plan over the compacted objects, which reach furthest. Every
// txid stays kept (keep-every-txid 1h): the deletes after verification are
// stopped at every request in compaction_test.cc.
TEST_CASE("crash torture: SIGKILL during compaction", "[crash][compaction]") {
  TortureSpec spec;
  spec.what = "kills during compaction";
  spec.rounds = AimedRounds();
  spec.flags = {"-compaction-levels", "1s+2s", "-keep-every-txid", "1h"};
  spec.kill = [](int round, Child&, const std::string& dir, std::mt19937_64& rng) {
    const bool temp = round % 2 == 0;
    TreeWatch w(dir, [temp](const std::string& d, const std::string& name, uint32_t mask) {
      if (BaseName(DirName(d)) != "levels") return false;
      return temp ? (mask & IN_CREATE) && name.find(".seg.tmp-") != std::string::npos
                  : (mask & IN_MOVED_TO) && EndsWith(name, ".seg");
    });
    const bool seen = w.Wait(8000);
    if (seen) SleepMs(int64_t(rng() % 3));
    return seen;
  };
  TortureResult r;
  RunTorture(spec, &r);
  CheckTorture(r);
  CHECK(r.aimed * 2 >= r.rounds);
}

// Packing (core/pack_jobs.cc, -pack-window): the segments go into packs
// under replica/.replite-packs/, durable once the pack is stored, and move
// into the database's own objects every 2 s. Even rounds kill right after a
// pack is stored (its segments reported durable, the position perhaps not
// saved yet); odd ones while packs are moved out (a pack being deleted,
// its objects perhaps half written). Every durable txid must restore
// exactly, reading what is still in packs.
TEST_CASE("crash torture: SIGKILL with packing on", "[crash][pack]") {
  TortureSpec spec;
  spec.what = "kills with packing on";
  spec.rounds = AimedRounds();
  spec.flags = {"-pack-window", "50", "-pack-unpack", "2s"};
  spec.kill = [](int round, Child&, const std::string& dir, std::mt19937_64& rng) {
    const bool stored = round % 2 == 0;
    TreeWatch w(dir, [stored](const std::string& d, const std::string& name, uint32_t mask) {
      if (BaseName(d) != ".replite-packs" || !EndsWith(name, ".pack")) return false;
      return stored ? (mask & IN_MOVED_TO) != 0 : (mask & IN_DELETE) != 0;
    });
    const bool seen = w.Wait(8000);
    if (seen) SleepMs(int64_t(rng() % 3));
    return seen;
  };
  TortureResult r;
  RunTorture(spec, &r);
  CheckTorture(r);
  CHECK(r.aimed * 2 >= r.rounds);
}

TEST_CASE("crash torture: SIGKILL during restore never leaves a half-written target", "[crash]") {
  const int kills = int(EnvInt("REPLITE_RESTORE_KILLS", 12));
  const uint64_t seed = uint64_t(EnvInt("REPLITE_CRASH_SEED", int64_t(std::random_device()() & 0x7fffffff)));
  WARN("restore kills: seed " << seed);
  std::mt19937_64 rng(seed);
  test::TempDir dir;
  const std::string cli = REPLITE_CLI_PATH, db = dir / "app.db", url = dir.url("replica/app");
  {
    // A database of some MB, in several segments and two snapshots, so a
    // restore takes long enough to be interrupted at different stages.
    test::Writer w(db);
    w.Exec("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, n INTEGER, data BLOB)");
    w.Exec("CREATE TABLE meta(v INTEGER); INSERT INTO meta VALUES (-1)");
    ReplicatorOptions o;
    o.state_dir = dir / "state";
    o.logger = [](const std::string&) {};
    o.defaults.replica_url = url;
    o.defaults.poll_interval_ms = 0;
    std::unique_ptr<Replicator> r;
    REQUIRE(Replicator::Open(o, &r).ok());
    REQUIRE(r->Add(db).ok());
    for (uint64_t i = 0; i < 3000; i++) {
      w.Exec(CommitSql(i));
      if (i % 100 == 99) REQUIRE(r->Sync(db).ok());
      if (i == 1500) REQUIRE(r->Snapshot(db).ok());
    }
    REQUIRE(r->Sync(db).ok());
    REQUIRE(r->Close().ok());
  }
  const std::string want = test::DumpContent(db);
  const std::string outdir = dir / "out";
  REQUIRE(MakeDirs(outdir).ok());
  const std::string target = outdir + "/restored.db";
  // One uninterrupted restore for its duration.
  int64_t full_ms = 0;
  {
    const auto t = Clock::now();
    Child c({cli, "restore", "-o", target, url}, dir / "restore.log");
    REQUIRE(c.Wait() == 0);
    full_ms = std::max<int64_t>(1, MsSince(t));
    REQUIRE(test::DumpContent(target) == want);
    for (const char* sfx : {"", "-wal", "-shm"}) ::unlink((target + sfx).c_str());
  }
  int absent = 0, complete = 0, bad = 0, with_leftovers = 0, finished = 0;
  std::set<std::string> leftover_names;
  for (int k = 0; k < kills; k++) {
    Child c({cli, "restore", "-o", target, url}, dir / "restore.log");
    const int64_t us = int64_t(rng() % uint64_t(full_ms * 1500 + 1));  // 0 .. 1.5 x the full duration
    std::this_thread::sleep_for(std::chrono::microseconds(us));
    c.Kill(SIGKILL);
    const int code = c.Wait();
    if (code == 0) finished++;
    if (!FileExists(target)) {
      absent++;
    } else {
      std::string why;
      const bool ok = test::IntegrityCheck(target) == "ok\n" && test::DumpContent(target) == want;
      INFO("kill after " << us << " us: the target exists but is not the complete database");
      CHECK(ok);
      ok ? complete++ : bad++;
      for (const char* sfx : {"", "-wal", "-shm"}) ::unlink((target + sfx).c_str());  // (sidecars from our checks)
    }
    bool left = false;
    for (const auto& f : FilesIn(outdir)) {
      if (f == "restored.db") continue;
      INFO("unexpected file beside the target: " << f);
      CHECK(f.find(".replite-restore") != std::string::npos);  // only restore temp files, nowhere else
      if (leftover_names.insert(f).second) left = true;  // kept: does a later restore clean them?
    }
    with_leftovers += left;
    for (const auto& f : FilesIn(dir.path())) CHECK(f.find(".replite-restore") == std::string::npos);
  }
  // After all that, a normal restore into the same place works.
  Child c({cli, "restore", "-o", target, url}, dir / "restore.log");
  CHECK(c.Wait() == 0);
  CHECK(test::DumpContent(target) == want);
  size_t still_left = 0;
  for (const auto& f : FilesIn(outdir)) still_left += f.find(".replite-restore") != std::string::npos;
  std::string names;
  for (const auto& n : leftover_names) names += (names.empty() ? "" : ", ") + n;
  WARN("restore kills: " << kills << " SIGKILLs over a " << full_ms << " ms restore: target absent " << absent
                         << ", complete " << complete << ", half-written " << bad << " (" << finished
                         << " finished before the kill); temp files left beside the target after " << with_leftovers
                         << " kills" << (names.empty() ? "" : ": " + names.substr(0, 300)) << "; " << still_left
                         << " of them still there after a later successful restore");
  CHECK(bad == 0);
}
