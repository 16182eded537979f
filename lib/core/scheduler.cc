// The Replicator's jobs and timers: the per-database job state machine,
// the timer entries (polls, notify and wakeup batches, quiet checkpoints,
// retries, housekeeping) and the dispatch of jobs to the shared pool.
//
// A database's job state (DbSlot::state, under its stripe lock) changes
// only in SetJobState, which checks the transition:
//
//   kIdle ──Kick──► kQueued ──worker──► kRunning ──done──► kIdle
//                     ▲  │                  │
//                     │  └─removed─► kIdle  │
//                     └──────rerun──────────┘
#include <sys/stat.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>

#include "core/replicator_impl.h"
#include "store/counting_store.h"

namespace replite {
namespace {

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kIdle: return "idle";
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
  }
  return "?";
}

bool LegalTransition(JobState from, JobState to) {
  switch (from) {
    case JobState::kIdle: return to == JobState::kQueued;
    case JobState::kQueued: return to == JobState::kRunning || to == JobState::kIdle;  // idle: removed while queued
    case JobState::kRunning: return to == JobState::kIdle || to == JobState::kQueued;  // queued: rerun
  }
  return false;
}

}  // namespace

void ReplicatorImpl::SetJobState(DbSlot& s, JobState to) {
  if (!LegalTransition(s.state, to)) {
    // A bug in this file: say which, whatever the build type.
    std::fprintf(stderr, "replite: database %s: illegal job state change %s -> %s\n", s.path().c_str(),
                 JobStateName(s.state), JobStateName(to));
    std::abort();
  }
  s.state = to;
}

// Hands the job to the pool (caller holds the stripe and has just set kQueued).
void ReplicatorImpl::Dispatch(const SlotPtr& s) {
  pool_.Submit([this, s] { RunJob(s); });
}

int64_t ReplicatorImpl::Jitter(int64_t interval_ms) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return interval_ms <= 0 ? 0 : int64_t(rng() % uint64_t(interval_ms)) + 1;
}

// The first poll interval of a resumed database (sets its back-off).
int64_t ReplicatorImpl::ResumedPollInterval(DbSlot& s) {
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

// Arms the poll timer `delay_ms` from now (caller holds the stripe).
void ReplicatorImpl::ArmPoll(DbSlot& s, int64_t delay_ms) {
  if (s.removed || closed_ || s.notified || s.cfg->opts.poll_interval_ms <= 0) return;
  do s.timer_seq = uint32_t(next_timer_seq_.fetch_add(1));
  while (s.timer_seq == 0);  // (0: none armed)
  ArmTimer(delay_ms * 1000, TimerKind::kPoll, s.id, s.timer_seq);
}

// Arms a notified database's one quiet-checkpoint timer `delay_ms` (plus
// 100 ms of slack) from now (caller holds the stripe).
void ReplicatorImpl::ArmQuiet(DbSlot& s, int64_t delay_ms) {
  s.quiet_armed = true;
  ArmTimer((delay_ms + 100) * 1000, TimerKind::kQuiet, s.id, kQuietCheckpointTimer);
}

// Queues a job unless one is queued; a running job reruns afterwards.
void ReplicatorImpl::Kick(const SlotPtr& s, bool bump) {
  MutexLock l(Stripe(*s));
  if (bump) s->req_seq++;
  if (s->removed) return;
  if (s->state == JobState::kIdle) {
    SetJobState(*s, JobState::kQueued);
    Dispatch(s);
  } else if (s->state == JobState::kRunning) {
    s->rerun = true;
  }
}

void ReplicatorImpl::ArmTimer(int64_t delay_us, TimerKind kind, uint32_t id, uint64_t seq) {
  timers_.At(NowMono() + delay_us, Timer::Of(kind, id, seq));
}

// The batching window after a commit (Notify, a WAL hook, a directory
// event) ends on a shared tick (TimerQueue::BatchedDue): databases notified
// within one tick come due together, one wake of the timer thread for all
// of them instead of one per commit (1,000 a second with 1,000 hot
// databases).
void ReplicatorImpl::ArmBatched(int64_t window_ms, TimerKind kind, uint32_t id) {
  timers_.At(TimerQueue::BatchedDue(NowMono(), window_ms * 1000, kBatchTickUs), Timer::Of(kind, id));
}

void ReplicatorImpl::OnTimer(const Timer& t) {
  const TimerKind kind = t.Kind<TimerKind>();
  if (kind == TimerKind::kHousekeeping) {  // position flush, idle connections
    // On the pool, not here: the timer thread must keep dispatching
    // notify batches while SQLite writes and syncs the positions.
    if (closed_) return;
    pool_.Submit([this] {
      Status st = positions_.Flush();
      if (!st.ok()) Log("saving positions failed: " + st.ToString());
      conns_.Sweep(NowMono());
      recent_.Expire(kRecentMaxAgeUs);
      PackHousekeeping(false);
      ParkIdle();
      if (burst_trim_.Due(conns_.opened(), NowMono())) TrimAfterBurst();
    });
    ArmTimer(opts_.position_flush_ms * 1000, TimerKind::kHousekeeping);
    return;
  }
  if (kind == TimerKind::kFirstSyncs) {
    StartFirstSyncs();
    return;
  }
  if (kind == TimerKind::kPack) {  // on the pool: a PUT may take long
    const uint32_t id = t.id;
    pool_.Submit([this, id] { FlushPackGroup(id, false); });
    return;
  }
  SlotPtr s = ById(t.id);
  if (!s) return;
  bool bump = false;
  {
    MutexLock l(Stripe(*s));
    switch (kind) {
      case TimerKind::kNotify:
        if (!s->notify_pending) return;
        s->notify_pending = false;
        bump = true;  // a commit happened: sync for sure
        break;
      case TimerKind::kWake:
        if (!s->wake_pending) return;
        s->wake_pending = false;  // the job compares the WAL's stat, as a poll does
        break;
      case TimerKind::kQuiet:
        if (t.seq == kQuietCheckpointTimer) {
          // One entry per database: while it still changes, the entry
          // moves to its next possible quiet moment instead of running a
          // job (a hot database's every capture armed one before: a
          // second, empty job per commit, 60 s later).
          if (!s->quiet_armed) return;
          s->quiet_armed = false;
          if (s->removed || closed_) return;
          const int64_t quiet_ms = s->cfg->opts.checkpoint_quiet_ms, now = NowMs();
          const int64_t quiet_at = s->last_change_ms + quiet_ms;
          if (quiet_at > now) {
            // (at most quiet_ms out: a wall clock set back must not
            // postpone it further than a change would)
            ArmQuiet(*s, std::min(quiet_at - now, quiet_ms));
            return;
          }
        }
        break;  // the job decides whether a quiet checkpoint is due (or retries after a failure)
      case TimerKind::kPoll:
        if (s->timer_seq != t.seq) return;  // cancelled or re-armed
        break;
      case TimerKind::kHousekeeping:
      case TimerKind::kFirstSyncs:
      case TimerKind::kPack:
        return;  // handled above
    }
  }
  m_.Add("replite_polls_total",
         {{"outcome", kind == TimerKind::kNotify ? "notified" : kind == TimerKind::kWake ? "wakeup" : "timer"}});
  Kick(s, bump);
}

// A burst of connection opens is over (core/burst_trim.h): close the
// connections it left kept (a hot database, used within kQuietUs, keeps
// its own), give back the positions cache's unused pages, then return the
// free heap to the system.
void ReplicatorImpl::TrimAfterBurst() {
  conns_.Sweep(NowMono(), BurstTrim::kQuietUs);
  // The burst's extra workers end now rather than after their idle time:
  // each holds a cache of freed chunks that pins its arena's pages. Each
  // idle worker first gives back its arena's free top, which malloc_trim
  // does not (core/burst_trim.h), as does this thread.
  pool_.RetireIdle(1000, TrimThreadArena);
  positions_.ReleaseMemory();
  TrimThreadArena();
  ReleaseFreeHeap();
  m_.Add("replite_memory_trims_total", {});
}

// A new database's first sync waits for a pause in Adds (kFirstSyncQuietUs,
// at most kFirstSyncMaxWaitUs): a Sync, WaitDurable or Notify meanwhile
// starts it at once, Close's final round at the latest. Nothing is
// acknowledged for a database before its first sync, so waiting loses none.
void ReplicatorImpl::QueueFirstSync(const SlotPtr& s) {
  const int64_t now = NowMono();
  bool arm = false;
  {
    MutexLock l(first_mu_);
    if (first_syncs_.empty()) first_since_us_ = now;
    first_syncs_.push_back(s);
    last_add_us_ = now;
    arm = !first_armed_;
    first_armed_ = true;
  }
  if (arm) ArmTimer(kFirstSyncQuietUs, TimerKind::kFirstSyncs);
}

void ReplicatorImpl::StartFirstSyncs() {
  std::vector<SlotPtr> go;
  int64_t wait_us = 0;
  {
    MutexLock l(first_mu_);
    const int64_t now = NowMono();
    if (now - last_add_us_ >= kFirstSyncQuietUs || now - first_since_us_ >= kFirstSyncMaxWaitUs) {
      go.swap(first_syncs_);
      first_armed_ = false;
    } else {
      wait_us = std::min(last_add_us_ + kFirstSyncQuietUs, first_since_us_ + kFirstSyncMaxWaitUs) - now;
    }
  }
  if (go.empty()) {
    if (wait_us > 0) ArmTimer(wait_us, TimerKind::kFirstSyncs);
    return;
  }
  // On the pool: the timer thread keeps dispatching notify batches.
  pool_.Submit([this, go = std::move(go)] {
    for (const SlotPtr& s : go) {
      {
        // A Sync, WaitDurable or Notify since the Add already asked for a
        // job, which takes the first snapshot: no job of our own, which
        // would capture whatever the application is in the middle of.
        MutexLock l(Stripe(*s));
        if (s->req_seq != 0) continue;
      }
      Kick(s, true);
    }
  });
}

void ReplicatorImpl::RunJob(SlotPtr s) {
  uint32_t seq;
  bool snap, ckpt, trunc, forced, probe;
  int64_t notified_at, last_change_before;
  bool was_parked;
  {
    MutexLock l(Stripe(*s));
    if (s->removed) {  // cancelled while queued
      SetJobState(*s, JobState::kIdle);
      Cv(*s).notify_all();
      return;
    }
    SetJobState(*s, JobState::kRunning);
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
    last_change_before = s->last_change_ms;
    was_parked = !s->pos;
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
    st = DoSync(*s, SyncRequest{forced, snap, ckpt, trunc, probe, seq, notified_at}, &captured, &changed, &durable_ms);
    fd_tokens_.release();
  }
  if (captured) {
    m_.Observe("replite_sync_duration_seconds", group, double(NowMono() - t0) / 1e6);
    m_.Add("replite_syncs_total", {{"group", s->cfg->opts.metrics_group}, {"result", st.ok() ? "ok" : "error"}});
  }
  if (st.ok() && notified_at != 0)
    m_.Observe("replite_commit_to_durable_seconds", group,
               double((durable_ms != 0 ? durable_ms : NowMs()) - notified_at) / 1e3);
  if (!st.ok()) Log("database " + s->path() + ": " + st.ToString());

  MutexLock l(Stripe(*s));
  if (!st.ok()) {
    DbExtra& extra = reg_.Extra(*s);
    extra.last_error = st.ToString();
    extra.last_code = st.code();
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
  // A database that had not changed for a while before this job (a first
  // snapshot, a quiet checkpoint, a rare commit), or that was parked when
  // it started and is unchanged (a Sync's look), parks its position now; a
  // hot one keeps it, and housekeeping parks it once it goes idle. Also
  // before a rerun: a Sync arriving during a first snapshot must not keep
  // the position for the 10 s after that snapshot.
  const bool park = NowMs() - last_change_before >= kParkAfterMs || (was_parked && !changed);
  if (s->rerun && !s->removed) {
    if (park && ParkableBetweenJobs(*s)) Park(*s);
    SetJobState(*s, JobState::kQueued);
    Dispatch(s);
  } else {
    SetJobState(*s, JobState::kIdle);
    // After a failure, retry when the store's backoff ends (at least 1 s,
    // spread): also notified databases, which are not polled, must get
    // their spooled or uncaptured changes to the store without a new commit.
    const int64_t retry_ms =
        st.ok() ? 0 : std::max<int64_t>(1000, (HealthOf(*s).retry_at_us() - NowMono()) / 1000) + Jitter(500);
    if (base > 0 && !s->notified) {
      int64_t next = std::min<int64_t>(base << s->poll_shift, kMaxPollMs);
      ArmPoll(*s, std::max(next, retry_ms));
    } else if (!st.ok() && !closed_ && !s->removed) {
      ArmTimer(retry_ms * 1000, TimerKind::kQuiet, s->id);
    }
    // A notified database is not polled, but its WAL still needs the
    // quiet checkpoint once writes stop.
    if (s->notified && st.ok() && HasUncheckpointedFrames(*s) && !closed_ && !s->removed && !s->quiet_armed) {
      ArmQuiet(*s, s->cfg->opts.checkpoint_quiet_ms);
    }
    if (park && Parkable(*s)) Park(*s);
  }
  Cv(*s).notify_all();
}

}  // namespace replite
