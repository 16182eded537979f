// The Replicator's public facade: Open, the registry's front (Add, Remove,
// Databases), change notification (Notify, Attach, Detach), the requests
// that wait (Sync, WaitDurable, Snapshot, Checkpoint), status, metrics and
// Close. Jobs and timers: core/scheduler.cc; what a job does:
// core/sync_job.cc; the class: core/replicator_impl.h.
#include <malloc.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <iterator>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <thread>

#include "core/header_checks.h"
#include "core/memory_report.h"
#include "core/replicator_impl.h"
#include "core/sqlite_files.h"
#include "format/zstd_pool.h"
#include "http/http_client.h"
#include "store/counting_store.h"
#include "util/file_util.h"

namespace replite {
namespace {

std::string DefaultStateDir() {
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/replite";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/state/replite";
  return "/tmp/replite-state";
}

// Sets what Add loaded before DbRegistry::Insert: until then no other thread
// can find the slot, and it has no id (stripe) yet. The position is parked
// (core/slot_park.cc): the position store holds exactly it (or nothing, for
// a new database), unless it names an abandoned generation.
void InitUnshared(DbSlot& s, const Position& pos, int64_t wal_size, int64_t wal_mtime_ns) NO_THREAD_SAFETY_ANALYSIS {
  if (pos.valid() || pos.txid == 0) SetParked(s, pos);
  else s.pos = std::make_unique<LivePosition>(pos);
  s.wal_size = wal_size;
  s.wal_mtime_ns = wal_mtime_ns;
}

}  // namespace

ReplicatorImpl::ReplicatorImpl(const ReplicatorOptions& o)
    : opts_(o),
      env_(o.env ? o.env : Env::Default()),
      stores_(env_, MakeStoreConfig(o)),
      fd_tokens_(std::max(1, o.fd_budget / kFdsPerJob)),
      pool_(std::max(1, std::min(o.worker_threads, std::max(1, o.fd_budget / kFdsPerJob)))),
      // What the jobs may open leaves the rest of the budget to kept
      // connections of hot databases.
      conns_(size_t(std::max(0, o.fd_budget - pool_.max_threads() * kFdsPerJob) / ConnCache::kFdsPerConn), kConnIdleUs),
      timers_([this](const Timer& t) { OnTimer(t); }, [env = env_] { return env->MonotonicMicros(); }) {
  DeclareMetrics();
}

ReplicatorImpl::~ReplicatorImpl() { Close(); }

Status ReplicatorImpl::Init() {
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
  unpack_dir_ = opts_.state_dir + "/unpack";
  s = MakeDirs(unpack_dir_);
  if (!s.ok()) return s;
  RemoveDeadTemps(unpack_dir_);  // copies of packs a killed process stored (the store has them)
  auto cfg = RefPtr<DbConfig>::Make();
  cfg->opts = opts_.defaults;
  if (!opts_.replica_url.empty()) {
    s = ParseReplicaUrl(opts_.replica_url, &cfg->root);
    if (!s.ok()) return s;
    s = OpenStore(cfg->root, &cfg->store, &cfg->health);
    if (!s.ok()) return s;
  }
  default_cfg_ = cfg;  // (defaults naming one database's URL: Add opens its store, through ConfigFor)
  s = positions_.Open(opts_.state_dir + "/positions.db");
  if (!s.ok()) return s;
  s = upload_spool_.Open(opts_.state_dir + "/upload-spool", opts_.spool_cap);
  if (!s.ok()) return s;
  if (upload_spool_.entries() > 0)
    Log("upload spool holds " + std::to_string(upload_spool_.entries()) + " segments (" +
        std::to_string(upload_spool_.bytes()) + " bytes) from an earlier run: they are uploaded first");
  ArmTimer(opts_.position_flush_ms * 1000, TimerKind::kHousekeeping);
  leases_->Start([this](const std::string& line) { Log(line); });
  s = watch_.Start([this](const std::string& dir, const char* name) { OnDirEvent(dir, name); });
  if (!s.ok()) Log("change wakeups are off, databases are only polled: " + s.ToString());
  return Status::OK();
}

// One counting wrapper per distinct store (the registry shares stores by
// identity, so 100,000 databases on one bucket share one of each).
Status ReplicatorImpl::OpenStore(const ReplicaUrl& url, std::shared_ptr<ObjectStore>* out, std::shared_ptr<StoreHealth>* health) {
  std::shared_ptr<ObjectStore> raw;
  Status s = opts_.store_factory ? opts_.store_factory(url.ToString(), &raw) : stores_.Open(url, &raw);
  if (!s.ok()) return s;
  if (!raw) return Status::InvalidArgument("store_factory returned no store for " + url.ToString());
  MutexLock l(wrap_mu_);
  auto& w = wrapped_[raw.get()];
  if (!w.store) {
    w.store = NewCountingStore(raw, &m_);
    w.health = std::make_shared<StoreHealth>();
  }
  *out = w.store;
  *health = w.health;
  return Status::OK();
}

Status ReplicatorImpl::Add(const std::string& path, const DatabaseOptions& o) {
  RefPtr<const DbConfig> cfg;
  Status s = ConfigFor(o, &cfg);
  if (!s.ok()) return s.Annotate("database " + AbsolutePath(path) + ": ");
  return AddWith(path, std::move(cfg));
}

Status ReplicatorImpl::OpenTarget(const std::string& replica_url, std::shared_ptr<const DbTarget>* out) {
  if (replica_url.empty()) return Status::OK();
  auto t = std::make_shared<DbTarget>();
  Status s = ParseReplicaUrl(replica_url, &t->url);
  if (!s.ok()) return s;
  s = OpenStore(t->url, &t->store, &t->health);
  if (!s.ok()) return s;
  t->url_str = t->url.ToString();
  *out = std::move(t);
  return Status::OK();
}

// Databases added with equal options share one DbConfig (with a replica
// URL of their own, its store is opened here, once).
Status ReplicatorImpl::ConfigFor(const DatabaseOptions& o, RefPtr<const DbConfig>* out) {
  // Every option is in the key: databases share a config only if all of
  // their options are equal.
  char key[512];
  std::snprintf(key, sizeof key, "%d|%lld|%lld|%u|%u|%lld|%lld|%d|%lld|%lld|%lld|%llu|%lld|%d|", o.enable_wal ? 1 : 0,
                (long long)o.snapshot_interval_ms, (long long)o.retention_ms, o.checkpoint_pages, o.truncate_pages,
                (long long)o.checkpoint_quiet_ms, (long long)o.poll_interval_ms, o.compression_level,
                (long long)o.sync_interval_ms, (long long)o.keep_every_txid_ms, (long long)o.pack_window_ms,
                (unsigned long long)o.pack_max_bytes, (long long)o.pack_unpack_ms, o.pack_compression_level);
  std::string k = key;
  for (int64_t level : o.compaction_levels_ms) k += std::to_string(level) + ",";
  k += "|" + std::to_string(o.metrics_group.size()) + ":" + o.metrics_group + "|" + o.replica_url;
  {
    MutexLock l(cfg_mu_);
    if (auto it = configs_.find(k); it != configs_.end()) {
      *out = it->second;
      return Status::OK();
    }
  }
  // A URL of its own: its store is opened without the lock (a factory may
  // do network I/O; other Adds go on meanwhile). Two Adds racing here open
  // it twice; the first config inserted is the one kept.
  std::shared_ptr<const DbTarget> target;
  Status s = OpenTarget(o.replica_url, &target);
  if (!s.ok()) return s;
  MutexLock l(cfg_mu_);
  if (auto it = configs_.find(k); it != configs_.end()) {
    *out = it->second;
    return Status::OK();
  }
  if (configs_.size() >= configs_prune_at_) {
    // Forget the configs of databases all removed: held by this map alone
    // (a new reference to one is only made here, under cfg_mu_, or copied
    // from a slot that holds one).
    for (auto it = configs_.begin(); it != configs_.end();)
      it = it->second.use_count() == 1 ? configs_.erase(it) : std::next(it);
    configs_prune_at_ = std::max<size_t>(64, 2 * configs_.size());
  }
  auto cfg = RefPtr<DbConfig>::Make(*default_cfg_);
  cfg->opts = o;
  cfg->target = std::move(target);  // (not the defaults')
  configs_[k] = cfg;
  *out = cfg;
  return Status::OK();
}

Status ReplicatorImpl::AddWith(const std::string& raw_path, RefPtr<const DbConfig> cfg) {
  PendingAdd a;
  Status s = PrepareAdd(raw_path, std::move(cfg), &a);
  if (!s.ok()) return s;
  if (!a.found) {
    // New to us: check the header now for a clear error (restarts skip
    // this: a saved position means the database was fine before).
    s = CheckDatabaseHeader(a.slot->path(), a.slot->cfg->opts.enable_wal);
    if (!s.ok()) return s;
  }
  return FinishAdd(a);
}

std::vector<Status> ReplicatorImpl::AddMany(const std::vector<std::string>& paths, const DatabaseOptions& o) {
  RefPtr<const DbConfig> cfg;
  Status s = ConfigFor(o, &cfg);
  if (!s.ok()) return std::vector<Status>(paths.size(), s);
  return AddManyWith(paths, cfg);
}

// Add for each path, in order, in batches: each batch is prepared (its
// checks, file identity and saved position) and its new databases'
// headers pushed to runners on the pool; a batch is inserted once it is
// kAhead batches behind the newest, its headers checked (by a runner, or
// here if none took them yet). The batches in flight are bounded, so the
// memory of an AddMany does not grow with the number of paths.
std::vector<Status> ReplicatorImpl::AddManyWith(const std::vector<std::string>& paths,
                                                 const RefPtr<const DbConfig>& cfg) {
  constexpr size_t kBatch = 128, kAhead = 8;
  // Runners: the cores but the adding thread's, with one at least, and
  // not so many that SQLite's VFS lock is all they wait on.
  const int runners = std::clamp(int(std::thread::hardware_concurrency()) - 1, 1, 4);
  struct Batch {
    size_t first = 0;
    std::vector<PendingAdd> adds;
    std::vector<size_t> checked;  // indexes into adds whose header is checked
    size_t checks = SIZE_MAX;     // its number in HeaderChecks
  };
  std::vector<Status> out(paths.size());
  std::deque<Batch> ahead;  // prepared, not inserted
  auto checks = std::make_shared<HeaderChecks>();
  auto insert_oldest = [&] {
    Batch& b = ahead.front();
    if (b.checks != SIZE_MAX) {
      const std::vector<HeaderChecks::Item> items = checks->Take(b.checks);
      for (size_t k = 0; k < b.checked.size(); k++) out[b.first + b.checked[k]] = items[k].status;
    }
    for (size_t j = 0; j < b.adds.size(); j++)
      if (out[b.first + j].ok()) out[b.first + j] = FinishAdd(b.adds[j]);
    ahead.pop_front();
  };
  int started = 0;
  for (size_t first = 0; first < paths.size(); first += kBatch) {
    Batch& b = ahead.emplace_back();
    b.first = first;
    const size_t n = std::min(kBatch, paths.size() - first);
    b.adds.resize(n);
    std::vector<HeaderChecks::Item> items;
    for (size_t j = 0; j < n; j++) {
      out[first + j] = PrepareAdd(paths[first + j], cfg, &b.adds[j]);
      if (out[first + j].ok() && !b.adds[j].found) {
        b.checked.push_back(j);
        items.push_back({b.adds[j].slot->path(), cfg->opts.enable_wal, Status::OK()});
      }
    }
    if (!items.empty()) {
      b.checks = checks->Push(std::move(items));
      if (started < runners) {
        started++;
        pool_.Submit([checks] { checks->Run(); });
      }
    }
    if (ahead.size() > kAhead) insert_oldest();
  }
  checks->Finish();
  while (!ahead.empty()) insert_oldest();
  return out;
}

// Everything of an Add before its header check: the checks of the path and
// options, the file's identity and the saved position.
Status ReplicatorImpl::PrepareAdd(const std::string& raw_path, RefPtr<const DbConfig> cfg, PendingAdd* a) {
  if (closed_) return Status::Cancelled("replicator is closed");
  SlotPtr& slot = a->slot;
  slot = SlotPtr::Make();
  const std::string path = AbsolutePath(raw_path);
  slot->SetPath(path);
  const DatabaseOptions& o = cfg->opts;
  if (!cfg->target && !cfg->store) {
    return Status::InvalidArgument("database " + path +
                                   ": no replica URL (set DatabaseOptions::replica_url or ReplicatorOptions::replica_url)");
  }
  if (!cfg->target) {
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
  if (o.pack_window_ms > 0) {
    const ReplicaRef ref = cfg->target ? ReplicaRef{nullptr, nullptr, cfg->target->url.prefix, ""}
                                        : ReplicaRef{nullptr, nullptr, cfg->root.Child(ReplicaNameFor(path)).prefix, ""};
    if (PackMemberName(ref.prefix).empty() || PackMemberName(ref.prefix) == kPackDirName)
      return Status::InvalidArgument("database " + path + ": packing is on and its replica prefix '" + ref.prefix +
                                     "' cannot be a pack member (" + kPackDirName +
                                     " is where packs live, and a store's root has no name): rename the file, give "
                                     "it another replica URL, or set pack_window_ms = 0 for it");
  }
  slot->cfg = std::move(cfg);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("database " + path, errno);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument("database " + path + " is not a regular file");
  slot->file_key = FileKey(uint64_t(st.st_dev), uint64_t(st.st_ino));
  // A saved position that expects a WAL restart is trusted: positions are
  // saved in batches and may lag the store, but before commits of the
  // epoch it expected to restart are shipped, it is saved again without
  // that expectation (ForgetExpectedRestart); commits of the restarted
  // epoch are captured the same way again by a next process.
  Status s = positions_.Load(path, UrlOf(*slot), &a->pos, &a->found, &a->wal_size, &a->wal_mtime_ns);
  if (!s.ok()) return s;
  if (!a->found) a->wal_size = a->wal_mtime_ns = -1;
  return Status::OK();
}

// The rest of an Add, once its header passed: the database is inserted
// and scheduled.
Status ReplicatorImpl::FinishAdd(PendingAdd& a) {
  const SlotPtr& slot = a.slot;
  const std::string& path = slot->path();
  const DatabaseOptions& o = slot->cfg->opts;
  const Position& pos = a.pos;
  const bool found = a.found;
  const std::string url = UrlOf(*slot);
  InitUnshared(*slot, pos, a.wal_size, a.wal_mtime_ns);
  Status s = reg_.Insert(slot, url);
  if (!s.ok()) return s;
  if (o.poll_interval_ms > 0) {
    // A write to the database's WAL wakes it at once (polling remains the
    // fallback, e.g. past the kernel's watch limit).
    std::string why;
    const bool watched = watch_.Watch(DirName(path), &why);
    {
      MutexLock l(Stripe(*slot));
      slot->watched = watched;
    }
    if (!watched && !watch_warned_.exchange(true))
      Log("change wakeups unavailable for " + DirName(path) + " (" + why + "): polled only");
  }
  // Segments an earlier process spooled but did not upload: they are not
  // durable yet and go to the store first.
  const SpoolBacklog backlog = upload_spool_.TakeBacklog(path, url);
  {
    MutexLock l(Stripe(*slot));
    // Spooled segments are not durable yet: the position stays in memory
    // until they are (as does an abandoned generation's, made so above).
    if (slot->pos || backlog.entries > 0) Unpark(*slot, LivePosition(pos));
    slot->spooled = backlog.entries;
    slot->durable_txid = backlog.entries ? std::min(pos.txid, backlog.first_txid - 1) : pos.txid;
  }
  if (found && backlog.entries == 0) {
    // Resume: the first poll opens nothing if the WAL is unchanged, and is
    // spread over the interval the database had backed off to (how long
    // its WAL had been idle when the position was saved tells), so that
    // 100,000 resumed databases are not all polled in the first second
    // while the recently written ones start at the base interval.
    MutexLock l(Stripe(*slot));
    ArmPoll(*slot, Jitter(ResumedPollInterval(*slot)));
  } else if (!found && backlog.entries == 0) {
    QueueFirstSync(slot);  // first sync (snapshot), once Adds pause
  } else {
    Kick(slot, true);  // a backlog to upload
  }
  return Status::OK();
}

Status ReplicatorImpl::Remove(const std::string& raw_path) {
  SlotPtr slot = Find(AbsolutePath(raw_path));
  if (!slot) return Status::NotFound("database " + raw_path + " is not being replicated");
  {
    MutexLock hl(hook_mu_);
    std::vector<std::pair<sqlite3*, void*>> hooks;
    {
      MutexLock l(Stripe(*slot));
      slot->removed = true;
      slot->timer_seq = 0;  // any queued timer entry is now stale
      hooks = TakeHooks(*slot);
    }
    Unhook(hooks);
  }
  {
    MutexLock l(Stripe(*slot));
    // Queued work is cancelled (a queued job sees `removed` and returns);
    // a running job finishes its step first.
    Cv(*slot).wait(l.native(), [&]() REQUIRES(slot->stripe()) { return slot->state == JobState::kIdle; });
  }
  conns_.Drop(slot->id);
  bool spooled, watched;
  {
    MutexLock l(Stripe(*slot));
    spooled = slot->spooled > 0;
    watched = slot->watched;
  }
  // Not durable yet: adding the database again must upload it first.
  if (spooled) upload_spool_.ReturnBacklog(slot->path(), UrlOf(*slot));
  ReleaseLease(*slot);
  ForgetSession(*slot);
  if (watched) watch_.Unwatch(DirName(slot->path()));
  reg_.Erase(*slot, UrlOf(*slot));
  return positions_.Flush();
}

std::vector<std::string> ReplicatorImpl::Databases() { return reg_.Paths(); }

Status ReplicatorImpl::Notify(const std::string& path) {
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
void ReplicatorImpl::OnDirEvent(const std::string& dir, const char* name) {
  std::string db_name;
  if (!DatabaseOfWalName(name, &db_name)) return;
  SlotPtr s = Find(dir + "/" + db_name);
  if (!s) return;
  {
    MutexLock l(Stripe(*s));
    if (s->removed || closed_ || s->notified || s->wake_pending) return;
    s->wake_pending = true;
  }
  ArmBatched(s->cfg->opts.sync_interval_ms, TimerKind::kWake, s->id);
}

void ReplicatorImpl::NotifySlot(DbSlot& slot) {
  MutexLock l(Stripe(slot));
  if (slot.removed || closed_) return;
  if (!slot.notified) {
    slot.notified = true;
    slot.timer_seq = 0;  // cancels the poll timer
  }
  if (slot.notified_at_ms == 0) slot.notified_at_ms = NowMs();
  if (slot.notify_pending) return;
  slot.notify_pending = true;
  ArmBatched(slot.cfg->opts.sync_interval_ms, TimerKind::kNotify, slot.id);
}

int ReplicatorImpl::WalHook(void* arg, sqlite3*, const char* name, int) {
  auto* ctx = static_cast<HookCtx*>(arg);
  if (name && std::strcmp(name, "main") == 0) ctx->r->NotifyById(ctx->id, ctx->path);
  return SQLITE_OK;
}

void ReplicatorImpl::NotifyById(uint32_t id, const std::string& path) {
  SlotPtr slot = ById(id);
  if (slot && slot->PathIs(path)) NotifySlot(*slot);
}

Status ReplicatorImpl::Attach(const std::string& path, sqlite3* conn) {
  if (!conn) return Status::InvalidArgument("Attach: connection is null");
  SlotPtr slot = Find(AbsolutePath(path));
  if (!slot) return Status::NotFound("database " + path + " is not being replicated (Add it before Attach)");
  const char* file = sqlite3_db_filename(conn, "main");
  if (!file || !slot->PathIs(AbsolutePath(file)))
    return Status::InvalidArgument("Attach: the connection is to " + std::string(file ? file : "?") + ", not " +
                                   slot->path());
  // hook_mu_ serializes hook changes (Attach against Remove/Close/Detach of
  // the same database); it is never taken by the hook itself.
  MutexLock hl(hook_mu_);
  auto* ctx = new HookCtx{this, slot->id, slot->path()};
  {
    MutexLock l(Stripe(*slot));
    if (slot->removed) {
      delete ctx;
      return Status::NotFound("database " + path + " was removed");
    }
    reg_.Extra(*slot);
    for (const auto& h : slot->extra->hooks)
      if (h.first == conn) {
        delete ctx;
        return Status::AlreadyExists("Attach: connection already attached to " + slot->path());
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

Status ReplicatorImpl::Detach(const std::string& path, sqlite3* conn) {
  SlotPtr slot = Find(AbsolutePath(path));
  if (!slot) return Status::NotFound("database " + path + " is not being replicated");
  MutexLock hl(hook_mu_);
  void* ctx = nullptr;
  {
    MutexLock l(Stripe(*slot));
    auto* hooks = slot->extra ? &slot->extra->hooks : nullptr;
    for (size_t i = 0; hooks && i < hooks->size() && !ctx; i++) {
      if ((*hooks)[i].first != conn) continue;
      ctx = (*hooks)[i].second;
      hooks->erase(hooks->begin() + i);
    }
  }
  if (!ctx) return Status::NotFound("Detach: connection is not attached to " + slot->path());
  Unhook({{conn, ctx}});
  return Status::OK();
}

// Takes the hooks out of a slot (caller holds its stripe lock); Unhook
// them after releasing it (see Attach for the lock order).
std::vector<std::pair<sqlite3*, void*>> ReplicatorImpl::TakeHooks(DbSlot& slot) {
  std::vector<std::pair<sqlite3*, void*>> v;
  if (slot.extra) v.swap(slot.extra->hooks);
  return v;
}

void ReplicatorImpl::Unhook(const std::vector<std::pair<sqlite3*, void*>>& hooks) {
  for (const auto& h : hooks) {
    sqlite3_wal_hook(h.first, nullptr, nullptr);  // waits for a commit in progress on it
    delete static_cast<HookCtx*>(h.second);
  }
}

Status ReplicatorImpl::Request(const std::string& path, bool snapshot, bool checkpoint, bool truncate, uint64_t* durable,
               int64_t timeout_ms, bool through_errors) {
  if (closed_) return Status::Cancelled("replicator is closed");
  SlotPtr slot = Find(AbsolutePath(path));
  if (!slot) return Status::NotFound("database " + path + " is not being replicated");
  uint32_t seq;
  {
    MutexLock l(Stripe(*slot));
    seq = ++slot->req_seq;
    // Sync/Snapshot/Checkpoint: the application wants it now, so try the
    // store even during its backoff. WaitDurable waits for the retries.
    if (!through_errors) slot->want_probe = true;
    slot->want_snapshot |= snapshot;
    slot->want_checkpoint |= checkpoint;
    slot->want_truncate |= truncate;
  }
  Kick(slot, false);
  MutexLock l(Stripe(*slot));
  // Sync returns after one job, with its error if it failed. WaitDurable
  // keeps waiting through failed attempts (the job retries on its own,
  // and spooled segments drain once the store answers) until a job
  // succeeds or the deadline passes.
  // WaitDurable is answered as soon as a job that started after the request
  // made its capture durable, before that job's checkpoint.
  // A job that put its capture in a pack (core/pack_jobs.cc) ends before
  // the pack is stored: the request is answered when it is (or it fails).
  auto reached = [&]() REQUIRES(slot->stripe()) {
    const bool in_pack = slot->pack_pending > 0 && int32_t(slot->durable_seq - seq) < 0 && !slot->has_error;
    return (int32_t(slot->done_seq - seq) >= 0 && (!through_errors || !slot->has_error) && !in_pack) ||
           (through_errors && int32_t(slot->durable_seq - seq) >= 0);
  };
  // Close releases every waiter once its last jobs ended (stopped_).
  auto done = [&]() REQUIRES(slot->stripe()) { return reached() || slot->removed || stopped_; };
  if (timeout_ms < 0) {
    Cv(*slot).wait(l.native(), done);
  } else if (!Cv(*slot).wait_for(l.native(), std::chrono::milliseconds(timeout_ms), done)) {
    if (durable) *durable = slot->durable_txid;
    return Status::Timeout("database " + slot->path() + ": not durable after " + std::to_string(timeout_ms) +
                           " ms (durable txid " + std::to_string(slot->durable_txid) +
                           (slot->has_error ? "; last error: " + slot->extra->last_error : "") + ")");
  }
  if (slot->removed && int32_t(slot->done_seq - seq) < 0) return Status::Cancelled("database " + path + " was removed");
  if (!reached() && !slot->removed && stopped_) {
    if (durable) *durable = slot->durable_txid;
    return Status::Cancelled("database " + slot->path() + ": the replicator was closed before this was durable (durable txid " +
                             std::to_string(slot->durable_txid) +
                             (slot->has_error ? "; last error: " + slot->extra->last_error : "") + ")");
  }
  if (durable) *durable = slot->durable_txid;
  // A job that made this request's capture durable answers it, even while
  // the error of an earlier job is still recorded (it is cleared when that
  // job ends, after its checkpoint).
  const bool made_durable = through_errors && int32_t(slot->durable_seq - seq) >= 0;
  if (slot->has_error && !made_durable) return Status(last_code_of(*slot), slot->extra->last_error);
  return Status::OK();
}

Status ReplicatorImpl::GetStatus(const std::string& path, DatabaseStatus* out) {
  SlotPtr slot = Find(AbsolutePath(path));
  if (!slot) return Status::NotFound("database " + path + " is not being replicated");
  StatusOf(*slot, out);
  return Status::OK();
}

void ReplicatorImpl::StatusOf(DbSlot& s, DatabaseStatus* out) {
  // A parked position is read from the position store, without the
  // stripe held (if the database became active meanwhile, its live one).
  LivePosition loaded;
  bool have_loaded = false;
  for (;;) {
    {
      MutexLock l(Stripe(s));
      if (s.pos || have_loaded) break;
    }
    if (!LoadParked(s, &loaded).ok()) loaded = LivePosition();
    have_loaded = true;
  }
  MutexLock l(Stripe(s));
  const LivePosition& pos = s.pos ? *s.pos : loaded;
  *out = DatabaseStatus();
  out->path = s.path();
  out->replica_url = UrlOf(s);
  out->generation = pos.generation();
  out->durable_txid = s.durable_txid;
  out->local_txid = pos.txid;
  out->spooled_segments = s.spooled;
  out->durable_ts_ms = s.durable_txid == pos.txid ? pos.txid_ts_ms : 0;
  out->page_size = pos.page_size;
  out->db_pages = pos.db_pages;
  out->wal_frames = pos.frames;
  out->last_sync_ms = pos.session.last_sync_ms;
  out->generations_started = pos.session.generations;
  out->generation_churn = s.gen_churn;
  out->next_generation_not_before_ms = NextGenerationNotBeforeMs(s.gen_churn, s.last_gen_s);
  out->segments_uploaded = pos.session.segments;
  out->snapshots_uploaded = pos.session.snapshots;
  out->bytes_uploaded = pos.session.bytes;
  out->checkpoints = pos.session.checkpoints;
  out->metrics_group = s.cfg->opts.metrics_group;
  out->notified = s.notified;
  out->pending_since_ms = s.notified_at_ms;
  if (s.has_error) out->last_error = s.extra->last_error;
}

ReplicatorStatus ReplicatorImpl::GetSummary(size_t top_n) {
  ReplicatorStatus out;
  std::vector<SlotPtr> all = reg_.All();
  out.databases = all.size();
  out.jobs_queued = pool_.queued();
  out.worker_threads = pool_.max_threads();
  out.worker_threads_live = pool_.live_threads();
  MemoryParts(&out.memory);
  // Rank by how long a commit has been waiting (notified) or since the
  // last successful sync; keep only top_n full statuses.
  const int64_t now = NowMs();
  std::vector<std::pair<int64_t, DbSlot*>> lag;
  for (const auto& s : all) {
    MutexLock l(Stripe(*s));
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

void ReplicatorImpl::MemoryParts(std::vector<std::pair<std::string, uint64_t>>* parts) {
  parts->clear();
  uint64_t slots = 0, tables = 0;
  reg_.MemoryBytes(&slots, &tables);
  parts->emplace_back("slots", slots);
  parts->emplace_back("registry", tables);
  parts->emplace_back("timers", timers_.MemoryBytes());
  parts->emplace_back("positions", positions_.MemoryBytes());
  parts->emplace_back("live_positions", MallocChunk(sizeof(Position)) * LivePositions());
  parts->emplace_back("connections", conns_.MemoryBytes());
  parts->emplace_back("spool_index", upload_spool_.MemoryBytes());
  parts->emplace_back("recent_objects", recent_.bytes());
  parts->emplace_back("packs", PackMemoryBytes());
  parts->emplace_back("zstd", ZstdPoolBytes());  // idle compression contexts, process-wide
  ProcessMemory(parts);
}

std::string ReplicatorImpl::Metrics() {
  std::vector<std::pair<std::string, uint64_t>> memory;
  MemoryParts(&memory);
  for (const auto& [part, bytes] : memory) m_.Set("replite_memory_bytes", {{"part", part}}, double(bytes));
  m_.Set("replite_databases", {}, double(reg_.size()));
  m_.Set("replite_jobs_queued", {}, double(pool_.queued()));
  m_.Set("replite_worker_threads", {}, double(pool_.live_threads()));
  m_.Set("replite_worker_threads_peak", {}, double(pool_.peak_threads()));
  m_.Set("replite_timers_armed", {}, double(timers_.size()));
  m_.Set("replite_spool_bytes", {}, double(upload_spool_.bytes()));
  m_.Set("replite_connections_kept", {}, double(conns_.size()));
  m_.Set("replite_connections_refused", {}, double(conns_.refused()));
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

Status ReplicatorImpl::Close() {
  if (closed_.exchange(true)) return Status::OK();
  std::vector<SlotPtr> all = reg_.All();
  // Final capture of everything committed so far.
  std::vector<std::pair<SlotPtr, uint32_t>> waits;
  for (auto& s : all) {
    uint32_t seq;
    {
      MutexLock l(Stripe(*s));
      seq = ++s->req_seq;
      s->timer_seq = 0;
    }
    Kick(s, false);
    waits.push_back({s, seq});
  }
  Status first;
  for (const auto& w : waits) {
    const SlotPtr& s = w.first;  // not a structured binding: clang 14 cannot capture one in a lambda
    const uint32_t seq = w.second;
    {
      MutexLock l(Stripe(*s));
      Cv(*s).wait(l.native(), [&]() REQUIRES(s->stripe()) { return int32_t(s->done_seq - seq) >= 0 || s->removed; });
      if (s->has_error && first.ok()) first = Status(last_code_of(*s), "close: " + s->extra->last_error);
    }
    MutexLock hl(hook_mu_);
    std::vector<std::pair<sqlite3*, void*>> hooks;
    {
      MutexLock l(Stripe(*s));
      hooks = TakeHooks(*s);
    }
    Unhook(hooks);
  }
  // What the final captures put in packs is stored, and every pack's
  // members moved to their databases' own objects.
  PackHousekeeping(true);
  watch_.Stop();
  timers_.Stop();
  pool_.Drain();
  // Successors may take the replicas over at once.
  if (leases_) leases_->Stop();
  // No job runs any more: release the threads still waiting in Sync or
  // WaitDurable (those whose transactions the final capture made durable
  // return OK, the others kCancelled).
  stopped_ = true;
  reg_.NotifyAll();
  conns_.Clear();
  Status st = positions_.Flush();
  instance_.lock.Reset();  // the state dir is free for another Replicator
  return first.ok() ? st : first;
}

StoreConfig ReplicatorImpl::MakeStoreConfig(const ReplicatorOptions& o) {
  StoreConfig c;
  c.max_connections = o.max_connections;
  c.max_connections_per_host = o.max_connections_per_host;
  c.ca_file = o.ca_file;
  c.verify_tls = o.verify_tls;
  return c;
}

void ReplicatorImpl::DeclareMetrics() {
  m_.Gauge("replite_databases", "Databases being replicated.");
  m_.Gauge("replite_memory_bytes",
           "Memory by part: slots, registry, timers, positions, connections, spool_index, recent_objects, packs "
           "(estimates of the library's structures), heap_in_use, heap_free, sqlite_all, rss (process-wide).");
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
  m_.Counter("replite_memory_trims_total",
             "Times free memory was returned to the system after a burst of connection opens (core/burst_trim.h).");
  m_.Counter("replite_syncs_total", "Sync jobs that captured or checked a database, by result.");
  m_.Counter("replite_transactions_total", "Transactions captured and made durable.");
  m_.Counter("replite_segments_uploaded_total", "Segments written to the store.");
  m_.Counter("replite_snapshots_uploaded_total", "Snapshots written to the store.");
  m_.Counter("replite_uploaded_bytes_total", "Bytes of segments and snapshots written to the store.");
  m_.Counter("replite_generations_started_total", "New generations (each one logged with its reason).");
  m_.Counter("replite_compacted_objects_total",
             "Compacted objects written (compaction levels, docs/FORMAT.md): each merges a closed range of a "
             "database's objects of the level below.");
  m_.Counter("replite_compaction_inputs_total",
             "Objects compaction merged, by where it read them: source=\"local\" (kept in memory since this "
             "process stored them) or \"store\" (a GET).");
  m_.Counter("replite_generation_churn_total",
             "Databases reported for starting generations in quick succession (each within 10 minutes of the "
             "previous one; see the log line for the cause and the fix).");
  m_.Counter("replite_epoch_checksums_total",
             "WAL epochs replite did not see start, checked by reading the whole database under the write lock, by "
             "result (adopted, or mismatch: a new generation follows).");
  m_.Counter("replite_checkpoints_total", "Checkpoints run by the library.");
  m_.Counter("replite_packs_stored_total",
             "Packs stored (packing, DatabaseOptions::pack_window_ms): each holds the segments of many databases.");
  m_.Counter("replite_pack_members_total", "Segments stored inside packs.");
  m_.Counter("replite_packs_unpacked_total",
             "Packs whose members were moved to their databases' own objects, then deleted.");
  m_.Counter("replite_segments_spooled_total", "Segments written to the local spool because the store failed.");
  m_.Counter("replite_spool_full_total", "Captures paused because the spool was full (changes wait in the WAL).");
  m_.Histogram("replite_sync_duration_seconds", "Duration of sync jobs that captured something.",
               {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  m_.Histogram("replite_commit_to_durable_seconds", "From Notify/WAL hook to the commit being durable.",
               {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
}


void ReplicatorImpl::Log(const std::string& line) {
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

Status Replicator::Open(const ReplicatorOptions& options, std::unique_ptr<Replicator>* out) {
  if (options.worker_threads < 1 || options.worker_threads > 256)
    return Status::InvalidArgument("worker_threads must be 1..256");
  if (options.lease_ttl_ms != 0 && (options.lease_ttl_ms < 1000 || options.lease_ttl_ms > 3600 * 1000))
    return Status::InvalidArgument("lease_ttl_ms must be 0 (no leases) or 1000..3600000 (got " +
                                   std::to_string(options.lease_ttl_ms) + ")");
  if (options.fd_budget < kFdsPerJob)
    return Status::InvalidArgument("fd_budget must be at least " + std::to_string(kFdsPerJob) +
                                   " (one sync job opens up to that many files)");
  if (options.malloc_arena_max < 0) return Status::InvalidArgument("malloc_arena_max must be 0 (leave malloc as it is) or more");
#if defined(__GLIBC__)
  if (options.malloc_arena_max > 0) mallopt(M_ARENA_MAX, options.malloc_arena_max);
#endif
  auto r = std::make_unique<ReplicatorImpl>(options);
  Status s = r->Init();
  if (!s.ok()) return s;
  *out = std::move(r);
  return Status::OK();
}

const char* Version() { return REPLITE_VERSION; }

}  // namespace replite
