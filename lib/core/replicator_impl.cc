// ReplicatorImpl: the database registry, the per-database job state machine
// and the glue between capture (wal_capture), upload (ObjectStore) and
// positions (PositionStore).
//
// Per database: at most one job queued or running at a time (DbSlot::state);
// a request that arrives while a job runs sets `rerun`, so nothing is
// missed. Jobs run on the shared ThreadPool; polls, notify batches and
// quiet checkpoints are entries in the one TimerQueue. Slot fields are
// guarded by one of kStripes mutexes chosen by slot id (no mutex per
// database); the registry maps by a reader-writer lock.
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <random>
#include <semaphore>
#include <shared_mutex>
#include <string_view>
#include <unordered_map>

#include "core/conn_cache.h"
#include "core/db_slot.h"
#include "core/dir_watch.h"
#include "core/instance.h"
#include "core/position_store.h"
#include "core/sqlite_conn.h"
#include "core/sqlite_files.h"
#include "core/wal_capture.h"
#include "exec/thread_pool.h"
#include "exec/timer_queue.h"
#include "format/layout.h"
#include "metrics/metrics.h"
#include "replite/replite.h"
#include "replite/sys/env.h"
#include "http/http_client.h"
#include "replica/lease.h"
#include "replica/replica_ref.h"
#include "replica/replica_writer.h"
#include "replica/retention.h"
#include "replica/upload_spool.h"
#include "store/attempt_scope.h"
#include "store/counting_store.h"
#include "store/store_registry.h"
#include "util/coding.h"
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

// Reads the 100-byte database header: is it SQLite, and in WAL mode
// (file format versions 2)? Read through SQLite's VFS, not a raw descriptor,
// whose close would drop the application's locks (core/sqlite_files.h).
Status CheckDatabaseHeader(const std::string& path, bool enable_wal) {
  unsigned char h[100];
  size_t got = 0;
  Status s = ReadDatabaseHeader(path, h, &got);
  if (!s.ok()) return s;
  if (got == 0) return Status::OK();  // an empty file becomes a database on first write
  if (got < 100 || std::memcmp(h, "SQLite format 3", 16) != 0)
    return Status::Corruption("database " + path + " is not a SQLite database (bad header): check the path");
  if ((h[18] != 2 || h[19] != 2) && !enable_wal)
    return Status::FailedPrecondition("database " + path + " is not in WAL mode: run `sqlite3 " + path +
                                      " 'PRAGMA journal_mode=WAL'` or set enable_wal (CLI: -enable-wal)");
  return Status::OK();
}

constexpr uint64_t kNotifyTimer = 1ull << 63;    // timer seq bit: a Notify batch is due
constexpr uint64_t kQuietTimer = 1ull << 62;     // timer seq bit: wake up, the job decides (quiet checkpoint, retry)
constexpr uint64_t kWakeTimer = 1ull << 61;      // timer seq bit: a change wakeup (inotify) batch is due
constexpr int kStripes = 64;
constexpr int kFdsPerJob = 16;                   // upper bound of descriptors one sync job opens
constexpr int64_t kMaxPollMs = 30000;            // idle databases back off to this
constexpr int64_t kConnIdleUs = 10 * 1000 * 1000; // a kept connection is closed after this long unused
// Generation churn: a generation started within this long of the previous
// one counts as quick; from kChurnReport quick ones in a row the database is
// reported and further generations wait (kChurnFirstDelayMs doubling).
constexpr uint32_t kChurnWindowS = 600;
constexpr uint8_t kChurnReport = 2;
constexpr int64_t kChurnFirstDelayMs = 30 * 1000, kChurnMaxDelayMs = 15 * 60 * 1000;

// When a database churning generations may start the next one (0: now).
int64_t NextGenerationNotBeforeMs(uint8_t churn, uint32_t last_gen_s) {
  if (churn < kChurnReport) return 0;
  const int shift = std::min(churn - kChurnReport, 5);
  return int64_t(last_gen_s) * 1000 + std::min(kChurnMaxDelayMs, kChurnFirstDelayMs << shift);
}

struct HookCtx {
  class ReplicatorImpl* r;
  uint32_t id;
  std::string path;
};

using SlotPtr = std::shared_ptr<DbSlot>;

class ReplicatorImpl final : public Replicator {
 public:
  explicit ReplicatorImpl(const ReplicatorOptions& o)
      : opts_(o),
        env_(o.env ? o.env : Env::Default()),
        stores_(env_, MakeStoreConfig(o)),
        fd_tokens_(std::max(1, o.fd_budget / kFdsPerJob)),
        pool_(std::max(1, std::min(o.worker_threads, std::max(1, o.fd_budget / kFdsPerJob)))),
        // What the jobs may open leaves the rest of the budget to kept
        // connections of hot databases.
        conns_(size_t(std::max(0, o.fd_budget - pool_.max_threads() * kFdsPerJob) / ConnCache::kFdsPerConn), kConnIdleUs),
        timers_([this](uint64_t id, uint64_t seq) { OnTimer(id, seq); }) {
    DeclareMetrics();
  }

  ~ReplicatorImpl() override { Close(); }

  Status Init() {
    if (opts_.state_dir.empty()) opts_.state_dir = DefaultStateDir();
    Status s = MakeDirs(opts_.state_dir);
    if (!s.ok()) return s.Annotate("state_dir: ");
    s = OpenInstance(opts_.state_dir, &instance_);
    if (!s.ok()) return s;
    leases_ = std::make_unique<LeaseKeeper>(instance_.id, instance_.host, instance_.pid, opts_.lease_ttl_ms);
    spool_dir_ = opts_.state_dir + "/spool";
    s = MakeDirs(spool_dir_);
    if (!s.ok()) return s;
    RemoveDeadTemps(spool_dir_);  // staged snapshots and segments of a killed process
    auto cfg = std::make_shared<DbConfig>();
    cfg->opts = opts_.defaults;
    if (!opts_.replica_url.empty()) {
      s = ParseReplicaUrl(opts_.replica_url, &cfg->root);
      if (!s.ok()) return s;
      s = OpenStore(cfg->root, &cfg->store, &cfg->health);
      if (!s.ok()) return s;
    }
    default_cfg_ = cfg;
    s = positions_.Open(opts_.state_dir + "/positions.db");
    if (!s.ok()) return s;
    s = upload_spool_.Open(opts_.state_dir + "/upload-spool", opts_.spool_cap);
    if (!s.ok()) return s;
    if (upload_spool_.entries() > 0)
      Log("upload spool holds " + std::to_string(upload_spool_.entries()) + " segments (" +
          std::to_string(upload_spool_.bytes()) + " bytes) from an earlier run: they are uploaded first");
    timers_.At(NowMono() + opts_.position_flush_ms * 1000, 0, 0);
    leases_->Start([this](const std::string& line) { Log(line); });
    s = watch_.Start([this](const std::string& dir, const char* name) { OnDirEvent(dir, name); });
    if (!s.ok()) Log("change wakeups are off, databases are only polled: " + s.ToString());
    return Status::OK();
  }

  // One counting wrapper per distinct store (the registry shares stores by
  // identity, so 100,000 databases on one bucket share one of each).
  Status OpenStore(const ReplicaUrl& url, std::shared_ptr<ObjectStore>* out, std::shared_ptr<StoreHealth>* health) {
    std::shared_ptr<ObjectStore> raw;
    Status s = stores_.Open(url, &raw);
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> l(wrap_mu_);
    auto& w = wrapped_[raw.get()];
    if (!w.store) {
      w.store = NewCountingStore(raw, &m_);
      w.health = std::make_shared<StoreHealth>();
    }
    *out = w.store;
    *health = w.health;
    return Status::OK();
  }

  // ---- registry ---------------------------------------------------------------

  Status Add(const std::string& path) override { return AddWith(path, default_cfg_); }

  Status Add(const std::string& path, const DatabaseOptions& o) override {
    return AddWith(path, ConfigFor(o));
  }

  // Databases added with equal options share one DbConfig.
  std::shared_ptr<const DbConfig> ConfigFor(const DatabaseOptions& o) {
    char key[512];
    std::snprintf(key, sizeof key, "%d|%lld|%lld|%u|%u|%lld|%lld|%d|%lld|", o.enable_wal ? 1 : 0,
                  (long long)o.snapshot_interval_ms, (long long)o.retention_ms, o.checkpoint_pages, o.truncate_pages,
                  (long long)o.checkpoint_quiet_ms, (long long)o.poll_interval_ms, o.compression_level,
                  (long long)o.sync_interval_ms);
    std::string k = std::string(key) + o.metrics_group + "|" + o.replica_url;
    std::lock_guard<std::mutex> l(cfg_mu_);
    if (auto it = configs_.find(k); it != configs_.end())
      if (auto c = it->second.lock()) return c;
    auto cfg = std::make_shared<DbConfig>(*default_cfg_);
    cfg->opts = o;
    configs_[k] = cfg;
    return cfg;
  }

  Status AddWith(const std::string& raw_path, std::shared_ptr<const DbConfig> cfg) {
    if (closed_) return Status::Cancelled("replicator is closed");
    auto slot = std::make_shared<DbSlot>();
    slot->path = AbsolutePath(raw_path);
    const std::string& path = slot->path;
    const DatabaseOptions& o = cfg->opts;
    if (!o.replica_url.empty()) {
      auto t = std::make_unique<DbTarget>();
      Status s = ParseReplicaUrl(o.replica_url, &t->url);
      if (!s.ok()) return s;
      s = OpenStore(t->url, &t->store, &t->health);
      if (!s.ok()) return s;
      t->url_str = t->url.ToString();
      slot->target = std::move(t);
    } else if (!cfg->store) {
      return Status::InvalidArgument("database " + path +
                                     ": no replica URL (set DatabaseOptions::replica_url or ReplicatorOptions::replica_url)");
    }
    if (!slot->target) {
      // The name becomes a path segment under the root: the same rules as
      // an explicit URL's segments (no escape from the root, no empty name).
      const std::string name = ReplicaNameFor(path);
      bool bad = name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos;
      for (char c : name) bad |= static_cast<unsigned char>(c) < 0x20;
      if (bad)
        return Status::InvalidArgument("database " + path + ": its replica name '" + name +
                                       "' (the file name without .db/.sqlite/.sqlite3) is not a valid path segment "
                                       "under the replica root: rename the file or give the database its own "
                                       "replica URL");
    }
    slot->cfg = std::move(cfg);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("database " + path, errno);
    if (!S_ISREG(st.st_mode)) return Status::InvalidArgument("database " + path + " is not a regular file");
    slot->file_dev = uint64_t(st.st_dev);
    slot->file_ino = uint64_t(st.st_ino);
    const std::string url = UrlOf(*slot);
    bool found = false;
    Status s = positions_.Load(path, url, &slot->pos, &found, &slot->wal_size, &slot->wal_mtime_ns);
    if (!s.ok()) return s;
    // A saved position that expects a WAL restart is trusted: positions are
    // saved in batches and may lag the store, but before commits of the
    // epoch it expected to restart are shipped, it is saved again without
    // that expectation (ForgetExpectedRestart); commits of the restarted
    // epoch are captured the same way again by a next process.
    if (!found) {
      // New to us: check the header now for a clear error (restarts skip
      // this: a saved position means the database was fine before).
      s = CheckDatabaseHeader(path, o.enable_wal);
      if (!s.ok()) return s;
      slot->wal_size = slot->wal_mtime_ns = -1;
    }
    {
      std::unique_lock<std::shared_mutex> l(reg_mu_);
      if (by_path_.count(path)) return Status::AlreadyExists("database " + path + " is already being replicated");
      // The same file under another path (a symlink, a hard link, a bind
      // mount): one database, which two slots would capture twice.
      const uint64_t file_hash = FileHash(*slot);
      for (auto [it, end] = by_file_.equal_range(file_hash); it != end; ++it) {
        const SlotPtr& other = slots_[it->second];
        if (other && other->file_dev == slot->file_dev && other->file_ino == slot->file_ino)
          return Status::AlreadyExists("database " + path + " is the same file as " + other->path +
                                       ", which is already being replicated (a symlink or hard link to it): add it "
                                       "once, under one path");
      }
      // One database per replica (two would share one manifest and serve
      // each other's data): checked by the URL's hash, O(1) per Add.
      const uint64_t url_hash = std::hash<std::string>()(url);
      for (auto [it, end] = by_url_.equal_range(url_hash); it != end; ++it) {
        const SlotPtr& other = slots_[it->second];
        if (other && UrlOf(*other) == url)
          return Status::AlreadyExists(
              "database " + path + " would replicate to " + url + ", which database " + other->path +
              " already uses" +
              (slot->target ? std::string(" (give each database its own replica URL)")
                            : std::string(" (under one replica root the replica is named after the file name "
                                          "without .db/.sqlite/.sqlite3: rename one of them, or give it its own "
                                          "replica URL)")));
      }
      if (free_ids_.empty()) {
        slot->id = static_cast<uint32_t>(slots_.size());
        slots_.push_back(slot);
      } else {
        slot->id = free_ids_.back();
        free_ids_.pop_back();
        slots_[slot->id] = slot;
      }
      by_path_.emplace(std::string_view(slot->path), slot->id);
      by_url_.emplace(url_hash, slot->id);
      by_file_.emplace(file_hash, slot->id);
    }
    if (o.poll_interval_ms > 0) {
      // A write to the database's WAL wakes it at once (polling remains the
      // fallback, e.g. past the kernel's watch limit).
      std::string why;
      slot->watched = watch_.Watch(DirName(path), &why);
      if (!slot->watched && !watch_warned_.exchange(true))
        Log("change wakeups unavailable for " + DirName(path) + " (" + why + "): polled only");
    }
    // Segments an earlier process spooled but did not upload: they are not
    // durable yet and go to the store first.
    const SpoolBacklog backlog = upload_spool_.TakeBacklog(path, url);
    {
      std::lock_guard<std::mutex> l(Stripe(*slot));
      slot->spooled = backlog.entries;
      slot->durable_txid = backlog.entries ? std::min(slot->pos.txid, backlog.first_txid - 1) : slot->pos.txid;
    }
    if (found && backlog.entries == 0) {
      // Resume: the first poll opens nothing if the WAL is unchanged, and is
      // spread over the interval the database had backed off to (how long
      // its WAL had been idle when the position was saved tells), so that
      // 100,000 resumed databases are not all polled in the first second
      // while the recently written ones start at the base interval.
      std::lock_guard<std::mutex> l(Stripe(*slot));
      ArmPoll(*slot, Jitter(ResumedPollInterval(*slot)));
    } else {
      Kick(slot, true);  // first sync (snapshot), or a backlog to upload
    }
    return Status::OK();
  }

  Status Remove(const std::string& raw_path) override {
    SlotPtr slot = Find(AbsolutePath(raw_path));
    if (!slot) return Status::NotFound("database " + raw_path + " is not being replicated");
    {
      std::lock_guard<std::mutex> hl(hook_mu_);
      std::vector<std::pair<sqlite3*, void*>> hooks;
      {
        std::lock_guard<std::mutex> l(Stripe(*slot));
        slot->removed = true;
        slot->timer_seq = 0;  // any queued timer entry is now stale
        hooks = TakeHooks(*slot);
      }
      Unhook(hooks);
    }
    {
      std::unique_lock<std::mutex> l(Stripe(*slot));
      // Queued work is cancelled (a queued job sees `removed` and returns);
      // a running job finishes its step first.
      Cv(*slot).wait(l, [&] { return slot->state == JobState::kIdle; });
    }
    conns_.Drop(slot->id);
    bool spooled;
    {
      std::lock_guard<std::mutex> l(Stripe(*slot));
      spooled = slot->spooled > 0;
    }
    // Not durable yet: adding the database again must upload it first.
    if (spooled) upload_spool_.ReturnBacklog(slot->path, UrlOf(*slot));
    ReleaseLease(*slot);
    if (slot->watched) watch_.Unwatch(DirName(slot->path));
    {
      std::unique_lock<std::shared_mutex> l(reg_mu_);
      by_path_.erase(std::string_view(slot->path));
      for (auto [it, end] = by_url_.equal_range(std::hash<std::string>()(UrlOf(*slot))); it != end; ++it)
        if (it->second == slot->id) {
          by_url_.erase(it);
          break;
        }
      for (auto [it, end] = by_file_.equal_range(FileHash(*slot)); it != end; ++it)
        if (it->second == slot->id) {
          by_file_.erase(it);
          break;
        }
      slots_[slot->id].reset();
      free_ids_.push_back(slot->id);
    }
    return positions_.Flush();
  }

  std::vector<std::string> Databases() override {
    std::shared_lock<std::shared_mutex> l(reg_mu_);
    std::vector<std::string> v;
    for (const auto& s : slots_)
      if (s) v.push_back(s->path);
    std::sort(v.begin(), v.end());
    return v;
  }

  // ---- change notification -----------------------------------------------------

  Status Notify(const std::string& path) override {
    SlotPtr slot = Find(AbsolutePath(path));
    if (!slot) return Status::NotFound("database " + path + " is not being replicated");
    NotifySlot(*slot);
    return Status::OK();
  }

  // A commit happened: sync after the batching window (one timer entry
  // whatever the number of commits in the window). The database is no
  // longer polled.
  // A file changed in a watched directory: a commit to a database's WAL wakes
  // that database after the batching window (its job then compares the
  // WAL's stat, as a poll does). Every other file is ignored.
  void OnDirEvent(const std::string& dir, const char* name) {
    std::string db_name;
    if (!DatabaseOfWalName(name, &db_name)) return;
    SlotPtr s = Find(dir + "/" + db_name);
    if (!s) return;
    {
      std::lock_guard<std::mutex> l(Stripe(*s));
      if (s->removed || closed_ || s->notified || s->wake_pending) return;
      s->wake_pending = true;
    }
    timers_.At(NowMono() + s->cfg->opts.sync_interval_ms * 1000, s->id, kWakeTimer);
  }

  void NotifySlot(DbSlot& slot) {
    std::lock_guard<std::mutex> l(Stripe(slot));
    if (slot.removed || closed_) return;
    if (!slot.notified) {
      slot.notified = true;
      slot.timer_seq = 0;  // cancels the poll timer
    }
    if (slot.notified_at_ms == 0) slot.notified_at_ms = NowMs();
    if (slot.notify_pending) return;
    slot.notify_pending = true;
    timers_.At(NowMono() + slot.cfg->opts.sync_interval_ms * 1000, slot.id, kNotifyTimer);
  }

  static int WalHook(void* arg, sqlite3*, const char* name, int) {
    auto* ctx = static_cast<HookCtx*>(arg);
    if (name && std::strcmp(name, "main") == 0) ctx->r->NotifyById(ctx->id, ctx->path);
    return SQLITE_OK;
  }

  void NotifyById(uint32_t id, const std::string& path) {
    SlotPtr slot = ById(id);
    if (slot && slot->path == path) NotifySlot(*slot);
  }

  Status Attach(const std::string& path, sqlite3* conn) override {
    if (!conn) return Status::InvalidArgument("Attach: connection is null");
    SlotPtr slot = Find(AbsolutePath(path));
    if (!slot) return Status::NotFound("database " + path + " is not being replicated (Add it before Attach)");
    const char* file = sqlite3_db_filename(conn, "main");
    if (!file || AbsolutePath(file) != slot->path)
      return Status::InvalidArgument("Attach: the connection is to " + std::string(file ? file : "?") + ", not " +
                                     slot->path);
    // hook_mu_ serializes hook changes (Attach against Remove/Close/Detach of
    // the same database); it is never taken by the hook itself.
    std::lock_guard<std::mutex> hl(hook_mu_);
    auto* ctx = new HookCtx{this, slot->id, slot->path};
    {
      std::lock_guard<std::mutex> l(Stripe(*slot));
      if (slot->removed) {
        delete ctx;
        return Status::NotFound("database " + path + " was removed");
      }
      if (!slot->extra) slot->extra = std::make_unique<DbExtra>();
      for (const auto& h : slot->extra->hooks)
        if (h.first == conn) {
          delete ctx;
          return Status::AlreadyExists("Attach: connection already attached to " + slot->path);
        }
      slot->extra->hooks.push_back({conn, ctx});
      slot->notified = true;
      slot->timer_seq = 0;
    }
    // Outside the stripe lock: sqlite3_wal_hook takes the connection's
    // mutex, and a commit holding that mutex calls WalHook, which takes the
    // stripe lock (lock order: connection, then stripe). It replaces
    // SQLite's autocheckpoint hook on this connection: the library owns
    // checkpointing of this database from now on.
    sqlite3_wal_hook(conn, &ReplicatorImpl::WalHook, ctx);
    return Status::OK();
  }

  Status Detach(const std::string& path, sqlite3* conn) override {
    SlotPtr slot = Find(AbsolutePath(path));
    if (!slot) return Status::NotFound("database " + path + " is not being replicated");
    std::lock_guard<std::mutex> hl(hook_mu_);
    void* ctx = nullptr;
    {
      std::lock_guard<std::mutex> l(Stripe(*slot));
      auto* hooks = slot->extra ? &slot->extra->hooks : nullptr;
      for (size_t i = 0; hooks && i < hooks->size() && !ctx; i++) {
        if ((*hooks)[i].first != conn) continue;
        ctx = (*hooks)[i].second;
        hooks->erase(hooks->begin() + i);
      }
    }
    if (!ctx) return Status::NotFound("Detach: connection is not attached to " + slot->path);
    Unhook({{conn, ctx}});
    return Status::OK();
  }

  // Takes the hooks out of a slot (caller holds its stripe lock); Unhook
  // them after releasing it (see Attach for the lock order).
  static std::vector<std::pair<sqlite3*, void*>> TakeHooks(DbSlot& slot) {
    std::vector<std::pair<sqlite3*, void*>> v;
    if (slot.extra) v.swap(slot.extra->hooks);
    return v;
  }
  static void Unhook(const std::vector<std::pair<sqlite3*, void*>>& hooks) {
    for (const auto& h : hooks) {
      sqlite3_wal_hook(h.first, nullptr, nullptr);  // waits for a commit in progress on it
      delete static_cast<HookCtx*>(h.second);
    }
  }

  // ---- requests that wait --------------------------------------------------------

  Status Sync(const std::string& path, uint64_t* durable_txid) override {
    return Request(path, false, false, false, durable_txid, -1, false);
  }
  Status WaitDurable(const std::string& path, int64_t timeout_ms, uint64_t* durable_txid) override {
    return Request(path, false, false, false, durable_txid, timeout_ms, true);
  }
  Status Snapshot(const std::string& path) override { return Request(path, true, false, false, nullptr, -1, false); }
  Status Checkpoint(const std::string& path, bool truncate) override {
    return Request(path, false, true, truncate, nullptr, -1, false);
  }

  Status Request(const std::string& path, bool snapshot, bool checkpoint, bool truncate, uint64_t* durable,
                 int64_t timeout_ms, bool through_errors) {
    if (closed_) return Status::Cancelled("replicator is closed");
    SlotPtr slot = Find(AbsolutePath(path));
    if (!slot) return Status::NotFound("database " + path + " is not being replicated");
    uint32_t seq;
    {
      std::lock_guard<std::mutex> l(Stripe(*slot));
      seq = ++slot->req_seq;
      // Sync/Snapshot/Checkpoint: the application wants it now, so try the
      // store even during its backoff. WaitDurable waits for the retries.
      if (!through_errors) slot->want_probe = true;
      slot->want_snapshot |= snapshot;
      slot->want_checkpoint |= checkpoint;
      slot->want_truncate |= truncate;
    }
    Kick(slot, false);
    std::unique_lock<std::mutex> l(Stripe(*slot));
    // Sync returns after one job, with its error if it failed. WaitDurable
    // keeps waiting through failed attempts (the job retries on its own,
    // and spooled segments drain once the store answers) until a job
    // succeeds or the deadline passes.
    auto reached = [&] { return int32_t(slot->done_seq - seq) >= 0 && (!through_errors || !slot->has_error); };
    // Close releases every waiter once its last jobs ended (stopped_).
    auto done = [&] { return reached() || slot->removed || stopped_; };
    if (timeout_ms < 0) {
      Cv(*slot).wait(l, done);
    } else if (!Cv(*slot).wait_for(l, std::chrono::milliseconds(timeout_ms), done)) {
      if (durable) *durable = slot->durable_txid;
      return Status::Timeout("database " + slot->path + ": not durable after " + std::to_string(timeout_ms) +
                             " ms (durable txid " + std::to_string(slot->durable_txid) +
                             (slot->has_error ? "; last error: " + slot->extra->last_error : "") + ")");
    }
    if (slot->removed && int32_t(slot->done_seq - seq) < 0) return Status::Cancelled("database " + path + " was removed");
    if (!reached() && !slot->removed && stopped_) {
      if (durable) *durable = slot->durable_txid;
      return Status::Cancelled("database " + slot->path + ": the replicator was closed before this was durable (durable txid " +
                               std::to_string(slot->durable_txid) +
                               (slot->has_error ? "; last error: " + slot->extra->last_error : "") + ")");
    }
    if (durable) *durable = slot->durable_txid;
    if (slot->has_error) return Status(last_code_of(*slot), slot->extra->last_error);
    return Status::OK();
  }

  // ---- status and metrics ----------------------------------------------------------

  Status GetStatus(const std::string& path, DatabaseStatus* out) override {
    SlotPtr slot = Find(AbsolutePath(path));
    if (!slot) return Status::NotFound("database " + path + " is not being replicated");
    StatusOf(*slot, out);
    return Status::OK();
  }

  void StatusOf(DbSlot& s, DatabaseStatus* out) {
    std::lock_guard<std::mutex> l(Stripe(s));
    *out = DatabaseStatus();
    out->path = s.path;
    out->replica_url = UrlOf(s);
    out->generation = s.pos.generation();
    out->durable_txid = s.durable_txid;
    out->local_txid = s.pos.txid;
    out->spooled_segments = s.spooled;
    out->durable_ts_ms = s.durable_txid == s.pos.txid ? s.pos.txid_ts_ms : 0;
    out->page_size = s.pos.page_size;
    out->db_pages = s.pos.db_pages;
    out->wal_frames = s.pos.frames;
    out->last_sync_ms = s.last_sync_ms;
    out->generations_started = s.generations;
    out->generation_churn = s.gen_churn;
    out->next_generation_not_before_ms = NextGenerationNotBeforeMs(s.gen_churn, s.last_gen_s);
    out->segments_uploaded = s.segments;
    out->snapshots_uploaded = s.snapshots;
    out->bytes_uploaded = s.bytes;
    out->checkpoints = s.checkpoints;
    out->metrics_group = s.cfg->opts.metrics_group;
    out->notified = s.notified;
    out->pending_since_ms = s.notified_at_ms;
    if (s.has_error) out->last_error = s.extra->last_error;
  }

  ReplicatorStatus GetSummary(size_t top_n) override {
    ReplicatorStatus out;
    std::vector<SlotPtr> all = AllSlots();
    out.databases = all.size();
    out.jobs_queued = pool_.queued();
    out.worker_threads = pool_.max_threads();
    out.worker_threads_live = pool_.live_threads();
    // Rank by how long a commit has been waiting (notified) or since the
    // last successful sync; keep only top_n full statuses.
    const int64_t now = NowMs();
    std::vector<std::pair<int64_t, DbSlot*>> lag;
    for (const auto& s : all) {
      std::lock_guard<std::mutex> l(Stripe(*s));
      if (s->has_error) out.with_errors++;
      if (s->gen_churn >= kChurnReport) out.with_generation_churn++;
      int64_t v = s->notified_at_ms ? now - s->notified_at_ms : 0;
      if (s->has_error) v += int64_t(1) << 40;  // errors first
      lag.push_back({v, s.get()});
    }
    std::sort(lag.begin(), lag.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t i = 0; i < lag.size() && i < top_n; i++) {
      DatabaseStatus st;
      StatusOf(*lag[i].second, &st);
      out.laggards.push_back(std::move(st));
    }
    return out;
  }

  std::string Metrics() override {
    {
      std::shared_lock<std::shared_mutex> l(reg_mu_);
      m_.Set("replite_databases", {}, double(by_path_.size()));
    }
    m_.Set("replite_jobs_queued", {}, double(pool_.queued()));
    m_.Set("replite_worker_threads", {}, double(pool_.live_threads()));
    m_.Set("replite_worker_threads_peak", {}, double(pool_.peak_threads()));
    m_.Set("replite_timers_armed", {}, double(timers_.size()));
    m_.Set("replite_spool_bytes", {}, double(upload_spool_.bytes()));
    m_.Set("replite_connections_kept", {}, double(conns_.size()));
    m_.Set("replite_spool_segments", {}, double(upload_spool_.entries()));
    if (HttpClient* h = stores_.http()) {
      HttpStats hs = h->Stats();
      m_.Set("replite_http_requests", {}, double(hs.requests));
      m_.Set("replite_http_connections_opened", {}, double(hs.new_connections));
      m_.Set("replite_http_in_flight", {}, double(hs.in_flight));
      m_.Set("replite_http_bytes_sent", {}, double(hs.bytes_sent));
    }
    return m_.Render();
  }

  // ---- close -------------------------------------------------------------------------

  Status Close() override {
    if (closed_.exchange(true)) return Status::OK();
    std::vector<SlotPtr> all = AllSlots();
    // Final capture of everything committed so far.
    std::vector<std::pair<SlotPtr, uint32_t>> waits;
    for (auto& s : all) {
      uint32_t seq;
      {
        std::lock_guard<std::mutex> l(Stripe(*s));
        seq = ++s->req_seq;
        s->timer_seq = 0;
      }
      Kick(s, false);
      waits.push_back({s, seq});
    }
    Status first;
    for (auto& [s, seq] : waits) {
      {
        std::unique_lock<std::mutex> l(Stripe(*s));
        Cv(*s).wait(l, [&] { return int32_t(s->done_seq - seq) >= 0 || s->removed; });
        if (s->has_error && first.ok()) first = Status(last_code_of(*s), "close: " + s->extra->last_error);
      }
      std::lock_guard<std::mutex> hl(hook_mu_);
      std::vector<std::pair<sqlite3*, void*>> hooks;
      {
        std::lock_guard<std::mutex> l(Stripe(*s));
        hooks = TakeHooks(*s);
      }
      Unhook(hooks);
    }
    watch_.Stop();
    timers_.Stop();
    pool_.Drain();
    // Successors may take the replicas over at once.
    if (leases_) leases_->Stop();
    // No job runs any more: release the threads still waiting in Sync or
    // WaitDurable (those whose transactions the final capture made durable
    // return OK, the others kCancelled).
    stopped_ = true;
    for (int i = 0; i < kStripes; i++) {
      std::lock_guard<std::mutex> l(stripes_[i]);
      cvs_[i].notify_all();
    }
    conns_.Clear();
    Status st = positions_.Flush();
    instance_.lock.Reset();  // the state dir is free for another Replicator
    return first.ok() ? st : first;
  }

 private:
  static StoreConfig MakeStoreConfig(const ReplicatorOptions& o) {
    StoreConfig c;
    c.max_connections = o.max_connections;
    c.max_connections_per_host = o.max_connections_per_host;
    c.ca_file = o.ca_file;
    c.verify_tls = o.verify_tls;
    return c;
  }

  void DeclareMetrics() {
    m_.Gauge("replite_databases", "Databases being replicated.");
    m_.Gauge("replite_jobs_queued", "Jobs waiting for a worker.");
    m_.Gauge("replite_worker_threads", "Shared worker threads running now (started on demand up to worker_threads).");
    m_.Gauge("replite_worker_threads_peak", "The most shared worker threads that ran at once.");
    m_.Gauge("replite_timers_armed", "Timer entries (polls, notify batches) waiting.");
    m_.Gauge("replite_connections_kept", "SQLite connections of hot databases kept open between syncs.");
    m_.Gauge("replite_spool_bytes", "Bytes of captured segments waiting in the local upload spool.");
    m_.Gauge("replite_spool_segments", "Captured segments waiting in the local upload spool.");
    m_.Gauge("replite_http_requests", "HTTP exchanges finished by the shared pool since start.");
    m_.Gauge("replite_http_connections_opened", "TCP connections opened by the shared pool since start.");
    m_.Gauge("replite_http_in_flight", "HTTP requests in flight.");
    m_.Gauge("replite_http_bytes_sent", "Bytes sent by the shared HTTP pool since start.");
    DeclareStoreMetrics(&m_);
    m_.Counter("replite_polls_total", "Polls (one stat of the WAL) by outcome.");
    m_.Counter("replite_syncs_total", "Sync jobs that captured or checked a database, by result.");
    m_.Counter("replite_transactions_total", "Transactions captured and made durable.");
    m_.Counter("replite_segments_uploaded_total", "Segments written to the store.");
    m_.Counter("replite_snapshots_uploaded_total", "Snapshots written to the store.");
    m_.Counter("replite_uploaded_bytes_total", "Bytes of segments and snapshots written to the store.");
    m_.Counter("replite_generations_started_total", "New generations (each one logged with its reason).");
    m_.Counter("replite_generation_churn_total",
               "Databases reported for starting generations in quick succession (each within 10 minutes of the "
               "previous one; see the log line for the cause and the fix).");
    m_.Counter("replite_epoch_checksums_total",
               "WAL epochs replite did not see start, checked by reading the whole database under the write lock, by "
               "result (adopted, or mismatch: a new generation follows).");
    m_.Counter("replite_checkpoints_total", "Checkpoints run by the library.");
    m_.Counter("replite_segments_spooled_total", "Segments written to the local spool because the store failed.");
    m_.Counter("replite_spool_full_total", "Captures paused because the spool was full (changes wait in the WAL).");
    m_.Histogram("replite_sync_duration_seconds", "Duration of sync jobs that captured something.",
                 {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
    m_.Histogram("replite_commit_to_durable_seconds", "From Notify/WAL hook to the commit being durable.",
                 {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  }

  int64_t NowMs() { return env_->NowMicros() / 1000; }
  static int64_t NowMono() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  static int64_t Jitter(int64_t interval_ms) {
    thread_local std::mt19937_64 rng(std::random_device{}());
    return interval_ms <= 0 ? 0 : int64_t(rng() % uint64_t(interval_ms)) + 1;
  }

  std::mutex& Stripe(const DbSlot& s) { return stripes_[s.id % kStripes]; }
  std::condition_variable& Cv(const DbSlot& s) { return cvs_[s.id % kStripes]; }

  static Code last_code_of(const DbSlot& s) { return s.extra ? s.extra->last_code : Code::kInternal; }

  static uint64_t FileHash(const DbSlot& s) { return s.file_ino * 0x9e3779b97f4a7c15ull ^ s.file_dev; }
  // Where a database's replica lives. The prefix and URL of a database
  // under the replica root are built from its path: a job resolves them
  // once (DoSync) and passes the ReplicaRef down.
  ReplicaRef RefOf(const DbSlot& s) const {
    if (s.target) return {s.target->store.get(), s.target->health.get(), s.target->url.prefix, s.target->url_str};
    const ReplicaUrl url = s.cfg->root.Child(ReplicaNameFor(s.path));
    return {s.cfg->store.get(), s.cfg->health.get(), url.prefix, url.ToString()};
  }
  std::string UrlOf(const DbSlot& s) const { return RefOf(s).url; }
  // The store's circuit breaker alone (no string built: an idle poll needs only this).
  StoreHealth& HealthOf(const DbSlot& s) const { return s.target ? *s.target->health : *s.cfg->health; }

  SlotPtr Find(const std::string& path) {
    std::shared_lock<std::shared_mutex> l(reg_mu_);
    auto it = by_path_.find(std::string_view(path));
    return it == by_path_.end() ? nullptr : slots_[it->second];
  }
  SlotPtr ById(uint32_t id) {
    std::shared_lock<std::shared_mutex> l(reg_mu_);
    return id < slots_.size() ? slots_[id] : nullptr;
  }
  std::vector<SlotPtr> AllSlots() {
    std::shared_lock<std::shared_mutex> l(reg_mu_);
    std::vector<SlotPtr> v;
    v.reserve(by_path_.size());
    for (const auto& s : slots_)
      if (s) v.push_back(s);
    return v;
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

  // ---- scheduling ---------------------------------------------------------------------

  // Arms the poll timer `delay_ms` from now (caller holds the stripe).
  // The first poll interval of a resumed database (sets its back-off).
  static int64_t ResumedPollInterval(DbSlot& s) {
    const int64_t base = s.cfg->opts.poll_interval_ms;
    if (base <= 0 || s.wal_mtime_ns <= 0) return base;
    // File times are wall-clock times: compare with the real clock, not
    // the Env's (which tests may set anywhere).
    timespec now;
    ::clock_gettime(CLOCK_REALTIME, &now);
    const int64_t idle_ms = (int64_t(now.tv_sec) * 1000000000 + now.tv_nsec - s.wal_mtime_ns) / 1000000;
    while ((base << s.poll_shift) < kMaxPollMs && (base << s.poll_shift) * 4 <= idle_ms) s.poll_shift++;
    return std::min<int64_t>(base << s.poll_shift, kMaxPollMs);
  }

  void ArmPoll(DbSlot& s, int64_t delay_ms) {
    if (s.removed || closed_ || s.notified || s.cfg->opts.poll_interval_ms <= 0) return;
    s.timer_seq = next_timer_seq_.fetch_add(1) & ~(kNotifyTimer | kQuietTimer | kWakeTimer);
    timers_.At(NowMono() + delay_ms * 1000, s.id, s.timer_seq);
  }

  // Queues a job unless one is queued; a running job reruns afterwards.
  void Kick(const SlotPtr& s, bool bump) {
    std::lock_guard<std::mutex> l(Stripe(*s));
    if (bump) s->req_seq++;
    if (s->removed) return;
    if (s->state == JobState::kIdle) {
      s->state = JobState::kQueued;
      pool_.Submit([this, s] { RunJob(s); });
    } else if (s->state == JobState::kRunning) {
      s->rerun = true;
    }
  }

  void OnTimer(uint64_t id, uint64_t seq) {
    if (id == 0 && seq == 0) {  // housekeeping: position flush, idle connections
      // On the pool, not here: the timer thread must keep dispatching
      // notify batches while SQLite writes and syncs the positions.
      if (closed_) return;
      pool_.Submit([this] {
        Status st = positions_.Flush();
        if (!st.ok()) Log("saving positions failed: " + st.ToString());
        conns_.Sweep(NowMono());
      });
      timers_.At(NowMono() + opts_.position_flush_ms * 1000, 0, 0);
      return;
    }
    SlotPtr s = ById(static_cast<uint32_t>(id));
    if (!s) return;
    bool bump = false;
    {
      std::lock_guard<std::mutex> l(Stripe(*s));
      if (seq == kNotifyTimer) {
        if (!s->notify_pending) return;
        s->notify_pending = false;
        bump = true;  // a commit happened: sync for sure
      } else if (seq == kWakeTimer) {
        if (!s->wake_pending) return;
        s->wake_pending = false;  // the job compares the WAL's stat, as a poll does
      } else if (seq == kQuietTimer) {
        // fall through: the job decides whether a quiet checkpoint is due
      } else if (s->timer_seq != seq) {
        return;  // cancelled or re-armed
      }
    }
    m_.Add("replite_polls_total",
           {{"outcome", seq == kNotifyTimer ? "notified" : seq == kWakeTimer ? "wakeup" : "timer"}});
    Kick(s, bump);
  }

  void RunJob(SlotPtr s) {
    uint32_t seq;
    bool snap, ckpt, trunc, forced, probe;
    int64_t notified_at;
    {
      std::lock_guard<std::mutex> l(Stripe(*s));
      if (s->removed) {  // cancelled while queued
        s->state = JobState::kIdle;
        Cv(*s).notify_all();
        return;
      }
      s->state = JobState::kRunning;
      s->rerun = false;
      seq = s->req_seq;
      // Close's final round is not forced: a database whose WAL did not
      // change since its last capture is not opened (100,000 idle ones
      // must not each be opened at shutdown).
      forced = seq != s->done_seq && !closed_;
      snap = s->want_snapshot;
      ckpt = s->want_checkpoint;
      trunc = s->want_truncate;
      probe = s->want_probe;
      s->want_snapshot = s->want_checkpoint = s->want_truncate = s->want_probe = false;
      notified_at = s->notified_at_ms;
      s->notified_at_ms = 0;
    }
    const Labels group{{"group", s->cfg->opts.metrics_group}};
    const int64_t t0 = NowMono();
    bool captured = false, changed = false;
    int64_t durable_ms = 0;
    Status st;
    {
      // Descriptor budget: a job opens at most kFdsPerJob files.
      fd_tokens_.acquire();
      ScopedMetricsGroup scope(&s->cfg->opts.metrics_group);
      st = DoSync(*s, SyncRequest{forced, snap, ckpt, trunc, probe}, &captured, &changed, &durable_ms);
      fd_tokens_.release();
    }
    if (captured) {
      m_.Observe("replite_sync_duration_seconds", group, double(NowMono() - t0) / 1e6);
      m_.Add("replite_syncs_total", {{"group", s->cfg->opts.metrics_group}, {"result", st.ok() ? "ok" : "error"}});
    }
    if (st.ok() && notified_at != 0)
      m_.Observe("replite_commit_to_durable_seconds", group,
                 double((durable_ms != 0 ? durable_ms : NowMs()) - notified_at) / 1e3);
    if (!st.ok()) Log("database " + s->path + ": " + st.ToString());

    std::lock_guard<std::mutex> l(Stripe(*s));
    if (!st.ok()) {
      if (!s->extra) s->extra = std::make_unique<DbExtra>();
      s->extra->last_error = st.ToString();
      s->extra->last_code = st.code();
      s->has_error = true;
      s->wal_size = -1;  // re-examine on the next poll
      s->want_snapshot |= snap;
      s->want_checkpoint |= ckpt;
      s->want_truncate |= trunc;
      if (notified_at != 0 && s->notified_at_ms == 0) s->notified_at_ms = notified_at;
    } else {
      s->has_error = false;
    }
    if (int32_t(seq - s->done_seq) > 0) s->done_seq = seq;
    // Adaptive polling: back to the base interval after a change, doubling
    // up to kMaxPollMs while nothing happens. A database that changed in
    // the last few intervals stays at the base (one poll that finds nothing
    // between two commits does not halve the rate of a hot database).
    const int64_t base = s->cfg->opts.poll_interval_ms;
    if (changed || !st.ok()) {
      s->poll_shift = 0;
    } else if (base > 0 && (base << s->poll_shift) < kMaxPollMs && NowMs() - s->last_change_ms > 3 * base) {
      s->poll_shift++;
    }
    if (s->rerun && !s->removed) {
      s->state = JobState::kQueued;
      pool_.Submit([this, s] { RunJob(s); });
    } else {
      s->state = JobState::kIdle;
      // After a failure, retry when the store's backoff ends (at least 1 s,
      // spread): also notified databases, which are not polled, must get
      // their spooled or uncaptured changes to the store without a new commit.
      const int64_t retry_ms =
          st.ok() ? 0 : std::max<int64_t>(1000, (HealthOf(*s).retry_at_us() - NowMono()) / 1000) + Jitter(500);
      if (base > 0 && !s->notified) {
        int64_t next = std::min<int64_t>(base << s->poll_shift, kMaxPollMs);
        ArmPoll(*s, std::max(next, retry_ms));
      } else if (!st.ok() && !closed_ && !s->removed) {
        timers_.At(NowMono() + retry_ms * 1000, s->id, kQuietTimer);
      }
      // A notified database is not polled, but its WAL still needs the
      // quiet checkpoint once writes stop.
      if (s->notified && st.ok() && s->pos.frames > 0 && !s->pos.expect_restart && !closed_ && !s->removed)
        timers_.At(NowMono() + (s->cfg->opts.checkpoint_quiet_ms + 100) * 1000, s->id, kQuietTimer);
    }
    Cv(*s).notify_all();
  }

  // The replica's last txid, so that a new generation continues the txid
  // sequence instead of colliding with it: after a crash the saved position
  // may lag what was uploaded (and reported durable), and a generation whose
  // manifest write was interrupted is only found by listing. One LIST of
  // the replica's generations, done only when a generation is about to
  // start (never for an idle database or a plain restart).
  Status ResolveTxidFloor(DbSlot& s, const ReplicaRef& ref, uint64_t* floor) {
    uint64_t max_txid = 0;
    Status st = ReplicaWriter(ref).LastStoredTxid(&max_txid);
    if (!st.ok()) return st;
    // Spooled segments are on their way to the store (after a crash they
    // may even be ahead of the saved position).
    std::vector<SpoolEntry> spooled;
    st = upload_spool_.List(s.path, ref.url, &spooled);
    if (!st.ok()) return st;
    for (const auto& e : spooled) max_txid = std::max(max_txid, e.last_txid);
    *floor = max_txid;
    return Status::OK();
  }

  // What a job was asked to do.
  struct SyncRequest {
    bool forced = false;    // a request or a commit: capture even if the WAL stat did not change
    bool snap = false, ckpt = false, trunc = false;
    bool probe = false;     // the application waits: try the store even during its backoff
  };

  Status DoSync(DbSlot& s, const SyncRequest& sr, bool* captured, bool* changed, int64_t* durable_ms) {
    const bool forced = sr.forced, snap = sr.snap, ckpt = sr.ckpt, trunc = sr.trunc;
    uint8_t churn = 0;
    Position pos;
    int64_t last_change, cached_size, cached_mtime;
    uint32_t spooled;
    bool had_error, pos_checked;
    {
      std::lock_guard<std::mutex> l(Stripe(s));
      pos = s.pos;
      pos_checked = s.pos_checked;
      last_change = s.last_change_ms;
      cached_size = s.wal_size;
      cached_mtime = s.wal_mtime_ns;
      spooled = s.spooled;
      had_error = s.has_error;
    }
    const DatabaseOptions& o = s.cfg->opts;
    StoreHealth& health = HealthOf(s);
    const int64_t now = NowMs();
    // A churning database whose next generation must wait (its generation
    // was abandoned below): nothing to do before then, unless the
    // application asks (Sync) or the Replicator closes.
    if (!pos.valid() && pos.txid > 0 && !sr.probe && !closed_) {
      Status d = GenerationDeferred(s, now);
      if (!d.ok()) return d;
    }
    // The cheap part of a poll: one stat of the WAL (taken before capture,
    // so a commit racing the capture shows up as a change next time).
    struct stat st;
    int64_t wal_size = 0, wal_mtime = 0;
    if (::stat((s.path + "-wal").c_str(), &st) == 0) {
      wal_size = st.st_size;
      wal_mtime = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    } else if (::stat(s.path.c_str(), &st) == 0) {
      // No WAL: a writer may have checkpointed and deleted it; the
      // database file tells (a second stat only in that case).
      wal_size = -1 - st.st_size;
      wal_mtime = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }
    // Snapshots only for databases that changed since the last one (an
    // idle database makes no store requests at all), and not while the
    // store fails (a snapshot is not spooled).
    const bool snapshot_due = pos.valid() && pos.txid > pos.snapshot_txid &&
                              now - pos.snapshot_ms >= o.snapshot_interval_ms && spooled == 0 && !health.down();
    // Quiet: nothing captured for a while and the WAL unchanged since the
    // last look (a database just written to is not quiet, also not on its
    // first sync after a restart, when last_change is still 0).
    const bool wal_unchanged = wal_size == cached_size && wal_mtime == cached_mtime;
    const bool quiet_due = pos.valid() && pos.frames > 0 && !pos.expect_restart && wal_unchanged &&
                           now - last_change >= o.checkpoint_quiet_ms;
    const bool nothing_new =
        !forced && pos.valid() && !snap && !ckpt && !trunc && !snapshot_due && !quiet_due && wal_unchanged;
    if (nothing_new && spooled == 0) {
      m_.Add("replite_polls_total", {{"outcome", "unchanged"}});
      return Status::OK();
    }
    // Work to do: where the replica lives, resolved once for this job.
    const ReplicaRef ref = RefOf(s);
    // The replica's lease: held by another live instance, nothing is
    // captured (its status names the holder). A failing store only delays
    // the check: capture spools as in any outage, and nothing reaches the
    // store before the lease is confirmed (Upload, DrainSpool).
    if (!health.down() || sr.probe) {
      Status ls = EnsureLease(s, ref);
      if (!ls.ok() && !ls.retryable()) return ls;
      if (!ls.ok()) health.Failure(NowMono());
    }
    if (TakeOverPending(s)) {
      // What the previous holder wrote may be ahead of our position, and
      // our spooled segments may collide with it: drop them (never
      // durable; the new generation's snapshot holds their changes) and
      // start a new generation above the replica's last txid.
      Status ds = DropSpooled(s, ref);
      if (!ds.ok()) return ds;
      spooled = 0;
      pos.gen = 0;
      pos_checked = false;
    }
    // The backlog goes first: segments reach the store in txid order.
    Status store_err;
    if (spooled > 0) {
      store_err = DrainSpool(s, ref, sr.probe);
      if (nothing_new) return store_err;
    }
    *captured = true;
    CaptureRequest req;
    req.db_path = s.path;
    req.enable_wal = o.enable_wal;
    req.zstd_level = o.compression_level;
    req.now_ms = now;
    req.spool_dir = spool_dir_;
    // Memory cap: each concurrent job keeps at most its share in memory.
    req.memory_limit_bytes = std::max<uint64_t>(1 << 20, opts_.memory_cap / uint64_t(pool_.max_threads()));
    req.new_generation = NewGenerationNumber(now);
    req.want_snapshot = snap || snapshot_due;
    req.verify_snapshot_max_bytes = opts_.snapshot_verify_max_bytes;
    const uint32_t ps = pos.page_size ? pos.page_size : 4096;
    // The WAL file keeps its size after a checkpoint (writers restart it
    // from the top), so its size decides TRUNCATE, while PASSIVE is decided
    // by the frames of the current epoch: those captured so far (checked
    // again after this capture, below).
    const uint64_t file_frames = wal_size > 32 ? uint64_t(wal_size - 32) / (24 + ps) : 0;  // (< 0: no WAL)
    const uint64_t epoch_frames = pos.expect_restart ? 0 : pos.frames;
    req.truncate = trunc || file_frames >= o.truncate_pages;
    req.checkpoint = ckpt || req.truncate || epoch_frames >= o.checkpoint_pages || quiet_due;
    // Frames are checkpointed only once they are durable or spooled. With
    // the store failing and the spool full nothing new can be, so do not
    // take the application's write lock for it.
    const bool may_checkpoint =
        !(had_error && health.down() && upload_spool_.bytes() >= upload_spool_.cap() && !ckpt && !trunc);
    if (!may_checkpoint) req.checkpoint = req.truncate = false;

    // A hot database's connection is kept between syncs; it goes back to
    // the cache unless a capture failed (then it is closed and reopened).
    std::unique_ptr<KeptDb> conn = conns_.Take(s.id, s.path);
    req.conn = &conn->conn;
    req.frame_index = &conn->frames;
    req.pin = &conn->pin;
    struct KeepConn {
      ReplicatorImpl* r;
      DbSlot& s;
      std::unique_ptr<KeptDb>& conn;
      ~KeepConn() {
        if (conn) r->conns_.Put(s.id, s.path, std::move(conn), NowMono());
      }
    } keep{this, s, conn};

    CaptureResult res;
    // One capture attempt from `pos` (a failed one closes the kept
    // connection: it is reopened next time).
    auto capture = [&]() -> Status {
      res = CaptureResult();
      Status st = CaptureChanges(req, pos, &res);
      CountEpochChecksum(s, res);
      if (!st.ok()) conn.reset();
      return st;
    };
    req.allow_new_generation = false;
    req.may_adopt_epoch = pos_checked;
    Status cs = capture();
    if (!cs.ok()) return cs;
    if (res.needs_store_check) {
      // An unknown epoch after a restart: adopt it only if the store's last
      // txid is the position's, else continue after the store in a new
      // generation (one LIST, only on this rare path).
      uint64_t floor = 0;
      cs = ResolveTxidFloor(s, ref, &floor);
      if (!cs.ok()) return cs;
      if (floor <= pos.txid) {
        pos_checked = req.may_adopt_epoch = true;
      } else {
        Log("database " + s.path + ": the saved position (txid " + std::to_string(pos.txid) +
            ") lags the replica (txid " + std::to_string(floor) + "): a crash after uploads it had not saved");
        pos.txid = floor;
        req.allow_new_generation = true;
        req.new_generation = NewGenerationNumber(now);
      }
      cs = capture();
      if (!cs.ok()) return cs;
    }
    if (res.drift) {
      Log("database " + s.path + ": " + res.reason + "; starting a new generation");
      pos.gen = 0;
      req.want_snapshot = false;
      res.needs_new_generation = true;
    }
    if (res.needs_new_generation) {
      if (!sr.probe && !closed_) {
        Status d = GenerationDeferred(s, now);
        if (!d.ok()) {
          // Abandoned until then: later syncs return at once (above).
          std::lock_guard<std::mutex> l(Stripe(s));
          s.pos.gen = 0;
          return d;
        }
      }
      // Continue after the replica's last txid, then capture again (the
      // situation may have changed meanwhile; the decision is redone).
      uint64_t floor = 0;
      cs = ResolveTxidFloor(s, ref, &floor);
      if (!cs.ok()) return cs;
      pos.txid = std::max(pos.txid, floor);
      req.allow_new_generation = true;
      req.new_generation = NewGenerationNumber(now);
      cs = capture();
      if (!cs.ok()) return cs;
    }
    // Commits appended to the epoch we expected to restart (see
    // ForgetExpectedRestart); those of the restarted epoch are safe.
    if (pos.expect_restart && res.has_segment && !res.new_generation && res.pos.has_wal &&
        res.pos.salt1 == pos.salt1 && res.pos.salt2 == pos.salt2) {
      cs = ForgetExpectedRestart(s, ref, pos, cached_size, cached_mtime);
      if (!cs.ok()) {
        CleanupCapture(res);
        return cs;
      }
    }
    cs = Ship(s, ref, sr.probe, res, &store_err);
    CleanupCapture(res);
    if (!cs.ok()) return cs;
    // Durable now: the application learns it before the checkpoint below
    // (which may wait for SQLite's fsyncs) runs.
    PublishDurable(s, res.pos.txid, durable_ms);
    const bool epoch_full = may_checkpoint && !res.pos.expect_restart && res.wal_frames >= o.checkpoint_pages;
    if ((req.checkpoint && (res.has_segment || res.has_snapshot)) || (epoch_full && !req.checkpoint)) {
      // Now that the capture is durable (or spooled), checkpoint it
      // (capturing under the write lock whatever was committed meanwhile;
      // if that is not empty the checkpoint waits for the next sync).
      CaptureRequest again = req;
      again.want_snapshot = false;
      again.checkpoint = true;
      CaptureResult tail;
      Status ts = CaptureChanges(again, res.pos, &tail);
      CountEpochChecksum(s, tail);
      if (!ts.ok()) conn.reset();
      if (ts.ok() && !tail.new_generation && !tail.drift) {
        ts = Ship(s, ref, sr.probe, tail, &store_err);
        if (ts.ok()) {
          res.pos = tail.pos;
          res.checkpointed_frames = tail.checkpointed_frames;
          res.has_segment |= tail.has_segment;
        }
      }
      CleanupCapture(tail);
      if (!ts.ok()) Log("database " + s.path + ": checkpoint deferred: " + ts.ToString());
    }
    *changed = res.has_segment || res.has_snapshot;
    {
      std::lock_guard<std::mutex> l(Stripe(s));
      s.pos = res.pos;
      // Shipped from it, or a generation started above the store's txids.
      if (pos_checked || *changed) s.pos_checked = true;
      s.wal_size = wal_size;
      s.wal_mtime_ns = wal_mtime;
      if (*changed) s.last_change_ms = now;
      if (res.checkpointed_frames >= 0) {
        s.checkpoints++;
        s.last_change_ms = now;  // no quiet checkpoint right after one
      }
      s.last_sync_ms = now;
      if (res.new_generation) {
        s.generations++;
        const uint32_t now_s = uint32_t(now / 1000);
        const bool quick = s.last_gen_s != 0 && now_s - s.last_gen_s < kChurnWindowS;
        s.gen_churn = quick ? uint8_t(std::min(255, s.gen_churn + 1)) : 0;
        s.last_gen_s = now_s;
        churn = s.gen_churn;
      }
    }
    if (churn >= kChurnReport && (churn & (churn - 1)) == 0) ReportChurn(s, churn, res.reason, now);
    positions_.Put(s.path, ref.url, res.pos, wal_size, wal_mtime);
    const Labels group{{"group", o.metrics_group}};
    if (res.pos.txid > pos.txid && !res.new_generation)
      m_.Add("replite_transactions_total", group, double(res.pos.txid - pos.txid));
    if (res.new_generation) m_.Add("replite_generations_started_total", group);
    if (res.checkpointed_frames >= 0) m_.Add("replite_checkpoints_total", group);
    PublishDurable(s, res.pos.txid, durable_ms);  // what the checkpoint's capture added
    // Retention has nothing to delete right after the first snapshot of a
    // replica's first generation (a new database).
    if (res.has_snapshot && !(res.new_generation && pos.txid == 0)) {
      RetentionStats rs;
      Status rst = ApplyRetention(ref.store, ref.prefix, now, o.retention_ms, &rs,
                                  [&] { return leases_->VerifyHeld(ref.store, ref.prefix); });
      if (!rst.ok()) {
        Log("database " + s.path + ": retention: " + rst.ToString());
      } else if (rs.objects_deleted > 0 || rs.abandoned_removed > 0) {
        Log("database " + s.path + ": retention deleted " + std::to_string(rs.objects_deleted) + " objects (" +
            std::to_string(rs.generations_deleted) + " generations) and " + std::to_string(rs.abandoned_removed) +
            " abandoned uploads");
      }
    }
    return store_err;
  }

  // Positions are saved in batches, so after a crash the saved one may lag
  // the store. A lagging position must not expect a WAL restart if the
  // store holds commits appended to the old epoch after our checkpoint (had
  // its restart not been certain after all): the next process would number
  // the new epoch's commits right after the position, under the txids of
  // those other commits. So before such a capture is shipped or spooled,
  // the position is saved without the expectation, synchronously. Commits
  // of the restarted epoch need no such care (a next process that finds
  // that epoch captures the same frames under the same txids; any later
  // epoch is verified), so this write is as rare as an uncertain restart
  // taken for a certain one. After a crash the epoch is then verified
  // (TryAdoptEpoch), and a clean restart keeps trusting the expectation
  // without reading the database.
  Status ForgetExpectedRestart(DbSlot& s, const ReplicaRef& ref, Position pos, int64_t wal_size, int64_t wal_mtime) {
    pos.expect_restart = false;
    positions_.Put(s.path, ref.url, pos, wal_size, wal_mtime);
    Status st = positions_.Flush();
    if (!st.ok()) return Status(st.code(), "saving the position before shipping past a WAL restart: " + st.message());
    return st;
  }

  // kUnavailable while a churning database's next generation must wait.
  Status GenerationDeferred(DbSlot& s, int64_t now) {
    int64_t not_before;
    {
      std::lock_guard<std::mutex> l(Stripe(s));
      not_before = NextGenerationNotBeforeMs(s.gen_churn, s.last_gen_s);
    }
    if (now >= not_before) return Status::OK();
    return Status::Unavailable("database " + s.path + ": a new generation is needed but waits " +
                               std::to_string((not_before - now + 999) / 1000) + " s more: " +
                               std::to_string(s.gen_churn + 1) +
                               " generations started in quick succession (see the log); Sync starts it now");
  }

  // One log line (at 2, 4, 8... quick generations in a row) with the cause
  // and the fix, and the metric.
  void ReportChurn(DbSlot& s, uint8_t churn, const std::string& reason, int64_t now) {
    if (churn == kChurnReport) m_.Add("replite_generation_churn_total", {{"group", s.cfg->opts.metrics_group}});
    uint32_t last_gen_s;
    {
      std::lock_guard<std::mutex> l(Stripe(s));
      last_gen_s = s.last_gen_s;
    }
    const int64_t wait_s = (NextGenerationNotBeforeMs(churn, last_gen_s) - now + 999) / 1000;
    Log("database " + s.path + ": " + std::to_string(churn + 1) +
        " generations in a row, each started within 10 minutes of the previous one, and each a full snapshot "
        "(last cause: " + reason + "). When the cause is lost WAL frames, another connection checkpointed "
        "frames before replite read them: let replite see commits sooner (Attach the application's connection or "
        "call Notify after commits, or poll more often), keep the database hot (fd_budget leaves room for its kept "
        "connection and read mark), or leave checkpoints to replite (PRAGMA wal_autocheckpoint=0 in the "
        "application). The next generation waits " + std::to_string(wait_s) + " s (doubling, up to 15 min).");
  }

  // Takes or confirms the replica's lease (replica/lease.h): no request while
  // the lease is known good, which is every sync but the first after Add or
  // after a heartbeat lapse.
  Status EnsureLease(DbSlot& s, const ReplicaRef& ref) {
    uint32_t epoch;
    {
      std::lock_guard<std::mutex> l(Stripe(s));
      epoch = s.lease_epoch;
    }
    if (leases_->Usable(ref.store, ref.prefix, epoch)) return Status::OK();
    std::string from;
    Status st = leases_->Acquire(ref.store, ref.prefix, &epoch, &from);
    if (!st.ok()) return st;
    if (!from.empty())
      Log("database " + s.path + ": took over the lease of " + ref.url + " from replite instance " + from +
          " (it stopped, or its heartbeat expired): a new generation starts above what it wrote");
    std::lock_guard<std::mutex> l(Stripe(s));
    s.lease_epoch = epoch;
    if (!from.empty()) s.lease_taken_over = true;
    return Status::OK();
  }

  bool TakeOverPending(DbSlot& s) {
    std::lock_guard<std::mutex> l(Stripe(s));
    const bool t = s.lease_taken_over;
    s.lease_taken_over = false;
    return t;
  }

  // Forgets the database's spooled segments (after a lease takeover).
  Status DropSpooled(DbSlot& s, const ReplicaRef& ref) {
    std::vector<SpoolEntry> entries;
    Status st = upload_spool_.List(s.path, ref.url, &entries);
    if (!st.ok()) return st;
    for (const auto& e : entries) upload_spool_.Remove(e);
    if (!entries.empty())
      Log("database " + s.path + ": dropped " + std::to_string(entries.size()) +
          " spooled segments of the generation before the takeover (never durable; the new generation's snapshot "
          "holds their changes)");
    std::lock_guard<std::mutex> l(Stripe(s));
    s.spooled = 0;
    return Status::OK();
  }

  // A removed database's lease is deleted if it still names us, so that
  // another instance may take the replica without waiting (best effort).
  void ReleaseLease(DbSlot& s) {
    if (!leases_->enabled() || s.lease_epoch == 0) return;
    const ReplicaRef ref = RefOf(s);
    if (leases_->VerifyHeld(ref.store, ref.prefix).ok()) ref.store->Delete({LeaseKey(ref.prefix)});
  }

  // Records that `txid` is in the store (unless older segments are still
  // spooled) and tells on_durable; *durable_ms gets the time of the first
  // advance (the commit-to-durable histogram's end point).
  // Reading a whole database under the application's write lock is the
  // expensive way to accept a WAL epoch replite did not see start: counted
  // so that it shows when it becomes frequent.
  void CountEpochChecksum(const DbSlot& s, const CaptureResult& r) {
    if (r.epoch_checksum == 0) return;
    m_.Add("replite_epoch_checksums_total",
           {{"group", s.cfg->opts.metrics_group}, {"result", r.epoch_checksum == 1 ? "adopted" : "mismatch"}});
  }

  void PublishDurable(DbSlot& s, uint64_t txid, int64_t* durable_ms) {
    uint64_t before, after;
    {
      std::lock_guard<std::mutex> l(Stripe(s));
      before = s.durable_txid;
      if (s.spooled == 0) s.durable_txid = std::max(s.durable_txid, txid);
      after = s.durable_txid;
    }
    if (after == before) return;
    if (*durable_ms == 0) *durable_ms = NowMs();
    if (opts_.on_durable) opts_.on_durable(s.path, after);
  }

  static void CleanupCapture(const CaptureResult& res) {
    if (!res.snapshot_path.empty()) ::unlink(res.snapshot_path.c_str());
    if (!res.segment_path.empty()) ::unlink(res.segment_path.c_str());
  }

  // Makes a capture safe: uploads it, or, when the store fails (or older
  // segments still wait in the spool), spools its segment. OK means the
  // position may advance and its frames may be checkpointed; *store_err
  // then says whether the store has it yet. A snapshot or a new generation
  // is never spooled: it is retried from the WAL once the store answers.
  Status Ship(DbSlot& s, const ReplicaRef& ref, bool probe, CaptureResult& res, Status* store_err) {
    if (!res.has_segment && !res.has_snapshot && !res.new_generation) return Status::OK();
    StoreHealth& health = *ref.health;
    uint32_t spooled;
    {
      std::lock_guard<std::mutex> l(Stripe(s));
      spooled = s.spooled;
    }
    const bool was_down = health.down();
    if (spooled == 0 && store_err->ok() && (health.MayTry(NowMono()) || probe)) {
      SingleAttemptScope fail_fast(was_down);  // a probe of a failing store
      Status u = Upload(s, ref, res);
      if (u.ok()) {
        health.Success();
        return u;
      }
      health.Failure(NowMono());
      *store_err = u;
    } else if (store_err->ok()) {
      *store_err = StoreDownStatus(ref);
    }
    if (!res.has_segment || res.has_snapshot || res.new_generation) return *store_err;
    const Labels group{{"group", s.cfg->opts.metrics_group}};
    Status a = upload_spool_.Append(s.path, ref.url, res.segment_header,
                                    res.segment_path.empty() ? &res.segment : nullptr,
                                    res.segment_path.empty() ? nullptr : &res.segment_path);
    if (!a.ok()) {
      if (a.code() == Code::kResourceExhausted) m_.Add("replite_spool_full_total", group);
      return Status(store_err->code(), store_err->message() + "; capture paused, the changes wait in the WAL: " +
                                           a.message());
    }
    res.segment_path.clear();  // moved into the spool
    m_.Add("replite_segments_spooled_total", group);
    std::lock_guard<std::mutex> l(Stripe(s));
    s.spooled++;
    return Status::OK();
  }

  Status StoreDownStatus(const ReplicaRef& ref) {
    const int64_t wait_ms = std::max<int64_t>(0, (ref.health->retry_at_us() - NowMono()) / 1000);
    return Status::Unavailable("store " + ref.url + " is failing; next attempt in " + std::to_string(wait_ms) +
                               " ms; captured changes are spooled locally meanwhile");
  }

  // Uploads the database's spooled segments, oldest first; stops at the
  // first failure (the rest stay spooled, in order).
  Status DrainSpool(DbSlot& s, const ReplicaRef& ref, bool probe) {
    StoreHealth& health = *ref.health;
    const bool was_down = health.down();
    if (!health.MayTry(NowMono()) && !probe) return StoreDownStatus(ref);
    SingleAttemptScope fail_fast(was_down);  // a probe of a failing store
    Status st = EnsureLease(s, ref);
    if (!st.ok()) {
      if (st.retryable()) health.Failure(NowMono());
      return st;
    }
    std::vector<SpoolEntry> entries;
    st = upload_spool_.List(s.path, ref.url, &entries);
    if (!st.ok()) return st;
    const Labels group{{"group", s.cfg->opts.metrics_group}};
    ReplicaWriter writer(ref);
    for (const auto& e : entries) {
      st = writer.PutSpooled(e);
      if (!st.ok()) {
        health.Failure(NowMono());
        return st;
      }
      health.Success();
      upload_spool_.Remove(e);
      m_.Add("replite_segments_uploaded_total", group);
      m_.Add("replite_uploaded_bytes_total", group, double(e.bytes));
      uint64_t durable;
      {
        std::lock_guard<std::mutex> l(Stripe(s));
        if (s.spooled > 0) s.spooled--;
        s.segments++;
        s.bytes += e.bytes;
        s.durable_txid = std::max(s.durable_txid, e.last_txid);
        durable = s.durable_txid;
      }
      if (opts_.on_durable) opts_.on_durable(s.path, durable);
    }
    std::lock_guard<std::mutex> l(Stripe(s));
    s.spooled = 0;
    return Status::OK();
  }

  Status Upload(DbSlot& s, const ReplicaRef& ref, const CaptureResult& res) {
    Status ls = EnsureLease(s, ref);
    if (!ls.ok()) return ls;
    ReplicaWriter writer(ref);
    const Labels group{{"group", s.cfg->opts.metrics_group}};
    if (res.new_generation) {
      Log("database " + s.path + ": new generation " + res.pos.generation() + " at txid " +
          std::to_string(res.pos.txid) + ": " + res.reason);
    }
    if (res.has_segment) {
      uint64_t size = 0;
      Status st = writer.PutSegment(res.segment_header, res.segment, res.segment_path, &size);
      if (!st.ok()) return st;
      m_.Add("replite_uploaded_bytes_total", group, double(size));
      m_.Add("replite_segments_uploaded_total", group);
      std::lock_guard<std::mutex> l(Stripe(s));
      s.segments++;
      s.bytes += size;
    }
    if (res.has_snapshot) {
      uint64_t size = 0;
      Status st = writer.PutSnapshot(res.snapshot_header, res.snapshot_path, &size);
      if (!st.ok()) return st;
      m_.Add("replite_uploaded_bytes_total", group, double(size));
      m_.Add("replite_snapshots_uploaded_total", group);
      std::lock_guard<std::mutex> l(Stripe(s));
      s.snapshots++;
      s.bytes += size;
    }
    if (res.new_generation) {
      // The manifest names the generation only once its snapshot is stored
      // (a conditional update, by the lease holder only).
      Status st = writer.AddGeneration({res.pos.generation(), res.pos.txid, res.pos.txid_ts_ms},
                                       res.snapshot_header.page_size,
                                       [&] { return leases_->VerifyHeld(ref.store, ref.prefix); });
      if (!st.ok()) return st;
    }
    return Status::OK();
  }

  ReplicatorOptions opts_;
  Env* env_;
  StoreRegistry stores_;
  PositionStore positions_;
  std::string spool_dir_;
  std::shared_ptr<const DbConfig> default_cfg_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> stopped_{false};  // Close ended every job: waiters are released
  std::mutex hook_mu_;
  std::mutex cfg_mu_;
  std::map<std::string, std::weak_ptr<const DbConfig>> configs_;
  std::mutex wrap_mu_;
  struct Wrapped {
    std::shared_ptr<ObjectStore> store;
    std::shared_ptr<StoreHealth> health;
  };
  std::unordered_map<ObjectStore*, Wrapped> wrapped_;
  UploadSpool upload_spool_;
  DirWatch watch_;                       // stopped in Close, before the timers
  std::atomic<bool> watch_warned_{false};
  Instance instance_;                    // holds state_dir/lock
  std::unique_ptr<LeaseKeeper> leases_;  // after the stores it points to

  std::shared_mutex reg_mu_;  // guards the registry below
  std::vector<SlotPtr> slots_;
  std::vector<uint32_t> free_ids_;
  std::unordered_map<std::string_view, uint32_t> by_path_;  // views into DbSlot::path
  std::unordered_multimap<uint64_t, uint32_t> by_url_;      // hash of the replica URL -> id
  std::unordered_multimap<uint64_t, uint32_t> by_file_;     // hash of (st_dev, st_ino) at Add -> id
  std::mutex stripes_[kStripes];
  std::condition_variable cvs_[kStripes];
  std::atomic<uint64_t> next_timer_seq_{1};

  replite::Metrics m_;
  std::counting_semaphore<1 << 20> fd_tokens_;
  ThreadPool pool_;
  ConnCache conns_;
  TimerQueue timers_;  // last: its thread stops first
};

}  // namespace

Status Replicator::Open(const ReplicatorOptions& options, std::unique_ptr<Replicator>* out) {
  if (options.worker_threads < 1 || options.worker_threads > 256)
    return Status::InvalidArgument("worker_threads must be 1..256");
  if (options.lease_ttl_ms != 0 && (options.lease_ttl_ms < 1000 || options.lease_ttl_ms > 3600 * 1000))
    return Status::InvalidArgument("lease_ttl_ms must be 0 (no leases) or 1000..3600000 (got " +
                                   std::to_string(options.lease_ttl_ms) + ")");
  if (options.fd_budget < kFdsPerJob)
    return Status::InvalidArgument("fd_budget must be at least " + std::to_string(kFdsPerJob) +
                                   " (one sync job opens up to that many files)");
  auto r = std::make_unique<ReplicatorImpl>(options);
  Status s = r->Init();
  if (!s.ok()) return s;
  *out = std::move(r);
  return Status::OK();
}

const char* Version() { return REPLITE_VERSION; }

}  // namespace replite
