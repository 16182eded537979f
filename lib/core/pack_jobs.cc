// Packing in the Replicator (replica/packer.h does the packs): which pack
// group a database's segments go to, handing a capture to it, what
// "durable" means for a segment in a pack, the window timer, retries of a
// failed pack, and unpacking in housekeeping.
//
// A database with segments in a pack not yet stored (DbSlot::pack_pending)
// does not save its position, checkpoint, or advance durable_txid past
// them: a crash before the pack is stored loses nothing (the frames wait in
// the WAL and are captured again from the saved position). Its segments
// are stored in txid order because packs are stored in order and anything
// the database ships on its own (a snapshot, a large segment) waits until
// its packed segments are stored.
#include <algorithm>
#include <chrono>
#include <thread>

#include "core/burst_trim.h"
#include "core/replicator_impl.h"
#include "format/layout.h"
#include "store/counting_store.h"

namespace replite {

struct ReplicatorImpl::PackGroup {
  uint32_t id = 0;
  std::shared_ptr<Packer> packer;
  std::shared_ptr<StoreHealth> health;
  std::string metrics_group;
  int64_t last_scan_ms = 0;  // of the LIST for other processes' packs
};

namespace {

// What a packed segment's database saves once the pack is stored.
struct PackedPos {
  std::string path, url;
  Position pos;
  int64_t wal_size = -1, wal_mtime = -1;
  uint32_t seq = 0;  // the job's SyncRequest::seq: requests up to it are answered once stored
};

}  // namespace

std::shared_ptr<ReplicatorImpl::PackGroup> ReplicatorImpl::PackGroupOf(const DbSlot& s, const ReplicaRef& ref) {
  const DatabaseOptions& o = s.cfg->opts;
  if (o.pack_window_ms <= 0) return nullptr;
  const std::string dir = PackDirOf(ref.prefix);
  const std::string key = std::to_string(reinterpret_cast<uintptr_t>(ref.store)) + "|" + dir + "|" +
                          std::to_string(o.pack_window_ms) + "|" + std::to_string(o.pack_max_bytes) + "|" +
                          std::to_string(o.pack_unpack_ms) + "|" + o.metrics_group;
  MutexLock l(packs_mu_);
  auto it = pack_group_ids_.find(key);
  if (it != pack_group_ids_.end()) return pack_groups_[it->second];
  auto g = std::make_shared<PackGroup>();
  g->id = uint32_t(pack_groups_.size());
  g->health = s.target() ? s.target()->health : s.cfg->health;
  g->metrics_group = o.metrics_group;
  g->last_scan_ms = NowMs();
  PackerConfig pc;
  pc.pack_dir = dir;
  pc.window_ms = o.pack_window_ms;
  pc.max_bytes = o.pack_max_bytes;
  pc.unpack_ms = o.pack_unpack_ms;
  pc.unpack_bytes = std::max<uint64_t>(4 * o.pack_max_bytes, opts_.memory_cap / 8);
  pc.zstd_level = o.compression_level;
  // On a local directory store (the built-in file:// one) a stored pack
  // read back costs what a local copy would: no copy, which was a second
  // write of every pack byte to the same disk (~3% of a packed capture's
  // CPU at N = 100,000: bench/README.md, many_dbs).
  const bool local_store = !opts_.store_factory && (s.target() ? s.target()->url : s.cfg->root).scheme == "file";
  pc.spill_dir = local_store ? std::string() : unpack_dir_;
  pc.spill_cap = opts_.spool_cap;  // (every group's copies together: spill_used_)
  pc.spill_used = spill_used_;
  PackGroup* raw = g.get();
  g->packer = std::make_shared<Packer>(
      s.target() ? s.target()->store : s.cfg->store, pc,
      [this, raw](std::vector<PackMember>& members, const std::string& k, uint64_t bytes) {
        OnPackStored(*raw, members, k, bytes);
      },
      [this] { return NowMs(); });
  pack_groups_.push_back(g);
  pack_group_ids_[key] = g->id;
  return g;
}

Status ReplicatorImpl::ShipPacked(DbSlot& s, const ReplicaRef& ref, const SyncRequest& sr, CaptureResult& res,
                                  int64_t wal_size, int64_t wal_mtime, bool* handled) {
  const bool probe = sr.probe;
  *handled = false;
  std::shared_ptr<PackGroup> g = PackGroupOf(s, ref);
  if (!g) return Status::OK();
  const bool fits = res.has_segment && !res.has_snapshot && !res.new_generation && res.segment_path.empty() &&
                    res.segment.size() <= PackMemberMaxBytes(s.cfg->opts);
  for (int attempt = 0;; attempt++) {
    uint32_t pending, spooled;
    {
      MutexLock l(Stripe(s));
      pending = s.pack_pending;
      spooled = s.spooled;
    }
    if (fits && spooled == 0 && (probe || g->health->MayTry(NowMono()))) {
      auto note = std::make_shared<PackedPos>();
      note->path = s.path();
      note->url = ref.url;
      note->pos = res.pos;
      note->wal_size = wal_size;
      note->wal_mtime = wal_mtime;
      note->seq = sr.seq;
      PackMember m;
      m.db_id = s.id;
      m.db_prefix = ref.prefix;
      m.header = res.segment_header;
      m.segment = std::move(res.segment);  // given back if refused
      m.note = note;
      m.since_ms = sr.since_ms;
      {
        // Counted before the pack can be stored (a Flush may run at once).
        MutexLock l(Stripe(s));
        s.pack_pending++;
      }
      int64_t seal_at_ms = 0;
      const Packer::AddResult r = g->packer->Add(std::move(m), &seal_at_ms);
      if (r != Packer::AddResult::kRefused) {
        *handled = true;
        res.segment.clear();  // the pack holds it now
        if (r == Packer::AddResult::kAddedFirst)
          ArmTimer(std::max<int64_t>(0, seal_at_ms - NowMs()) * 1000, TimerKind::kPack, g->id);
        if (r == Packer::AddResult::kAddedFull) {
          const uint32_t id = g->id;
          pool_.Submit([this, id] { FlushPackGroup(id, false); });
        }
        return Status::OK();
      }
      res.segment = std::move(m.segment);
      MutexLock l(Stripe(s));
      s.pack_pending--;
      Cv(s).notify_all();
    }
    if (pending == 0) return Status::OK();  // shipped on its own, as without packing
    // Older segments of the database wait in a pack. A snapshot, a new
    // generation or a large segment goes after them; a small segment waits
    // in the WAL while the pack takes no more (its store fails, or unpacking
    // is behind), unless the application waits for it (probe).
    if (attempt == 0 && (!fits || probe)) {
      Status w = WaitPacked(s, kPackWaitMs);
      if (w.ok()) continue;
      *handled = true;
      return w;
    }
    *handled = true;
    return Status::Unavailable("database " + s.path() + ": " + std::to_string(pending) +
                               " segments wait in a pack being stored to " + ref.url +
                               " (the store fails or is slow); newer changes wait in the WAL meanwhile");
  }
}

Status ReplicatorImpl::WaitPacked(DbSlot& s, int64_t timeout_ms) {
  {
    MutexLock l(Stripe(s));
    if (s.pack_pending == 0) return Status::OK();
  }
  std::shared_ptr<PackGroup> g = PackGroupOf(s, RefOf(s));
  if (g) {
    // Stored now rather than at the window's end; a failure now is not
    // waited out (the pack is retried on its own).
    ScopedMetricsGroup scope(&g->metrics_group);
    Status st = g->packer->Flush(true);
    if (!st.ok()) {
      g->health->Failure(NowMono());
      return Status(st.code(), "database " + s.path() + ": its latest segments wait in a pack that is not stored: " +
                                   st.message());
    }
  }
  MutexLock l(Stripe(s));
  Cv(s).wait_for(l.native(), std::chrono::milliseconds(timeout_ms),
                 [&]() REQUIRES(s.stripe()) { return s.pack_pending == 0 || stopped_.load(); });
  if (s.pack_pending == 0) return Status::OK();
  return Status::Unavailable("database " + s.path() + ": " + std::to_string(s.pack_pending) +
                             " segments still wait in a pack being stored after " + std::to_string(timeout_ms / 1000) +
                             " s (the store fails or is slow)");
}

void ReplicatorImpl::OnPackStored(PackGroup& g, std::vector<PackMember>& members, const std::string& key,
                                  uint64_t bytes) {
  (void)key;
  g.health->Success();
  const Labels group{{"group", g.metrics_group}};
  m_.Add("replite_packs_stored_total", group);
  m_.Add("replite_uploaded_bytes_total", group, double(bytes));
  m_.Add("replite_pack_members_total", group, double(members.size()));
  for (PackMember& m : members) {
    auto* note = static_cast<PackedPos*>(m.note.get());
    SlotPtr s = ById(m.db_id);
    if (!s || !s->PathIs(note->path)) continue;  // removed meanwhile
    // Saved before the pending count drops: a job that then finds none
    // pending saves a newer position after this one.
    positions_.Put(note->path, note->url, note->pos, note->wal_size, note->wal_mtime);
    uint64_t before, after;
    {
      MutexLock l(Stripe(*s));
      if (s->pack_pending > 0) s->pack_pending--;
      if (SessionState* c = s->session()) {  // (held: segments are in a pack)
        c->segments++;
        c->bytes += m.segment.size();
      }
      before = s->durable_txid;
      if (s->spooled == 0) {
        s->durable_txid = std::max(s->durable_txid, m.header.last_txid);
        uint32_t answered = note->seq;
        if (s->pack_pending == 0 && s->pack_seq != 0 && int32_t(s->pack_seq - answered) > 0) answered = s->pack_seq;
        if (answered != 0 && int32_t(answered - s->durable_seq) > 0) {
          s->durable_seq = answered;
          s->has_error = false;
        }
      }
      after = s->durable_txid;
      Cv(*s).notify_all();
    }
    if (after != before && opts_.on_durable) opts_.on_durable(note->path, after);
  }
}

void ReplicatorImpl::FlushPackGroup(uint32_t id, bool all) {
  std::shared_ptr<PackGroup> g;
  {
    MutexLock l(packs_mu_);
    if (id >= pack_groups_.size()) return;
    g = pack_groups_[id];
  }
  ScopedMetricsGroup scope(&g->metrics_group);  // its store requests count for its databases' group
  // While the store fails, housekeeping retries once per backoff (no timer).
  if (!all && !g->health->MayTry(NowMono())) return;
  Status st = g->packer->Flush(all);
  if (st.ok()) return;
  g->health->Failure(NowMono());
  Log("pack " + g->packer->config().pack_dir + ": " + st.ToString() + " (kept in memory and retried; " +
      std::to_string(g->packer->pending_members()) + " segments wait)");
  // Their databases report it (Sync returns it; WaitDurable keeps waiting).
  std::vector<uint32_t> ids = g->packer->PendingDbIds();
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const std::string why = "a pack holding this database's latest segments is not stored yet: " + st.ToString() +
                          " (retried; the changes also wait in the WAL)";
  for (uint32_t db : ids) {
    SlotPtr s = ById(db);
    if (!s) continue;
    MutexLock l(Stripe(*s));
    DbExtra& extra = reg_.Extra(*s);
    extra.last_error = why;
    extra.last_code = st.code();
    s->has_error = true;
    Cv(*s).notify_all();
  }
}

void ReplicatorImpl::PackHousekeeping(bool now) {
  std::vector<std::shared_ptr<PackGroup>> groups;
  {
    MutexLock l(packs_mu_);
    groups = pack_groups_;
  }
  for (const auto& g : groups) {
    const PackerConfig& pc = g->packer->config();
    if (g->packer->pending_members() > 0) FlushPackGroup(g->id, now);
    // At Close: until stored (another thread may be storing one), or failing.
    for (int i = 0; now && i < 3000 && g->packer->pending_members() > 0 && !g->packer->failing(); i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      FlushPackGroup(g->id, true);
    }
    ScopedMetricsGroup scope(&g->metrics_group);
    if (!now && g->health->down()) continue;
    // Other processes' packs (a crash, a stopped instance): once per
    // unpack interval, those older than twice it.
    int64_t foreign_after = 0;
    const int64_t t = NowMs();
    if (!now && t - g->last_scan_ms >= pc.unpack_ms) {
      g->last_scan_ms = t;
      foreign_after = 2 * pc.unpack_ms + pc.window_ms;
    }
    // (The objects are not kept for compaction: its first level is coarser
    // than the unpack interval, so it would find them expired.)
    UnpackStats us;
    Status st = g->packer->Unpack(now, foreign_after, &us);
    const Labels group{{"group", g->metrics_group}};
    if (us.objects_written > 0) {
      m_.Add("replite_segments_uploaded_total", group, double(us.objects_written));
      m_.Add("replite_uploaded_bytes_total", group, double(us.bytes_written));
    }
    if (us.packs > 0) {
      m_.Add("replite_packs_unpacked_total", group, double(us.packs));
      // Its runs were read and merged on up to kUnpackThreads threads'
      // arenas: their freed memory goes back now, not at the next burst.
      ReleaseFreeHeap();
    }
    if (us.foreign_packs > 0)
      Log("pack " + pc.pack_dir + ": unpacked " + std::to_string(us.foreign_packs) +
          " packs another process left (it crashed or stopped before unpacking them)");
    if (!st.ok()) {
      if (st.retryable()) g->health->Failure(NowMono());
      Log("pack " + pc.pack_dir + ": unpacking: " + st.ToString() + " (retried next time)");
    }
  }
}

uint64_t ReplicatorImpl::PackMemoryBytes() {
  MutexLock l(packs_mu_);
  uint64_t b = 0;
  for (const auto& g : pack_groups_) b += g->packer->memory_bytes();
  return b;
}

}  // namespace replite
