// Parked positions (issue 20): a database idle for kParkAfterMs gives its
// Position and session state (144 bytes) back to the position store,
// which then holds exactly them; the slot keeps the three things a sync's
// cheap path reads of them (DbSlot::parked_*). A job that has more to do
// than that loads them back (one read of positions.db, or of the queued
// writes).
#include <algorithm>
#include <limits>

#include "core/replicator_impl.h"

namespace replite {

// Only what is durable and saved as it is: nothing spooled or in a pack,
// no job queued or running, no request or error waiting for one. A
// position whose generation was abandoned (gen 0, txid > 0: a churning
// database waiting for its next one) stays in memory.
bool ReplicatorImpl::Parkable(const DbSlot& s) {
  return s.state == JobState::kIdle && !s.rerun && !s.want_snapshot && !s.want_checkpoint && !s.want_truncate &&
         !s.want_probe && ParkableBetweenJobs(s);
}

// A job ending with a rerun queued may park its database: the rerun
// starts from the parked position as any job does, and takes the requests
// (want_*) that queued it.
bool ReplicatorImpl::ParkableBetweenJobs(const DbSlot& s) {
  return s.pos && s.pos->valid() && !s.removed && !s.has_error && s.spooled == 0 && s.pack_pending == 0 &&
         s.durable_txid == s.pos->txid;
}

void SetParked(DbSlot& s, const Position& p) {
  s.parked_valid = p.valid();
  s.parked_frames = p.frames_to_checkpoint();
  s.parked_snap_s = 0;
  if (p.valid() && p.txid > p.snapshot_txid) {
    const int64_t interval = std::max<int64_t>(0, s.cfg->opts.snapshot_interval_ms);
    const int64_t due_ms = interval > std::numeric_limits<int64_t>::max() - p.snapshot_ms
                               ? std::numeric_limits<int64_t>::max()
                               : p.snapshot_ms + interval;
    s.parked_snap_s = uint32_t(std::clamp<int64_t>(due_ms / 1000, 1, std::numeric_limits<uint32_t>::max()));
  }
}

void ReplicatorImpl::Park(DbSlot& s) {
  SetParked(s, *s.pos);
  // The store may hold an older one (a pack's position, saved when the
  // pack was stored, before a later checkpoint's): this one is durable.
  positions_.Put(s.path(), UrlOf(s), *s.pos, s.wal_size, s.wal_mtime_ns, &s.pos->session);
  s.pos.reset();
}

void ReplicatorImpl::Unpark(DbSlot& s, const LivePosition& pos) {
  s.pos = std::make_unique<LivePosition>(pos);
  MutexLock l(live_mu_);
  live_ids_.push_back(s.id);
}

Status ReplicatorImpl::LoadParked(DbSlot& s, LivePosition* pos) {
  bool found = false;
  int64_t wal_size, wal_mtime;
  Status st = positions_.Load(s.path(), UrlOf(s), pos, &found, &wal_size, &wal_mtime, &pos->session);
  if (!st.ok()) return st.Annotate("database " + s.path() + ": loading its position: ");
  if (!found) *pos = LivePosition();
  return Status::OK();
}

void ReplicatorImpl::ForgetSession(DbSlot& s) {
  Position pos;
  bool found = false;
  int64_t wal_size, wal_mtime;
  const std::string path = s.path(), url = UrlOf(s);
  if (positions_.Load(path, url, &pos, &found, &wal_size, &wal_mtime).ok() && found)
    positions_.Put(path, url, pos, wal_size, wal_mtime);  // (the same position, without it)
}

size_t ReplicatorImpl::LivePositions() {
  std::vector<uint32_t> ids;
  {
    MutexLock l(live_mu_);
    ids = live_ids_;
  }
  // (live_ids_ may name a database twice, or one parked after its job,
  // until the next ParkIdle: count the positions, not the entries)
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  size_t n = 0;
  for (uint32_t id : ids) {
    SlotPtr s = ById(id);
    if (!s) continue;
    MutexLock l(Stripe(*s));
    if (s->pos) n++;
  }
  return n;
}

void ReplicatorImpl::ParkIdle() {
  std::vector<uint32_t> ids;
  {
    MutexLock l(live_mu_);
    ids.swap(live_ids_);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const int64_t now = NowMs();
  std::vector<uint32_t> keep;
  for (uint32_t id : ids) {
    SlotPtr s = ById(id);
    if (!s) continue;
    MutexLock l(Stripe(*s));
    if (!s->pos) continue;  // parked after its job
    if (now - s->last_change_ms >= kParkAfterMs && Parkable(*s)) {
      Park(*s);
      continue;
    }
    keep.push_back(id);
  }
  MutexLock l(live_mu_);
  live_ids_.insert(live_ids_.end(), keep.begin(), keep.end());
}

}  // namespace replite
