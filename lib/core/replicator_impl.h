// ReplicatorImpl: the Replicator. Its parts, one file each:
//  - core/db_registry.h   the databases: slots, path/URL/file -> slot;
//  - core/replicator.cc   the public facade (Open, Add, Remove, Notify, Attach,
//                         Sync/WaitDurable/Snapshot/Checkpoint, status, metrics, Close);
//  - core/scheduler.cc    the per-database job state machine (SetJobState is
//                         the one function that changes DbSlot::state), timers,
//                         dispatch of jobs to the shared pool, and the memory
//                         trim after a burst (core/burst_trim.h);
//  - core/sync_job.cc     what a job does: capture (core/wal_capture.h), ship,
//                         spool, checkpoint, retention, lease, positions.
//
// Per database: at most one job queued or running at a time (DbSlot::state);
// a request that arrives while a job runs sets `rerun`, so nothing is
// missed. Jobs run on the shared ThreadPool; polls, notify batches and
// quiet checkpoints are entries in the one TimerQueue. Slot fields are
// guarded by the stripe lock of the slot's id (DbSlot::stripe(): no mutex
// per database).
// Lock requirements are annotations (util/thread_annotations.h: REQUIRES,
// GUARDED_BY), checked by the clang stage (scripts/thread_safety.sh).
//
// Thread-safety: the Replicator methods may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <semaphore>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/burst_trim.h"
#include "core/conn_cache.h"
#include "core/db_registry.h"
#include "core/db_slot.h"
#include "core/dir_watch.h"
#include "core/instance.h"
#include "core/position_store.h"
#include "core/wal_capture.h"
#include "exec/thread_pool.h"
#include "exec/timer_queue.h"
#include "metrics/metrics.h"
#include "replica/lease.h"
#include "replica/pack_catalog.h"
#include "replica/packer.h"
#include "replica/replica_ref.h"
#include "replica/upload_spool.h"
#include "replite/replite.h"
#include "replite/sys/env.h"
#include "store/store_registry.h"
#include "util/thread_annotations.h"

struct sqlite3;

namespace replite {

// With packing on, a segment of at most this many bytes goes into a pack
// (larger ones are stored per database); captures compress those at
// pack_compression_level.
inline uint64_t PackMemberMaxBytes(const DatabaseOptions& o) { return o.pack_max_bytes / 4; }

// What a timer entry (exec/timer_queue.h) is for.
enum class TimerKind : uint8_t {
  kHousekeeping,  // position flush, idle connections (no database)
  kPoll,          // a poll of the database; seq: its DbSlot::timer_seq when armed (stale otherwise)
  kNotify,        // a Notify/WAL hook batch is due (DbSlot::notify_pending)
  kWake,          // a change wakeup (inotify) batch is due (DbSlot::wake_pending)
  kQuiet,         // wake up, the job decides (quiet checkpoint, retry after a failure); seq:
                  // kQuietCheckpointTimer for a notified database's quiet timer (DbSlot::quiet_armed)
  kFirstSyncs,    // start the first syncs of new databases once Adds pause (no database)
  kPack,          // a pack's window passed (housekeeping retries a failed one); id: the pack group
};
constexpr uint64_t kQuietCheckpointTimer = 1;
constexpr int kFdsPerJob = 16;                   // upper bound of descriptors one sync job opens
constexpr int64_t kMaxPollMs = 30000;            // idle databases back off to this
constexpr int64_t kConnIdleUs = 10 * 1000 * 1000; // a kept connection is closed after this long unused
// Objects kept for compaction (RecentObjects) longer than this are dropped:
// a database that went idle is not compacted until it changes again.
constexpr int64_t kRecentMaxAgeUs = 120ll * 1000 * 1000;
// A new database's first sync (its snapshot) waits until no Add came for
// kFirstSyncQuietUs, or at most kFirstSyncMaxWaitUs: adding 100,000 new
// databases (1.5-2.5 s on 2 cores) is not slowed by their first-snapshot
// storm on the same cores (with 1 s, the storm began mid-loop and the loop
// took 9.6 s). Nothing is acknowledged for a database before its first sync.
constexpr int64_t kFirstSyncQuietUs = 100 * 1000, kFirstSyncMaxWaitUs = 5000 * 1000;
// Generation churn: a generation started within this long of the previous
// one counts as quick; from kChurnReport quick ones in a row the database is
// reported and further generations wait (kChurnFirstDelayMs doubling).
constexpr uint32_t kChurnWindowS = 600;
constexpr uint8_t kChurnReport = 2;
constexpr int64_t kChurnFirstDelayMs = 30 * 1000, kChurnMaxDelayMs = 15 * 60 * 1000;
// How long a job waits for its database's segments in a pack to be stored
// before something that must follow them (a checkpoint, a snapshot).
constexpr int64_t kPackWaitMs = 30 * 1000;
// A database that did not change for this long gives its Position back to
// the position store (core/slot_park.cc); one that changes more often keeps
// it (no positions.db read per commit).
constexpr int64_t kParkAfterMs = 10 * 1000;

// When a database churning generations may start the next one (0: now).
int64_t NextGenerationNotBeforeMs(uint8_t churn, uint32_t last_gen_s);

class ReplicatorImpl;

// Sets the slot's parked_* fields from the position it parks (core/slot_park.cc).
void SetParked(DbSlot& s, const Position& p) REQUIRES(s.stripe());

// The context of a WAL hook installed by Attach.
struct HookCtx {
  ReplicatorImpl* r;
  uint32_t id;
  std::string path;
};

class ReplicatorImpl final : public Replicator {
 public:
  explicit ReplicatorImpl(const ReplicatorOptions& o);
  ~ReplicatorImpl() override;
  Status Init();

  // ---- facade (core/replicator.cc) ----
  Status Add(const std::string& path) override {
    return default_cfg_->opts.replica_url.empty() ? AddWith(path, default_cfg_) : Add(path, default_cfg_->opts);
  }
  Status Add(const std::string& path, const DatabaseOptions& o) override;
  std::vector<Status> AddMany(const std::vector<std::string>& paths) override {
    return default_cfg_->opts.replica_url.empty() ? AddManyWith(paths, default_cfg_)
                                                  : AddMany(paths, default_cfg_->opts);
  }
  std::vector<Status> AddMany(const std::vector<std::string>& paths, const DatabaseOptions& o) override;
  Status Remove(const std::string& raw_path) override;
  std::vector<std::string> Databases() override;
  Status Notify(const std::string& path) override;
  Status Attach(const std::string& path, sqlite3* conn) override;
  Status Detach(const std::string& path, sqlite3* conn) override;
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
  Status GetStatus(const std::string& path, DatabaseStatus* out) override;
  ReplicatorStatus GetSummary(size_t top_n) override;
  std::string Metrics() override;
  Status Close() override;

 private:
  // What a job was asked to do.
  struct SyncRequest {
    bool forced = false;    // a request or a commit: capture even if the WAL stat did not change
    bool snap = false, ckpt = false, trunc = false;
    bool probe = false;     // the application waits: try the store even during its backoff
    uint32_t seq = 0;       // the slot's req_seq when the job started (requests it answers)
    int64_t since_ms = 0;   // the first Notify it answers (NowMs; 0: none), where a pack window starts
  };

  // ---- facade helpers (core/replicator.cc) ----
  Status OpenStore(const ReplicaUrl& url, std::shared_ptr<ObjectStore>* out, std::shared_ptr<StoreHealth>* health);
  Status ConfigFor(const DatabaseOptions& o, RefPtr<const DbConfig>* out);
  // The store of a database's own replica URL (none if empty).
  Status OpenTarget(const std::string& replica_url, std::shared_ptr<const DbTarget>* out);
  Status AddWith(const std::string& raw_path, RefPtr<const DbConfig> cfg);
  std::vector<Status> AddManyWith(const std::vector<std::string>& paths, const RefPtr<const DbConfig>& cfg);
  // An Add between its steps: what PrepareAdd loaded for FinishAdd (the
  // header check, for a database without a saved position, in between).
  struct PendingAdd {
    SlotPtr slot;  // not shared yet
    Position pos;
    bool found = false;  // a saved position
    int64_t wal_size = -1, wal_mtime_ns = -1;
  };
  Status PrepareAdd(const std::string& raw_path, RefPtr<const DbConfig> cfg, PendingAdd* a);
  Status FinishAdd(PendingAdd& a);
  void OnDirEvent(const std::string& dir, const char* name);
  void NotifySlot(DbSlot& slot);
  static int WalHook(void* arg, sqlite3*, const char* name, int);
  void NotifyById(uint32_t id, const std::string& path);
  static std::vector<std::pair<sqlite3*, void*>> TakeHooks(DbSlot& slot) REQUIRES(slot.stripe());
  static void Unhook(const std::vector<std::pair<sqlite3*, void*>>& hooks);
  Status Request(const std::string& path, bool snapshot, bool checkpoint, bool truncate, uint64_t* durable,
                 int64_t timeout_ms, bool through_errors);
  void StatusOf(DbSlot& s, DatabaseStatus* out);
  static StoreConfig MakeStoreConfig(const ReplicatorOptions& o);
  void DeclareMetrics();
  void Log(const std::string& line);

  int64_t NowMs() { return env_->NowMicros() / 1000; }
  // Monotonic time, from the Env (timers, store backoffs, kept connections).
  int64_t NowMono() { return env_->MonotonicMicros(); }
  static Code last_code_of(const DbSlot& s) REQUIRES(s.stripe()) { return s.extra ? s.extra->last_code : Code::kInternal; }
  // With compaction off nothing would take what is kept: no copies then.
  ReplicaRef RefOf(const DbSlot& s) const {
    ReplicaRef r = ReplicaRefOf(s);
    if (!s.cfg->opts.compaction_levels_ms.empty()) r.recent = &recent_;
    r.packs = &pack_indexes_;
    return r;
  }
  std::string UrlOf(const DbSlot& s) const { return RefOf(s).url; }
  // The store's circuit breaker alone (no string built: an idle poll needs only this).
  StoreHealth& HealthOf(const DbSlot& s) const { return s.target() ? *s.target()->health : *s.cfg->health; }
  SlotPtr Find(const std::string& abs_path) { return reg_.Find(abs_path); }
  SlotPtr ById(uint32_t id) { return reg_.ById(id); }
  Mutex& Stripe(const DbSlot& s) RETURN_CAPABILITY(s.stripe()) { return s.stripe(); }
  std::condition_variable& Cv(const DbSlot& s) { return s.cv(); }

  // ---- jobs and timers (core/scheduler.cc) ----
  // The one place DbSlot::state changes (caller holds the slot's stripe).
  void SetJobState(DbSlot& s, JobState to) REQUIRES(s.stripe());
  static int64_t Jitter(int64_t interval_ms);
  static int64_t ResumedPollInterval(DbSlot& s) REQUIRES(s.stripe());
  void ArmPoll(DbSlot& s, int64_t delay_ms) REQUIRES(s.stripe());
  void ArmQuiet(DbSlot& s, int64_t delay_ms) REQUIRES(s.stripe());
  void Kick(const SlotPtr& s, bool bump);
  void Dispatch(const SlotPtr& s);
  void ArmTimer(int64_t delay_us, TimerKind kind, uint32_t id = 0, uint64_t seq = 0);
  static constexpr int64_t kBatchTickUs = 10000;
  void ArmBatched(int64_t window_ms, TimerKind kind, uint32_t id);
  void OnTimer(const Timer& t);
  void TrimAfterBurst();
  void QueueFirstSync(const SlotPtr& s);
  void StartFirstSyncs();
  void RunJob(SlotPtr s);

  // ---- what a job does (core/sync_job.cc) ----
  Status DoSync(DbSlot& s, const SyncRequest& sr, bool* captured, bool* changed, int64_t* durable_ms);
  Status ResolveTxidFloor(DbSlot& s, const ReplicaRef& ref, uint64_t* floor);
  Status ForgetExpectedRestart(DbSlot& s, const ReplicaRef& ref, Position pos, int64_t wal_size, int64_t wal_mtime);
  Status GenerationDeferred(DbSlot& s, int64_t now);
  void ReportChurn(DbSlot& s, uint8_t churn, const std::string& reason, int64_t now);
  void Compact(DbSlot& s, const ReplicaRef& ref, const Position& pos, int64_t now);
  Status EnsureLease(DbSlot& s, const ReplicaRef& ref);
  bool TakeOverPending(DbSlot& s);
  Status DropSpooled(DbSlot& s, const ReplicaRef& ref);
  void ReleaseLease(DbSlot& s);
  void CountEpochChecksum(const DbSlot& s, const CaptureResult& r);
  // The memory report's parts (ReplicatorStatus::memory).
  void MemoryParts(std::vector<std::pair<std::string, uint64_t>>* parts);
  // Everything up to `txid` is durable (unless segments wait in the spool,
  // or in a pack: then OnPackStored answers `seq`); so is every request up
  // to `seq`, whose WaitDurable callers wake now.
  // With `pos`: the slot's live position becomes it, and its last sync
  // time `sync_ms`, in the same critical section (a status read right
  // after WaitDurable sees what was made durable).
  void PublishDurable(DbSlot& s, uint64_t txid, uint32_t seq, int64_t* durable_ms, const Position* pos = nullptr,
                      int64_t sync_ms = 0);
  static void CleanupCapture(const CaptureResult& res);
  // `sr`: the job's request (a packed capture answers its seq when stored).
  Status Ship(DbSlot& s, const ReplicaRef& ref, const SyncRequest& sr, CaptureResult& res, Status* store_err,
              int64_t wal_size, int64_t wal_mtime);
  Status StoreDownStatus(const ReplicaRef& ref);
  Status DrainSpool(DbSlot& s, const ReplicaRef& ref, bool probe);
  Status Upload(DbSlot& s, const ReplicaRef& ref, const CaptureResult& res);

  // ---- parked positions (core/slot_park.cc) ----
  // An idle database keeps no Position in memory (DbSlot::pos null): the
  // position store holds it. Park when it may (caller holds the stripe);
  // Unpark loads it back before a job needs it (a job's thread, the slot
  // not idle, so nothing parks it meanwhile).
  bool Parkable(const DbSlot& s) REQUIRES(s.stripe());
  bool ParkableBetweenJobs(const DbSlot& s) REQUIRES(s.stripe());
  void Park(DbSlot& s) REQUIRES(s.stripe());
  void Unpark(DbSlot& s, const LivePosition& pos) REQUIRES(s.stripe());
  Status LoadParked(DbSlot& s, LivePosition* pos);
  // A removed database's session state ends with its Add: its saved row is
  // written again without it (the lease it names was released), so that
  // adding it again starts from zero, as in a new Replicator.
  void ForgetSession(DbSlot& s);
  // Parks the active databases idle for kParkAfterMs (housekeeping).
  void ParkIdle();
  // Active databases' positions in memory (the "live_positions" memory part).
  size_t LivePositions();
  // Frames of the current WAL epoch not yet checkpointed (a notified
  // database's quiet checkpoint is due once writes stop).
  static bool HasUncheckpointedFrames(const DbSlot& s) REQUIRES(s.stripe()) {
    return s.pos ? s.pos->frames_to_checkpoint() : s.parked_frames;
  }

  // ---- packing (core/pack_jobs.cc) ----
  struct PackGroup;
  // The database's pack group (created on first use); null when packing is off for it.
  std::shared_ptr<PackGroup> PackGroupOf(const DbSlot& s, const ReplicaRef& ref);
  // Hands the capture's segment to the database's pack. *handled: the
  // segment is in a pack (OK) or must not be shipped otherwise now (error:
  // older segments of the database wait in a pack that cannot take more).
  Status ShipPacked(DbSlot& s, const ReplicaRef& ref, const SyncRequest& sr, CaptureResult& res, int64_t wal_size,
                    int64_t wal_mtime, bool* handled);
  // Until the database's segments in packs are stored (storing them now).
  Status WaitPacked(DbSlot& s, int64_t timeout_ms);
  void OnPackStored(PackGroup& g, std::vector<PackMember>& members, const std::string& key, uint64_t bytes);
  void FlushPackGroup(uint32_t id, bool all);
  // Housekeeping: retries failed packs, unpacks (now: everything, at Close).
  void PackHousekeeping(bool now);
  uint64_t PackMemoryBytes();

  ReplicatorOptions opts_;
  Env* env_;
  StoreRegistry stores_;
  PositionStore positions_;
  std::string spool_dir_;
  std::string unpack_dir_;  // state_dir/unpack: packs waiting to be unpacked past the memory budget (Packer)
  // Bytes of every pack group's copies in unpack_dir_ (at most spool_cap).
  std::shared_ptr<std::atomic<uint64_t>> spill_used_ = std::make_shared<std::atomic<uint64_t>>(0);
  RefPtr<const DbConfig> default_cfg_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> stopped_{false};  // Close ended every job: waiters are released
  // Serializes changes of WAL hooks (Attach against Remove/Close/Detach of
  // the same database); taken before a stripe, never by the hook itself.
  Mutex hook_mu_;
  Mutex cfg_mu_;
  // Databases added with equal options share a DbConfig: by those options.
  // Held here too; ConfigFor forgets the ones only this map holds.
  std::map<std::string, RefPtr<const DbConfig>> configs_ GUARDED_BY(cfg_mu_);
  size_t configs_prune_at_ GUARDED_BY(cfg_mu_) = 64;
  Mutex wrap_mu_;
  struct Wrapped {
    std::shared_ptr<ObjectStore> store;
    std::shared_ptr<StoreHealth> health;
  };
  std::unordered_map<ObjectStore*, Wrapped> wrapped_ GUARDED_BY(wrap_mu_);
  UploadSpool upload_spool_;
  // Segments and compacted objects just stored, for compaction to merge
  // without GETting them back: an eighth of the memory cap, objects up to
  // 1 MiB (replica/recent_objects.h).
  mutable RecentObjects recent_{opts_.memory_cap / 8, 1 << 20};
  // Indexes of packs this process read or wrote (readers of a replica find
  // its segments in packs through it; replica/pack_catalog.h).
  mutable PackIndexCache pack_indexes_;
  Mutex packs_mu_;
  std::vector<std::shared_ptr<PackGroup>> pack_groups_ GUARDED_BY(packs_mu_);
  std::map<std::string, uint32_t> pack_group_ids_ GUARDED_BY(packs_mu_);
  // Held by the one compaction merge allowed past its job's share of the
  // memory cap, up to an eighth of it (replica/compactor.h).
  std::mutex large_merge_mu_;
  DirWatch watch_;                       // stopped in Close, before the timers
  std::atomic<bool> watch_warned_{false};
  Instance instance_;                    // holds state_dir/lock
  std::unique_ptr<LeaseKeeper> leases_;  // after the stores it points to

  DbRegistry reg_;
  BurstTrim burst_trim_;
  // New databases waiting for their first sync (QueueFirstSync).
  Mutex first_mu_;
  std::vector<SlotPtr> first_syncs_ GUARDED_BY(first_mu_);
  int64_t first_since_us_ GUARDED_BY(first_mu_) = 0;  // when the oldest was queued
  int64_t last_add_us_ GUARDED_BY(first_mu_) = 0;
  bool first_armed_ GUARDED_BY(first_mu_) = false;    // a kFirstSyncs timer entry is armed
  std::atomic<uint64_t> next_timer_seq_{1};
  // The ids of the databases with a Position in memory (core/slot_park.cc:
  // ParkIdle looks at these only, not at the 100,000; an id may be listed
  // twice, or after it parked, until the next ParkIdle).
  Mutex live_mu_;
  std::vector<uint32_t> live_ids_ GUARDED_BY(live_mu_);

  replite::Metrics m_;
  std::counting_semaphore<1 << 20> fd_tokens_;
  ThreadPool pool_;
  ConnCache conns_;
  TimerQueue timers_;  // last: its thread stops first
};

}  // namespace replite
