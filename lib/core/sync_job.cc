// What a Replicator job does for one database (DoSync): one stat of the WAL
// when nothing is due; otherwise capture (core/wal_capture.h), ship to the
// store or spool, drain the spool, checkpoint once durable, save the
// position, apply retention; and the lease, generation and churn rules
// around it. Runs on a pool worker, one job per database at a time
// (core/scheduler.cc).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/replicator_impl.h"
#include "format/layout.h"
#include "replica/compactor.h"
#include "replica/replica_writer.h"
#include "replica/retention.h"
#include "store/attempt_scope.h"

namespace replite {

int64_t NextGenerationNotBeforeMs(uint8_t churn, uint32_t last_gen_s) {
  if (churn < kChurnReport) return 0;
  const int shift = std::min(churn - kChurnReport, 5);
  return int64_t(last_gen_s) * 1000 + std::min(kChurnMaxDelayMs, kChurnFirstDelayMs << shift);
}

// The replica's last txid, so that a new generation continues the txid
// sequence instead of colliding with it: after a crash the saved position
// may lag what was uploaded (and reported durable), and a generation whose
// manifest write was interrupted is only found by listing. One LIST of
// the replica's generations, done only when a generation is about to
// start (never for an idle database or a plain restart).
Status ReplicatorImpl::ResolveTxidFloor(DbSlot& s, const ReplicaRef& ref, uint64_t* floor) {
  uint64_t max_txid = 0;
  Status st = ReplicaWriter(ref).LastStoredTxid(&max_txid);
  if (!st.ok()) return st;
  // Spooled segments are on their way to the store (after a crash they
  // may even be ahead of the saved position).
  std::vector<SpoolEntry> spooled;
  st = upload_spool_.List(s.path(), ref.url, &spooled);
  if (!st.ok()) return st;
  for (const auto& e : spooled) max_txid = std::max(max_txid, e.last_txid);
  *floor = max_txid;
  return Status::OK();
}

Status ReplicatorImpl::DoSync(DbSlot& s, const SyncRequest& sr, bool* captured, bool* changed, int64_t* durable_ms) {
  const bool forced = sr.forced, snap = sr.snap, ckpt = sr.ckpt, trunc = sr.trunc;
  uint8_t churn = 0;
  // The position, unless parked (core/slot_park.cc): then the cheap path
  // below decides from what the slot keeps of it, and anything more loads it.
  Position pos;
  bool parked, parked_valid, parked_frames;
  uint32_t parked_snap_s;
  int64_t last_change, cached_size, cached_mtime;
  uint32_t spooled;
  bool had_error, pos_checked;
  {
    MutexLock l(Stripe(s));
    parked = !s.pos;
    if (!parked) pos = *s.pos;
    parked_valid = s.parked_valid;
    parked_frames = s.parked_frames;
    parked_snap_s = s.parked_snap_s;
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
  if (!parked && !pos.valid() && pos.txid > 0 && !sr.probe && !closed_) {
    Status d = GenerationDeferred(s, now);
    if (!d.ok()) return d;
  }
  // A hot database's connection is kept between syncs; it goes back to
  // the cache unless a capture failed (then it is closed and reopened).
  std::unique_ptr<KeptDb> conn;
  struct KeepConn {
    ReplicatorImpl* r;
    DbSlot& s;
    std::unique_ptr<KeptDb>& conn;
    ~KeepConn() {
      if (conn) r->conns_.Put(s.id, s.path(), std::move(conn), r->NowMono());
    }
  } keep{this, s, conn};
  // A job the application asked for (Notify, Sync) captures whatever the
  // stat below says: it takes the kept connection now, whose WAL it stats
  // by SQLite's descriptor (no path lookup: core/sqlite_files.h WalStat).
  if (forced) conn = conns_.Take(s.id, s.path());
  // The cheap part of a poll: one stat of the WAL (taken before capture,
  // so a commit racing the capture shows up as a change next time).
  struct stat st;
  int64_t wal_size = 0, wal_mtime = 0;
  const bool by_fd = conn && conn->conn.is_open() && conn->wal_stat.Stat(conn->conn.raw(), &st);
  if (by_fd || ::stat((s.path() + "-wal").c_str(), &st) == 0) {
    wal_size = st.st_size;
    wal_mtime = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  } else if (::stat(s.path().c_str(), &st) == 0) {
    // No WAL: a writer may have checkpointed and deleted it; the
    // database file tells (a second stat only in that case).
    wal_size = -1 - st.st_size;
    wal_mtime = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  }
  // Snapshots only for databases that changed since the last one (an
  // idle database makes no store requests at all), and not while the
  // store fails (a snapshot is not spooled).
  // Quiet: nothing captured for a while and the WAL unchanged since the
  // last look (a database just written to is not quiet, also not on its
  // first sync after a restart, when last_change is still 0).
  const bool wal_unchanged = wal_size == cached_size && wal_mtime == cached_mtime;
  bool snapshot_due, quiet_due;
  auto decide = [&] {
    const bool valid = parked ? parked_valid : pos.valid();
    const bool snap_pending = parked ? parked_snap_s != 0 && now / 1000 >= int64_t(parked_snap_s)
                                     : pos.txid > pos.snapshot_txid && now - pos.snapshot_ms >= o.snapshot_interval_ms;
    snapshot_due = valid && snap_pending && spooled == 0 && !health.down();
    const bool frames = parked ? parked_frames : pos.frames_to_checkpoint();
    quiet_due = valid && frames && wal_unchanged && now - last_change >= o.checkpoint_quiet_ms;
    return !forced && valid && !snap && !ckpt && !trunc && !snapshot_due && !quiet_due && wal_unchanged;
  };
  bool nothing_new = decide();
  if (parked && !(nothing_new && spooled == 0)) {
    // More to do than a look: the position back in memory (the slot is
    // not idle while its job runs, so nothing parks it meanwhile), and the
    // decision redone from it (a parked snapshot time is rounded down). A
    // parked position is never an abandoned generation's (Parkable).
    LivePosition loaded;
    Status ls = LoadParked(s, &loaded);
    if (!ls.ok()) return ls;
    {
      MutexLock l(Stripe(s));
      if (!s.pos) Unpark(s, loaded);
      pos = *s.pos;
    }
    parked = false;
    nothing_new = decide();
  }
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
  req.db_path = s.path();
  req.enable_wal = o.enable_wal;
  req.zstd_level = o.compression_level;
  if (o.pack_window_ms > 0) {
    req.pack_member_max_bytes = PackMemberMaxBytes(o);
    req.pack_zstd_level = o.pack_compression_level;
  }
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
  // Nor while captured frames wait in a pack (core/pack_jobs.cc): the
  // capture checkpoints what it has captured before, so store that first.
  Status pack_err;
  if (req.checkpoint && !(pack_err = WaitPacked(s, kPackWaitMs)).ok()) req.checkpoint = req.truncate = false;

  if (!conn) conn = conns_.Take(s.id, s.path());
  req.conn = &conn->conn;
  req.frame_index = &conn->frames;
  req.pin = &conn->pin;

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
  if (conn && conn->conn.is_open()) conn->wal_stat.Prove(conn->conn.raw(), s.path());  // (once a connection)
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
      Log("database " + s.path() + ": the saved position (txid " + std::to_string(pos.txid) +
          ") lags the replica (txid " + std::to_string(floor) + "): a crash after uploads it had not saved");
      pos.txid = floor;
      req.allow_new_generation = true;
      req.new_generation = NewGenerationNumber(now);
    }
    cs = capture();
    if (!cs.ok()) return cs;
  }
  if (res.drift) {
    Log("database " + s.path() + ": " + res.reason + "; starting a new generation");
    pos.gen = 0;
    req.want_snapshot = false;
    res.needs_new_generation = true;
  }
  if (res.needs_new_generation) {
    if (!sr.probe && !closed_) {
      Status d = GenerationDeferred(s, now);
      if (!d.ok()) {
        // Abandoned until then: later syncs return at once (above).
        MutexLock l(Stripe(s));
        s.pos->gen = 0;
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
  cs = Ship(s, ref, sr, res, &store_err, wal_size, wal_mtime);
  CleanupCapture(res);
  if (!cs.ok()) return cs;
  // Durable now: the application learns it before the checkpoint below
  // (which may wait for SQLite's fsyncs) runs.
  // A new generation's bookkeeping (counts, churn) is recorded at the end
  // of the job: its waiters are answered then, so that a status read right
  // after WaitDurable sees it.
  // Transactions are counted before waiters wake (a metrics read right
  // after WaitDurable sees them), and again for what the checkpoint's
  // capture adds.
  uint64_t counted_txid = pos.txid;
  auto count_transactions = [&] {
    if (res.pos.txid <= counted_txid || res.new_generation) return;
    m_.Add("replite_transactions_total", {{"group", o.metrics_group}}, double(res.pos.txid - counted_txid));
    counted_txid = res.pos.txid;
  };
  count_transactions();
  PublishDurable(s, res.pos.txid, res.new_generation ? 0 : sr.seq, durable_ms, &res.pos, now);
  const bool epoch_full = may_checkpoint && !res.pos.expect_restart && res.wal_frames >= o.checkpoint_pages;
  bool want_ckpt = (req.checkpoint && (res.has_segment || res.has_snapshot)) || (epoch_full && !req.checkpoint);
  if (want_ckpt) {
    // Frames in a pack not yet stored are not checkpointed: store it first.
    Status ws = WaitPacked(s, kPackWaitMs);
    if (!ws.ok()) {
      pack_err = ws;
      want_ckpt = false;
    }
  }
  if (want_ckpt) {
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
      ts = Ship(s, ref, sr, tail, &store_err, wal_size, wal_mtime);
      if (ts.ok()) {
        res.pos = tail.pos;
        res.checkpointed_frames = tail.checkpointed_frames;
        res.has_segment |= tail.has_segment;
      }
    }
    CleanupCapture(tail);
    if (!ts.ok()) Log("database " + s.path() + ": checkpoint deferred: " + ts.ToString());
  }
  *changed = res.has_segment || res.has_snapshot;
  bool save_pos;
  {
    MutexLock l(Stripe(s));
    *s.pos = res.pos;
    // With segments still in a pack, the pack's store saves their position.
    save_pos = s.pack_pending == 0;
    // Shipped from it, or a generation started above the store's txids.
    if (pos_checked || *changed) s.pos_checked = true;
    s.wal_size = wal_size;
    s.wal_mtime_ns = wal_mtime;
    if (*changed) s.last_change_ms = now;
    SessionState& ss = s.pos->session;
    if (res.checkpointed_frames >= 0) {
      ss.checkpoints++;
      s.last_change_ms = now;  // no quiet checkpoint right after one
    }
    ss.last_sync_ms = now;
    if (res.new_generation) {
      ss.generations++;
      const uint32_t now_s = uint32_t(now / 1000);
      const bool quick = s.last_gen_s != 0 && now_s - s.last_gen_s < kChurnWindowS;
      s.gen_churn = quick ? uint8_t(std::min(255, s.gen_churn + 1)) : 0;
      s.last_gen_s = now_s;
      churn = s.gen_churn;
    }
  }
  if (churn >= kChurnReport && (churn & (churn - 1)) == 0) ReportChurn(s, churn, res.reason, now);
  if (save_pos) positions_.Put(s.path(), ref.url, res.pos, wal_size, wal_mtime);
  const Labels group{{"group", o.metrics_group}};
  count_transactions();
  if (res.new_generation) m_.Add("replite_generations_started_total", group);
  if (res.checkpointed_frames >= 0) m_.Add("replite_checkpoints_total", group);
  PublishDurable(s, res.pos.txid, sr.seq, durable_ms);  // what the checkpoint's capture added
  if (*changed && !res.new_generation) Compact(s, ref, res.pos, now);
  // Retention has nothing to delete right after the first snapshot of a
  // replica's first generation (a new database).
  if (res.has_snapshot && !(res.new_generation && pos.txid == 0)) {
    RetentionStats rs;
    Status rst = ApplyRetention(ref.store, ref.prefix, now, o.retention_ms, &rs,
                                [&] { return leases_->VerifyHeld(ref.store, ref.prefix); });
    if (!rst.ok()) {
      Log("database " + s.path() + ": retention: " + rst.ToString());
    } else if (rs.objects_deleted > 0 || rs.abandoned_removed > 0) {
      Log("database " + s.path() + ": retention deleted " + std::to_string(rs.objects_deleted) + " objects (" +
          std::to_string(rs.generations_deleted) + " generations) and " + std::to_string(rs.abandoned_removed) +
          " abandoned uploads");
    }
  }
  // A checkpoint that waits for a pack the store refuses is the job's error.
  return store_err.ok() ? pack_err : store_err;
}

// Compaction levels and the retention over them (replica/compactor.h,
// PruneLevels): once per level 1 interval, and only right after a sync
// that stored something, so an idle database makes no request. Failures
// are logged and retried at the next run; nothing depends on them.
void ReplicatorImpl::Compact(DbSlot& s, const ReplicaRef& ref, const Position& pos, int64_t now) {
  const DatabaseOptions& o = s.cfg->opts;
  // Not while the store fails (the sync spooled; compaction waits for it).
  if (o.compaction_levels_ms.empty() || !pos.valid() || (ref.health && ref.health->down())) return;
  // With packing, level 0 objects appear once per unpack interval (one
  // per database and run): the levels finer than that would copy them one
  // by one, so the first level kept is the first coarser one.
  std::vector<int64_t> levels = o.compaction_levels_ms;
  if (o.pack_window_ms > 0) {
    size_t fine = 0;
    while (fine < levels.size() && levels[fine] <= o.pack_unpack_ms) fine++;
    levels.erase(levels.begin(), levels.begin() + fine);
    if (levels.empty()) return;
  }
  const uint32_t now_s = uint32_t(now / 1000);
  {
    MutexLock l(Stripe(s));
    // The first run after Add comes within one interval of the first
    // change, at a point spread by database: databases that changed
    // together after a restart do not all compact together (nor all one
    // interval later), and a process restarted more often than the interval
    // still compacts. (Intervals under 2 s: one interval after it.)
    SessionState* ss = s.session();  // (held: this job stored something)
    if (!ss) return;
    if (ss->compacted_s == 0) {
      const int64_t n = levels[0] / 1000;
      ss->compacted_s = n >= 2 ? uint32_t(int64_t(now_s) + CompactionStaggerS(s.id, levels[0]) - n) : now_s;
    }
    if ((int64_t(now_s) - int64_t(ss->compacted_s)) * 1000 < levels[0]) return;
    ss->compacted_s = now_s;
  }
  CompactionPolicy p;
  p.intervals_ms = levels;
  p.keep_ms = o.keep_every_txid_ms;
  p.zstd_level = o.compression_level;
  p.memory_limit = std::max<uint64_t>(1 << 20, opts_.memory_cap / uint64_t(pool_.max_threads()));
  p.recent = ref.recent;
  p.large_memory_limit = opts_.memory_cap / 8;
  p.large_merge_mu = &large_merge_mu_;
  auto fence = [&] { return leases_->VerifyHeld(ref.store, ref.prefix); };
  CompactionStats cs;
  GenerationCatalog cat;
  Status st = CompactGeneration(ref.store, ref.prefix, pos.generation(), p, &cs, fence, &cat);
  const Labels group{{"group", o.metrics_group}};
  if (cs.objects_written > 0) m_.Add("replite_compacted_objects_total", group, double(cs.objects_written));
  if (cs.inputs_local > 0)
    m_.Add("replite_compaction_inputs_total", {{"group", o.metrics_group}, {"source", "local"}}, double(cs.inputs_local));
  if (cs.inputs_read > cs.inputs_local)
    m_.Add("replite_compaction_inputs_total", {{"group", o.metrics_group}, {"source", "store"}},
           double(cs.inputs_read - cs.inputs_local));
  if (!st.ok()) {
    Log("database " + s.path() + ": compaction: " + st.ToString());
    return;
  }
  LevelPruneStats ps;
  st = PruneLevels(ref.store, ref.prefix, pos.generation(), now, o.keep_every_txid_ms,
                   int(std::min<size_t>(levels.size(), kMaxLevel)), &ps, fence, &cat);
  if (!st.ok()) Log("database " + s.path() + ": retention over compaction levels: " + st.ToString());
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
Status ReplicatorImpl::ForgetExpectedRestart(DbSlot& s, const ReplicaRef& ref, Position pos, int64_t wal_size, int64_t wal_mtime) {
  pos.expect_restart = false;
  positions_.Put(s.path(), ref.url, pos, wal_size, wal_mtime);
  Status st = positions_.Flush();
  if (!st.ok()) return Status(st.code(), "saving the position before shipping past a WAL restart: " + st.message());
  return st;
}

// kUnavailable while a churning database's next generation must wait.
Status ReplicatorImpl::GenerationDeferred(DbSlot& s, int64_t now) {
  int64_t not_before;
  uint8_t churn;
  {
    MutexLock l(Stripe(s));
    not_before = NextGenerationNotBeforeMs(s.gen_churn, s.last_gen_s);
    churn = s.gen_churn;
  }
  if (now >= not_before) return Status::OK();
  return Status::Unavailable("database " + s.path() + ": a new generation is needed but waits " +
                             std::to_string((not_before - now + 999) / 1000) + " s more: " +
                             std::to_string(churn + 1) +
                             " generations started in quick succession (see the log); Sync starts it now");
}

// One log line (at 2, 4, 8... quick generations in a row) with the cause
// and the fix, and the metric.
void ReplicatorImpl::ReportChurn(DbSlot& s, uint8_t churn, const std::string& reason, int64_t now) {
  if (churn == kChurnReport) m_.Add("replite_generation_churn_total", {{"group", s.cfg->opts.metrics_group}});
  uint32_t last_gen_s;
  {
    MutexLock l(Stripe(s));
    last_gen_s = s.last_gen_s;
  }
  const int64_t wait_s = (NextGenerationNotBeforeMs(churn, last_gen_s) - now + 999) / 1000;
  Log("database " + s.path() + ": " + std::to_string(churn + 1) +
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
Status ReplicatorImpl::EnsureLease(DbSlot& s, const ReplicaRef& ref) {
  uint32_t epoch = 0;
  {
    MutexLock l(Stripe(s));
    if (const SessionState* ss = s.session()) epoch = ss->lease_epoch;  // (held: the job has work)
  }
  if (leases_->Usable(ref.store, ref.prefix, epoch)) return Status::OK();
  std::string from;
  Status st = leases_->Acquire(ref.store, ref.prefix, &epoch, &from);
  if (!st.ok()) return st;
  if (!from.empty())
    Log("database " + s.path() + ": took over the lease of " + ref.url + " from replite instance " + from +
        " (it stopped, or its heartbeat expired): a new generation starts above what it wrote");
  MutexLock l(Stripe(s));
  if (SessionState* ss = s.session()) ss->lease_epoch = epoch;
  if (!from.empty()) s.lease_taken_over = true;
  return Status::OK();
}

bool ReplicatorImpl::TakeOverPending(DbSlot& s) {
  MutexLock l(Stripe(s));
  const bool t = s.lease_taken_over;
  s.lease_taken_over = false;
  return t;
}

// Forgets the database's spooled segments (after a lease takeover).
Status ReplicatorImpl::DropSpooled(DbSlot& s, const ReplicaRef& ref) {
  std::vector<SpoolEntry> entries;
  Status st = upload_spool_.List(s.path(), ref.url, &entries);
  if (!st.ok()) return st;
  for (const auto& e : entries) upload_spool_.Remove(e);
  if (!entries.empty())
    Log("database " + s.path() + ": dropped " + std::to_string(entries.size()) +
        " spooled segments of the generation before the takeover (never durable; the new generation's snapshot "
        "holds their changes)");
  MutexLock l(Stripe(s));
  s.spooled = 0;
  return Status::OK();
}

// A removed database's lease is deleted if it still names us, so that
// another instance may take the replica without waiting (best effort).
void ReplicatorImpl::ReleaseLease(DbSlot& s) {
  uint32_t epoch = 0;
  bool parked;
  {
    MutexLock l(Stripe(s));
    parked = !s.pos;
    if (!parked) epoch = s.pos->session.lease_epoch;
  }
  if (parked) {  // (removed: nothing unparks it meanwhile)
    LivePosition p;
    if (LoadParked(s, &p).ok()) epoch = p.session.lease_epoch;
  }
  if (!leases_->enabled() || epoch == 0) return;
  const ReplicaRef ref = RefOf(s);
  if (leases_->VerifyHeld(ref.store, ref.prefix).ok()) ref.store->Delete({LeaseKey(ref.prefix)});
}

// Records that `txid` is in the store (unless older segments are still
// spooled) and tells on_durable; *durable_ms gets the time of the first
// advance (the commit-to-durable histogram's end point).
// Reading a whole database under the application's write lock is the
// expensive way to accept a WAL epoch replite did not see start: counted
// so that it shows when it becomes frequent.
void ReplicatorImpl::CountEpochChecksum(const DbSlot& s, const CaptureResult& r) {
  if (r.epoch_checksum == CaptureResult::kEpochNotChecked) return;
  m_.Add("replite_epoch_checksums_total",
         {{"group", s.cfg->opts.metrics_group}, {"result", r.epoch_checksum == CaptureResult::kEpochAdopted ? "adopted" : "mismatch"}});
}

void ReplicatorImpl::PublishDurable(DbSlot& s, uint64_t txid, uint32_t seq, int64_t* durable_ms, const Position* pos,
                                    int64_t sync_ms) {
  uint64_t before, after;
  {
    MutexLock l(Stripe(s));
    if (pos && s.pos) {  // before any waiter wakes (StatusOf reads them)
      *s.pos = *pos;
      s.pos->session.last_sync_ms = sync_ms;
    }
    before = s.durable_txid;
    if (s.pack_pending > 0) {
      // Durable once the pack is stored (OnPackStored answers the request then).
      if (seq != 0 && int32_t(seq - s.pack_seq) > 0) s.pack_seq = seq;
    } else if (s.spooled == 0) {
      s.durable_txid = std::max(s.durable_txid, txid);
      if (seq != 0 && int32_t(seq - s.durable_seq) > 0) {
        s.durable_seq = seq;
        // Everything the request asked for is stored: an earlier job's error
        // no longer describes the database (the end of this job records its
        // own outcome).
        s.has_error = false;
        Cv(s).notify_all();
      }
    }
    after = s.durable_txid;
  }
  if (after == before) return;
  if (*durable_ms == 0) *durable_ms = NowMs();
  if (opts_.on_durable) opts_.on_durable(s.path(), after);
}

void ReplicatorImpl::CleanupCapture(const CaptureResult& res) {
  if (!res.snapshot_path.empty()) ::unlink(res.snapshot_path.c_str());
  if (!res.segment_path.empty()) ::unlink(res.segment_path.c_str());
}

// Makes a capture safe: uploads it, or, when the store fails (or older
// segments still wait in the spool), spools its segment. OK means the
// position may advance and its frames may be checkpointed; *store_err
// then says whether the store has it yet. A snapshot or a new generation
// is never spooled: it is retried from the WAL once the store answers.
Status ReplicatorImpl::Ship(DbSlot& s, const ReplicaRef& ref, const SyncRequest& sr, CaptureResult& res,
                           Status* store_err, int64_t wal_size, int64_t wal_mtime) {
  const bool probe = sr.probe;
  if (!res.has_segment && !res.has_snapshot && !res.new_generation) return Status::OK();
  // Into a pack when packing is on (core/pack_jobs.cc); durable later.
  bool packed = false;
  Status ps = ShipPacked(s, ref, sr, res, wal_size, wal_mtime, &packed);
  if (packed) return ps;
  StoreHealth& health = *ref.health;
  uint32_t spooled;
  {
    MutexLock l(Stripe(s));
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
  Status a = upload_spool_.Append(s.path(), ref.url, res.segment_header,
                                  res.segment_path.empty() ? &res.segment : nullptr,
                                  res.segment_path.empty() ? nullptr : &res.segment_path);
  if (!a.ok()) {
    if (a.code() == Code::kResourceExhausted) m_.Add("replite_spool_full_total", group);
    return Status(store_err->code(), store_err->message() + "; capture paused, the changes wait in the WAL: " +
                                         a.message());
  }
  res.segment_path.clear();  // moved into the spool
  m_.Add("replite_segments_spooled_total", group);
  MutexLock l(Stripe(s));
  s.spooled++;
  return Status::OK();
}

Status ReplicatorImpl::StoreDownStatus(const ReplicaRef& ref) {
  const int64_t wait_ms = std::max<int64_t>(0, (ref.health->retry_at_us() - NowMono()) / 1000);
  return Status::Unavailable("store " + ref.url + " is failing; next attempt in " + std::to_string(wait_ms) +
                             " ms; captured changes are spooled locally meanwhile");
}

// Uploads the database's spooled segments, oldest first; stops at the
// first failure (the rest stay spooled, in order).
Status ReplicatorImpl::DrainSpool(DbSlot& s, const ReplicaRef& ref, bool probe) {
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
  st = upload_spool_.List(s.path(), ref.url, &entries);
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
      MutexLock l(Stripe(s));
      if (s.spooled > 0) s.spooled--;
      if (SessionState* c = s.session()) {  // (held: segments are spooled)
        c->segments++;
        c->bytes += e.bytes;
      }
      s.durable_txid = std::max(s.durable_txid, e.last_txid);
      durable = s.durable_txid;
    }
    if (opts_.on_durable) opts_.on_durable(s.path(), durable);
  }
  MutexLock l(Stripe(s));
  s.spooled = 0;
  return Status::OK();
}

Status ReplicatorImpl::Upload(DbSlot& s, const ReplicaRef& ref, const CaptureResult& res) {
  Status ls = EnsureLease(s, ref);
  if (!ls.ok()) return ls;
  ReplicaWriter writer(ref);
  const Labels group{{"group", s.cfg->opts.metrics_group}};
  if (res.new_generation) {
    Log("database " + s.path() + ": new generation " + res.pos.generation() + " at txid " +
        std::to_string(res.pos.txid) + ": " + res.reason);
  }
  if (res.has_segment) {
    uint64_t size = 0;
    Status st = writer.PutSegment(res.segment_header, res.segment, res.segment_path, &size);
    if (!st.ok()) return st;
    m_.Add("replite_uploaded_bytes_total", group, double(size));
    m_.Add("replite_segments_uploaded_total", group);
    MutexLock l(Stripe(s));
    if (SessionState* c = s.session()) {  // (held: the job runs)
      c->segments++;
      c->bytes += size;
    }
  }
  if (res.has_snapshot) {
    uint64_t size = 0;
    Status st = writer.PutSnapshot(res.snapshot_header, res.snapshot_path, &size);
    if (!st.ok()) return st;
    m_.Add("replite_uploaded_bytes_total", group, double(size));
    m_.Add("replite_snapshots_uploaded_total", group);
    MutexLock l(Stripe(s));
    if (SessionState* c = s.session()) {
      c->snapshots++;
      c->bytes += size;
    }
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

}  // namespace replite
