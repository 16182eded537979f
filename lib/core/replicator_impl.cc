// ReplicatorImpl: the database registry, the per-database job state machine
// and the glue between capture (wal_capture), upload (ObjectStore) and
// positions (PositionStore).
//
// Per database: at most one job queued or running at a time (state field);
// a request that arrives while a job runs sets `rerun` so nothing is
// missed. Jobs run on the shared ThreadPool; polls are entries in the one
// TimerQueue.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/position_store.h"
#include "core/sqlite_conn.h"
#include <chrono>
#include <cstring>
#include "replite/replite.h"
#include "core/retention.h"
#include "core/wal_capture.h"
#include "exec/thread_pool.h"
#include "exec/timer_queue.h"
#include "format/layout.h"
#include "metrics/metrics.h"
#include "replite/replicator.h"
#include <sqlite3.h>
#include "replite/sys/env.h"
#include "store/store_registry.h"
#include "util/file_util.h"

namespace replite {
namespace {

std::string DefaultStateDir() {
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/replite";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/state/replite";
  return "/tmp/replite-state";
}

std::string ReplicaNameFor(const std::string& db_path) {
  std::string name = BaseName(db_path);
  for (const char* ext : {".sqlite3", ".sqlite", ".db"}) {
    size_t n = std::strlen(ext);
    if (name.size() > n && name.compare(name.size() - n, n, ext) == 0) {
      name.resize(name.size() - n);
      break;
    }
  }
  return name;
}

enum JobState { kIdle, kQueued, kRunning };

struct Db {
  uint64_t id = 0;
  std::string path;
  std::string url_str;
  ReplicaUrl url;
  std::shared_ptr<ObjectStore> store;
  DatabaseOptions opts;

  std::mutex mu;  // guards everything below
  std::condition_variable cv;
  Position pos;
  bool start_resolved = false;  // replica's last txid known (for a fresh generation)
  JobState state = kIdle;
  bool rerun = false;
  bool removed = false;
  uint64_t req_seq = 0, done_seq = 0;
  Status last_status;
  bool want_snapshot = false, want_checkpoint = false, want_truncate = false;
  int64_t wal_size = -1, wal_mtime_ns = -1, db_mtime_ns = -1;
  int64_t last_change_ms = 0;
  uint64_t timer_seq = 0;
  bool notify_pending = false;
  int64_t notified_at_ms = 0;   // first Notify not yet covered by a sync
  std::vector<std::pair<sqlite3*, void*>> hooks;  // Attach-ed connections
  DatabaseStatus stats;
};

// The WAL hook's context: which replicator and database a commit is for.
struct HookCtx {
  class ReplicatorImpl* r;
  uint64_t id;
};

constexpr uint64_t kNotifyTimer = 1ull << 63;  // timer seq bit: a Notify batch is due

class ReplicatorImpl final : public Replicator {
 public:
  explicit ReplicatorImpl(const ReplicatorOptions& o)
      : opts_(o),
        env_(o.env ? o.env : Env::Default()),
        stores_(env_, MakeStoreConfig(o)),
        pool_(o.worker_threads),
        timers_([this](uint64_t id, uint64_t seq) { OnTimer(id, seq); }) {
    DeclareMetrics();
  }

  void DeclareMetrics() {
    m_.Gauge("replite_databases", "Databases being replicated.");
    m_.Gauge("replite_jobs_queued", "Jobs waiting for a worker.");
    m_.Gauge("replite_worker_threads", "Shared worker threads.");
    m_.Counter("replite_syncs_total", "Sync jobs that captured or checked a database, by result.");
    m_.Counter("replite_transactions_total", "Transactions captured and made durable.");
    m_.Counter("replite_segments_uploaded_total", "Segments written to the store.");
    m_.Counter("replite_snapshots_uploaded_total", "Snapshots written to the store.");
    m_.Counter("replite_uploaded_bytes_total", "Bytes of segments and snapshots written to the store.");
    m_.Counter("replite_generations_started_total", "New generations (each one logged with its reason).");
    m_.Counter("replite_checkpoints_total", "Checkpoints run by the library.");
    m_.Histogram("replite_sync_duration_seconds", "Duration of sync jobs that captured something.",
                 {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
    m_.Histogram("replite_commit_to_durable_seconds", "From Notify/WAL hook to the commit being durable.",
                 {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  }

  ~ReplicatorImpl() override { Close(); }

  Status Init() {
    if (opts_.state_dir.empty()) opts_.state_dir = DefaultStateDir();
    Status s = MakeDirs(opts_.state_dir);
    if (!s.ok()) return s.Annotate("state_dir: ");
    spool_dir_ = opts_.state_dir + "/spool";
    s = MakeDirs(spool_dir_);
    if (!s.ok()) return s;
    if (!opts_.replica_url.empty()) {
      s = ParseReplicaUrl(opts_.replica_url, &root_url_);
      if (!s.ok()) return s;
      has_root_ = true;
    }
    s = positions_.Open(opts_.state_dir + "/positions.db");
    if (!s.ok()) return s;
    timers_.At(NowMono() + opts_.position_flush_ms * 1000, 0, 0);
    return Status::OK();
  }

  Status Add(const std::string& path) override { return Add(path, opts_.defaults); }

  Status Add(const std::string& raw_path, const DatabaseOptions& o) override {
    if (closed_) return Status::Cancelled("replicator is closed");
    const std::string path = AbsolutePath(raw_path);
    auto db = std::make_shared<Db>();
    db->path = path;
    db->opts = o;
    db->stats.path = path;
    if (!o.replica_url.empty()) {
      Status s = ParseReplicaUrl(o.replica_url, &db->url);
      if (!s.ok()) return s;
    } else if (has_root_) {
      db->url = root_url_.Child(ReplicaNameFor(path));
    } else {
      return Status::InvalidArgument("database " + path +
                                     ": no replica URL (set DatabaseOptions::replica_url or ReplicatorOptions::replica_url)");
    }
    db->url_str = db->url.ToString();
    db->stats.replica_url = db->url_str;
    // Checks that fail fast and clearly, before anything is scheduled.
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("database " + path, errno);
    if (!S_ISREG(st.st_mode)) return Status::InvalidArgument("database " + path + " is not a regular file");
    {
      SqliteProbe probe;
      Status s = probe.Check(path, o.enable_wal);
      if (!s.ok()) return s;
    }
    Status s = stores_.Open(db->url, &db->store);
    if (!s.ok()) return s;
    bool found = false;
    s = positions_.Load(path, db->url_str, &db->pos, &found);
    if (!s.ok()) return s;
    db->start_resolved = found;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (by_path_.count(path)) return Status::AlreadyExists("database " + path + " is already being replicated");
      for (const auto& [p, other] : by_path_)
        if (other->url_str == db->url_str)
          return Status::AlreadyExists("replica " + db->url_str + " is already used by database " + p +
                                       " (give each database its own replica URL)");
      db->id = ++next_id_;
      by_path_[path] = db;
      by_id_[db->id] = db;
    }
    Kick(db, true);
    return Status::OK();
  }

  Status Remove(const std::string& raw_path) override {
    auto db = Find(AbsolutePath(raw_path));
    if (!db) return Status::NotFound("database " + raw_path + " is not being replicated");
    {
      std::unique_lock<std::mutex> l(db->mu);
      db->removed = true;
      db->timer_seq++;
      DetachAll(*db);
      db->cv.wait(l, [&] { return db->state == kIdle; });
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      by_path_.erase(db->path);
      by_id_.erase(db->id);
    }
    return positions_.Flush();
  }

  Status Notify(const std::string& path) override {
    auto db = Find(AbsolutePath(path));
    if (!db) return Status::NotFound("database " + path + " is not being replicated");
    NotifyDb(db);
    return Status::OK();
  }

  // A commit happened: sync after the batching window (one timer entry,
  // whatever the number of commits in the window).
  void NotifyDb(const std::shared_ptr<Db>& db) {
    std::lock_guard<std::mutex> l(db->mu);
    if (db->removed || closed_) return;
    if (db->notified_at_ms == 0) db->notified_at_ms = NowMs();
    if (db->notify_pending) return;
    db->notify_pending = true;
    timers_.At(NowMono() + db->opts.sync_interval_ms * 1000, db->id, kNotifyTimer);
  }

  static int WalHook(void* arg, sqlite3*, const char* name, int) {
    auto* ctx = static_cast<HookCtx*>(arg);
    if (name && std::strcmp(name, "main") == 0) ctx->r->NotifyById(ctx->id);
    return SQLITE_OK;
  }

  void NotifyById(uint64_t id) {
    std::shared_ptr<Db> db;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = by_id_.find(id);
      if (it == by_id_.end()) return;
      db = it->second;
    }
    NotifyDb(db);
  }

  Status Attach(const std::string& path, sqlite3* conn) override {
    if (!conn) return Status::InvalidArgument("Attach: connection is null");
    auto db = Find(AbsolutePath(path));
    if (!db) return Status::NotFound("database " + path + " is not being replicated (Add it before Attach)");
    const char* file = sqlite3_db_filename(conn, "main");
    if (!file || AbsolutePath(file) != db->path)
      return Status::InvalidArgument("Attach: the connection is to " + std::string(file ? file : "?") + ", not " + db->path);
    std::lock_guard<std::mutex> l(db->mu);
    for (const auto& h : db->hooks)
      if (h.first == conn) return Status::AlreadyExists("Attach: connection already attached to " + db->path);
    auto* ctx = new HookCtx{this, db->id};
    sqlite3_wal_hook(conn, &ReplicatorImpl::WalHook, ctx);
    db->hooks.push_back({conn, ctx});
    return Status::OK();
  }

  Status Detach(const std::string& path, sqlite3* conn) override {
    auto db = Find(AbsolutePath(path));
    if (!db) return Status::NotFound("database " + path + " is not being replicated");
    std::lock_guard<std::mutex> l(db->mu);
    for (size_t i = 0; i < db->hooks.size(); i++) {
      if (db->hooks[i].first != conn) continue;
      sqlite3_wal_hook(conn, nullptr, nullptr);
      delete static_cast<HookCtx*>(db->hooks[i].second);
      db->hooks.erase(db->hooks.begin() + i);
      return Status::OK();
    }
    return Status::NotFound("Detach: connection is not attached to " + db->path);
  }

  static void DetachAll(Db& db) {
    for (auto& h : db.hooks) {
      sqlite3_wal_hook(h.first, nullptr, nullptr);
      delete static_cast<HookCtx*>(h.second);
    }
    db.hooks.clear();
  }

  Status WaitDurable(const std::string& path, int64_t timeout_ms, uint64_t* durable_txid) override {
    return Request(path, false, false, false, durable_txid, timeout_ms);
  }

  ReplicatorStatus GetSummary(size_t top_n) override {
    ReplicatorStatus out;
    std::vector<std::shared_ptr<Db>> dbs;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (const auto& [p, db] : by_path_) dbs.push_back(db);
    }
    out.databases = dbs.size();
    out.jobs_queued = pool_.queued();
    out.worker_threads = pool_.threads();
    std::vector<DatabaseStatus> all;
    for (const auto& db : dbs) {
      DatabaseStatus st;
      GetStatusOf(*db, &st);
      if (!st.last_error.empty()) out.with_errors++;
      all.push_back(std::move(st));
    }
    // Oldest durable point first: errors and never-synced databases lead.
    std::sort(all.begin(), all.end(), [](const DatabaseStatus& a, const DatabaseStatus& b) {
      if (a.last_error.empty() != b.last_error.empty()) return !a.last_error.empty();
      return a.last_sync_ms < b.last_sync_ms;
    });
    if (all.size() > top_n) all.resize(top_n);
    out.laggards = std::move(all);
    return out;
  }

  std::string Metrics() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      m_.Set("replite_databases", {}, double(by_path_.size()));
    }
    m_.Set("replite_jobs_queued", {}, double(pool_.queued()));
    m_.Set("replite_worker_threads", {}, double(pool_.threads()));
    return m_.Render();
  }

  Status Sync(const std::string& path, uint64_t* durable_txid) override {
    return Request(path, false, false, false, durable_txid, -1);
  }
  Status Snapshot(const std::string& path) override { return Request(path, true, false, false, nullptr, -1); }
  Status Checkpoint(const std::string& path, bool truncate) override {
    return Request(path, false, true, truncate, nullptr, -1);
  }

  Status GetStatus(const std::string& path, DatabaseStatus* out) override {
    auto db = Find(AbsolutePath(path));
    if (!db) return Status::NotFound("database " + path + " is not being replicated");
    GetStatusOf(*db, out);
    return Status::OK();
  }

  static void GetStatusOf(Db& d, DatabaseStatus* out) {
    Db* db = &d;
    std::lock_guard<std::mutex> l(db->mu);
    *out = db->stats;
    out->metrics_group = db->opts.metrics_group;
    out->generation = db->pos.generation;
    out->durable_txid = db->pos.txid;
    out->durable_ts_ms = db->pos.txid_ts_ms;
    out->page_size = db->pos.page_size;
    out->db_pages = db->pos.db_pages;
    out->wal_frames = db->pos.frames;
    out->last_error = db->last_status.ok() ? "" : db->last_status.ToString();
  }

  std::vector<std::string> Databases() override {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<std::string> v;
    for (const auto& [p, db] : by_path_) v.push_back(p);
    return v;
  }

  Status Close() override {
    if (closed_.exchange(true)) return Status::OK();
    std::vector<std::shared_ptr<Db>> dbs;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (const auto& [p, db] : by_path_) dbs.push_back(db);
    }
    // Final capture of everything committed so far.
    Status first;
    std::vector<std::pair<std::shared_ptr<Db>, uint64_t>> waits;
    for (auto& db : dbs) {
      uint64_t seq;
      {
        std::lock_guard<std::mutex> l(db->mu);
        seq = ++db->req_seq;
        db->timer_seq++;
      }
      Kick(db, false);
      waits.push_back({db, seq});
    }
    for (auto& [db, seq] : waits) {
      std::unique_lock<std::mutex> l(db->mu);
      db->cv.wait(l, [&] { return db->done_seq >= seq || db->removed; });
      DetachAll(*db);
      if (!db->last_status.ok() && first.ok()) first = db->last_status.Annotate("close: " + db->path + ": ");
    }
    timers_.Stop();
    pool_.Drain();
    Status s = positions_.Flush();
    return first.ok() ? s : first;
  }

 private:
  // Opens the database once at Add time to report a clear error (missing,
  // not a database, not in WAL mode) instead of failing in the background.
  struct SqliteProbe {
    Status Check(const std::string& path, bool enable_wal);
  };

  static StoreConfig MakeStoreConfig(const ReplicatorOptions& o) {
    StoreConfig c;
    c.max_connections = o.max_connections;
    c.max_connections_per_host = o.max_connections_per_host;
    c.ca_file = o.ca_file;
    c.verify_tls = o.verify_tls;
    return c;
  }

  int64_t NowMs() { return env_->NowMicros() / 1000; }
  static int64_t NowMono() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  void Log(const std::string& line) {
    if (opts_.logger) {
      opts_.logger(line);
      return;
    }
    char ts[32];
    std::time_t t = static_cast<std::time_t>(NowMs() / 1000);
    std::tm tm;
    gmtime_r(&t, &tm);
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::fprintf(stderr, "%s replite: %s\n", ts, line.c_str());
  }

  std::shared_ptr<Db> Find(const std::string& path) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_path_.find(path);
    return it == by_path_.end() ? nullptr : it->second;
  }

  Status Request(const std::string& path, bool snapshot, bool checkpoint, bool truncate, uint64_t* durable,
                 int64_t timeout_ms) {
    if (closed_) return Status::Cancelled("replicator is closed");
    auto db = Find(AbsolutePath(path));
    if (!db) return Status::NotFound("database " + path + " is not being replicated");
    uint64_t seq;
    {
      std::lock_guard<std::mutex> l(db->mu);
      seq = ++db->req_seq;
      db->want_snapshot |= snapshot;
      db->want_checkpoint |= checkpoint;
      db->want_truncate |= truncate;
    }
    Kick(db, false);
    std::unique_lock<std::mutex> l(db->mu);
    auto done = [&] { return db->done_seq >= seq || db->removed; };
    if (timeout_ms < 0) {
      db->cv.wait(l, done);
    } else if (!db->cv.wait_for(l, std::chrono::milliseconds(timeout_ms), done)) {
      if (durable) *durable = db->pos.txid;
      return Status::Timeout("database " + db->path + ": not durable after " + std::to_string(timeout_ms) +
                             " ms (durable txid " + std::to_string(db->pos.txid) +
                             (db->last_status.ok() ? "" : "; last error: " + db->last_status.ToString()) + ")");
    }
    if (db->removed && db->done_seq < seq) return Status::Cancelled("database " + path + " was removed");
    if (durable) *durable = db->pos.txid;
    return db->last_status;
  }

  // Queues a job unless one is queued; a running job reruns afterwards.
  void Kick(const std::shared_ptr<Db>& db, bool bump) {
    std::lock_guard<std::mutex> l(db->mu);
    if (bump) db->req_seq++;
    if (db->removed) return;
    if (db->state == kIdle) {
      db->state = kQueued;
      pool_.Submit([this, db] { RunJob(db); });
    } else if (db->state == kRunning) {
      db->rerun = true;
    }
  }

  void OnTimer(uint64_t id, uint64_t seq) {
    if (id == 0) {  // position flush
      Status s = positions_.Flush();
      if (!s.ok()) Log("saving positions failed: " + s.ToString());
      if (!closed_) timers_.At(NowMono() + opts_.position_flush_ms * 1000, 0, 0);
      return;
    }
    std::shared_ptr<Db> db;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = by_id_.find(id);
      if (it == by_id_.end()) return;
      db = it->second;
    }
    if (seq == kNotifyTimer) {
      {
        std::lock_guard<std::mutex> l(db->mu);
        if (!db->notify_pending) return;
        db->notify_pending = false;
      }
      Kick(db, true);
      return;
    }
    {
      std::lock_guard<std::mutex> l(db->mu);
      if (db->timer_seq != seq) return;  // cancelled or re-armed
    }
    Kick(db, false);
  }

  void RunJob(std::shared_ptr<Db> db) {
    uint64_t seq;
    bool snap, ckpt, trunc;
    {
      std::lock_guard<std::mutex> l(db->mu);
      db->state = kRunning;
      db->rerun = false;
      seq = db->req_seq;
      snap = db->want_snapshot;
      ckpt = db->want_checkpoint;
      trunc = db->want_truncate;
      db->want_snapshot = db->want_checkpoint = db->want_truncate = false;
    }
    int64_t notified_at;
    {
      std::lock_guard<std::mutex> l(db->mu);
      notified_at = db->notified_at_ms;
      db->notified_at_ms = 0;
    }
    const bool forced = seq > db->done_seq;
    const Labels group{{"group", db->opts.metrics_group}};
    const int64_t t0 = NowMono();
    bool captured = false;
    Status s = DoSync(*db, forced, snap, ckpt, trunc, &captured);
    if (captured) m_.Observe("replite_sync_duration_seconds", group, double(NowMono() - t0) / 1e6);
    m_.Add("replite_syncs_total", {{"group", db->opts.metrics_group}, {"result", s.ok() ? "ok" : "error"}});
    if (s.ok() && notified_at != 0)
      m_.Observe("replite_commit_to_durable_seconds", group, double(NowMs() - notified_at) / 1e3);
    if (!s.ok() && notified_at != 0) {
      std::lock_guard<std::mutex> l(db->mu);
      if (db->notified_at_ms == 0) db->notified_at_ms = notified_at;
    }
    if (!s.ok()) {
      Log("database " + db->path + ": " + s.ToString());
      if (snap || ckpt || trunc) {
        std::lock_guard<std::mutex> l(db->mu);
        db->want_snapshot |= snap;
        db->want_checkpoint |= ckpt;
        db->want_truncate |= trunc;
      }
    }
    std::lock_guard<std::mutex> l(db->mu);
    db->last_status = s;
    if (seq > db->done_seq) db->done_seq = seq;
    if (!s.ok()) db->wal_size = -1;  // re-examine on the next poll
    if (db->rerun && !db->removed) {
      db->state = kQueued;
      pool_.Submit([this, db] { RunJob(db); });
    } else {
      db->state = kIdle;
      const int64_t interval = s.ok() ? db->opts.poll_interval_ms : std::max<int64_t>(db->opts.poll_interval_ms, 1000);
      if (interval > 0 && !db->removed && !closed_) timers_.At(NowMono() + interval * 1000, db->id, ++db->timer_seq);
    }
    db->cv.notify_all();
  }

  // The replica's last txid, so that a database without a saved position
  // (new, restored from this replica, or a lost state_dir) continues the
  // txid sequence instead of colliding with it.
  Status ResolveStart(Db& db, Position* pos) {
    std::vector<GenerationEntry> gens;
    Status s = LoadGenerations(db.store.get(), db.url.prefix, &gens);
    if (!s.ok()) return s;
    uint64_t max_txid = 0;
    if (!gens.empty()) {
      GenerationCatalog cat;
      s = ListGeneration(db.store.get(), db.url.prefix, gens.back().id, &cat);
      if (!s.ok()) return s;
      max_txid = std::max(cat.max_txid(), gens.back().first_txid);
    }
    pos->txid = std::max(pos->txid, max_txid);
    return Status::OK();
  }

  Status DoSync(Db& db, bool forced, bool snap, bool ckpt, bool trunc, bool* captured) {
    Position pos;
    int64_t last_change;
    bool resolved;
    {
      std::lock_guard<std::mutex> l(db.mu);
      pos = db.pos;
      last_change = db.last_change_ms;
      resolved = db.start_resolved;
    }
    const int64_t now = NowMs();
    // The cheap part of a poll: one stat of the WAL.
    struct stat st;
    int64_t wal_size = 0, wal_mtime = 0;
    if (::stat((db.path + "-wal").c_str(), &st) == 0) {
      wal_size = st.st_size;
      wal_mtime = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }
    const bool snapshot_due = pos.valid() && now - pos.snapshot_ms >= db.opts.snapshot_interval_ms;
    const bool quiet_due = pos.valid() && pos.frames > 0 && !pos.expect_restart &&
                           now - last_change >= db.opts.checkpoint_quiet_ms;
    if (!forced && pos.valid() && !snap && !ckpt && !snapshot_due && !quiet_due) {
      std::lock_guard<std::mutex> l(db.mu);
      if (wal_size == db.wal_size && wal_mtime == db.wal_mtime_ns) return Status::OK();
    }
    if (!pos.valid() && !resolved) {
      Status s = ResolveStart(db, &pos);
      if (!s.ok()) return s;
      std::lock_guard<std::mutex> l(db.mu);
      db.pos.txid = std::max(db.pos.txid, pos.txid);
      db.start_resolved = true;
    }
    CaptureRequest req;
    req.db_path = db.path;
    req.enable_wal = db.opts.enable_wal;
    req.zstd_level = db.opts.compression_level;
    req.now_ms = now;
    req.spool_dir = spool_dir_;
    req.new_generation = NewGenerationId(now);
    req.want_snapshot = snap || snapshot_due;
    const uint32_t ps = pos.page_size ? pos.page_size : 4096;
    const uint64_t wal_frames = wal_size > 32 ? uint64_t(wal_size - 32) / (24 + ps) : 0;
    req.truncate = trunc || wal_frames >= db.opts.truncate_pages;
    req.checkpoint = ckpt || req.truncate || wal_frames >= db.opts.checkpoint_pages || quiet_due;

    *captured = true;
    CaptureResult res;
    Status s = CaptureChanges(req, pos, &res);
    if (!s.ok()) return s;
    if (res.drift) {
      Log("database " + db.path + ": " + res.reason + "; starting a new generation");
      pos.generation.clear();
      req.want_snapshot = false;
      req.new_generation = NewGenerationId(now);
      res = CaptureResult();
      s = CaptureChanges(req, pos, &res);
      if (!s.ok()) return s;
    }
    s = Upload(db, res);
    if (!res.snapshot_path.empty()) ::unlink(res.snapshot_path.c_str());
    if (!s.ok()) return s;
    if (req.checkpoint && (res.has_segment || res.has_snapshot)) {
      // Now that the capture is durable, checkpoint it (capturing under the
      // write lock whatever was committed meanwhile; if that is not empty
      // the checkpoint waits for the next sync).
      CaptureRequest again = req;
      again.want_snapshot = false;
      CaptureResult tail;
      Status cs = CaptureChanges(again, res.pos, &tail);
      if (cs.ok() && !tail.new_generation && !tail.drift) {
        cs = Upload(db, tail);
        if (cs.ok()) {
          res.pos = tail.pos;
          res.checkpointed_frames = tail.checkpointed_frames;
          res.has_segment |= tail.has_segment;
        }
      }
      if (!tail.snapshot_path.empty()) ::unlink(tail.snapshot_path.c_str());
      if (!cs.ok()) Log("database " + db.path + ": checkpoint deferred: " + cs.ToString());
    }
    const bool changed = res.has_segment || res.has_snapshot;
    {
      std::lock_guard<std::mutex> l(db.mu);
      db.pos = res.pos;
      db.wal_size = wal_size;
      db.wal_mtime_ns = wal_mtime;
      if (changed) db.last_change_ms = now;
      if (res.checkpointed_frames >= 0) {
        db.stats.checkpoints++;
        db.last_change_ms = now;  // no quiet checkpoint right after one
      }
      db.stats.last_sync_ms = now;
      if (res.new_generation) db.stats.generations_started++;
    }
    positions_.Put(db.path, db.url_str, res.pos);
    const Labels group{{"group", db.opts.metrics_group}};
    if (res.pos.txid > pos.txid && !res.new_generation) m_.Add("replite_transactions_total", group, double(res.pos.txid - pos.txid));
    if (res.has_segment) {
      m_.Add("replite_segments_uploaded_total", group);
      m_.Add("replite_uploaded_bytes_total", group, double(res.segment.size()));
    }
    if (res.has_snapshot) m_.Add("replite_snapshots_uploaded_total", group);
    if (res.new_generation) m_.Add("replite_generations_started_total", group);
    if (res.checkpointed_frames >= 0) m_.Add("replite_checkpoints_total", group);
    if (opts_.on_durable && res.pos.txid != pos.txid) opts_.on_durable(db.path, res.pos.txid);
    if (res.has_snapshot) {
      RetentionStats rs;
      Status rst = ApplyRetention(db.store.get(), db.url.prefix, now, db.opts.retention_ms, &rs);
      if (!rst.ok()) {
        Log("database " + db.path + ": retention: " + rst.ToString());
      } else if (rs.objects_deleted > 0) {
        Log("database " + db.path + ": retention deleted " + std::to_string(rs.objects_deleted) + " objects (" +
            std::to_string(rs.generations_deleted) + " generations)");
      }
    }
    return Status::OK();
  }

  Status Upload(Db& db, const CaptureResult& res) {
    const std::string& prefix = db.url.prefix;
    ObjectStore* store = db.store.get();
    if (res.new_generation) {
      Log("database " + db.path + ": new generation " + res.pos.generation + " at txid " +
          std::to_string(res.pos.txid) + ": " + res.reason);
    }
    if (res.has_segment) {
      const auto& h = res.segment_header;
      Status s = store->Put(SegmentKey(prefix, h.generation, h.first_txid, h.last_txid), res.segment);
      if (!s.ok()) return s;
      std::lock_guard<std::mutex> l(db.mu);
      db.stats.segments_uploaded++;
      db.stats.bytes_uploaded += res.segment.size();
    }
    if (res.has_snapshot) {
      const auto& h = res.snapshot_header;
      Status s = store->PutFile(SnapshotKey(prefix, h.generation, h.first_txid), res.snapshot_path);
      if (!s.ok()) return s;
      struct stat st;
      std::lock_guard<std::mutex> l(db.mu);
      db.stats.snapshots_uploaded++;
      if (::stat(res.snapshot_path.c_str(), &st) == 0) db.stats.bytes_uploaded += uint64_t(st.st_size);
    }
    if (res.new_generation) {
      // The manifest names the generation only once its snapshot is stored.
      Manifest m;
      std::vector<GenerationEntry> gens;
      Status s = LoadGenerations(store, prefix, &gens, &m);
      if (!s.ok()) return s;
      m.generations = gens;
      m.page_size = res.snapshot_header.page_size;
      bool listed = false;
      for (const auto& g : m.generations) listed |= g.id == res.pos.generation;
      if (!listed) m.generations.push_back({res.pos.generation, res.pos.txid, res.pos.txid_ts_ms});
      s = store->Put(ManifestKey(prefix), EncodeManifest(m));
      if (!s.ok()) return s;
    }
    return Status::OK();
  }

  ReplicatorOptions opts_;
  Env* env_;
  StoreRegistry stores_;
  PositionStore positions_;
  std::string spool_dir_;
  ReplicaUrl root_url_;
  bool has_root_ = false;
  std::atomic<bool> closed_{false};
  std::mutex mu_;  // guards the registry maps
  std::map<std::string, std::shared_ptr<Db>> by_path_;
  std::unordered_map<uint64_t, std::shared_ptr<Db>> by_id_;
  uint64_t next_id_ = 0;
  replite::Metrics m_;
  ThreadPool pool_;
  TimerQueue timers_;  // last: its thread stops first
};

Status ReplicatorImpl::SqliteProbe::Check(const std::string& path, bool enable_wal) {
  SqliteConn c;
  return c.Open(path, enable_wal, 5000);
}

}  // namespace

Status Replicator::Open(const ReplicatorOptions& options, std::unique_ptr<Replicator>* out) {
  if (options.worker_threads < 1 || options.worker_threads > 256)
    return Status::InvalidArgument("worker_threads must be 1..256");
  auto r = std::make_unique<ReplicatorImpl>(options);
  Status s = r->Init();
  if (!s.ok()) return s;
  *out = std::move(r);
  return Status::OK();
}

const char* Version() { return REPLITE_VERSION; }

}  // namespace replite
