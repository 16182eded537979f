#include "replica/packer.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>

#include "format/layout.h"
#include "store/parallel_requests.h"

namespace replite {
namespace {

constexpr size_t kUnpackThreads = 8;

// One segment object holding the transactions of `run` (consecutive txids,
// in order), block by block: every txid stays a restore point.
Status MergeRun(const std::vector<const PackMember*>& run, int level, std::string* out) {
  if (run.size() == 1) {
    *out = run[0]->segment;
    return Status::OK();
  }
  const SegmentHeader& first = run.front()->header;
  StringSink sink;
  SegmentBuilder b(&sink, first, level, true);
  Status s = b.Start();
  for (const PackMember* m : run) {
    if (!s.ok()) break;
    SegmentHeader h;
    std::vector<DecodedBlock> blocks;
    s = DecodeSegment(m->segment, &h, &blocks);
    for (const auto& blk : blocks) {
      if (!s.ok()) break;
      s = b.AddBlock(blk.txid, blk.ts_ms, blk.db_pages, blk.checksum_after, blk.flags, blk.pgnos, blk.pages);
    }
  }
  if (!s.ok()) return s;
  SegmentHeader fin = first;
  const SegmentHeader& last = run.back()->header;
  fin.last_txid = last.last_txid;
  fin.last_ts_ms = last.last_ts_ms;
  fin.checksum_after = last.checksum_after;
  fin.pages_after = last.pages_after;
  s = b.Finish(fin);
  if (!s.ok()) return s;
  *out = std::move(sink.buffer());
  return Status::OK();
}

}  // namespace

Packer::Packer(std::shared_ptr<ObjectStore> store, PackerConfig cfg, StoredFn stored, std::function<int64_t()> now_ms)
    : store_(std::move(store)), cfg_(std::move(cfg)), stored_fn_(std::move(stored)), now_ms_(std::move(now_ms)) {}

Packer::AddResult Packer::Add(PackMember&& m, int64_t* seal_at_ms) {
  MutexLock l(mu_);
  // Refused while a stored pack failed, or while what waits in memory
  // (open, sealed, not yet unpacked) is twice the unpack threshold.
  if (failing_ || open_bytes_ + sealed_bytes_ + stored_bytes_ >= 2 * cfg_.unpack_bytes) return AddResult::kRefused;
  PackMemberEntry e;
  e.name = PackMemberName(m.db_prefix);
  e.generation = m.header.generation;
  e.first_txid = m.header.first_txid;
  e.last_txid = m.header.last_txid;
  const bool first = !open_;
  const int64_t now = now_ms_();
  // Credited at most half a window: when captures fall behind (an
  // overloaded machine), packs still carry half a window of commits
  // instead of being sealed at once, one PUT per capture.
  const int64_t due = std::clamp(m.since_ms > 0 ? m.since_ms : now, now - cfg_.window_ms / 2, now) + cfg_.window_ms;
  if (first) {
    open_pack_ = Pack();
    open_pack_.created_ms = now;
    open_pack_.seal_at_ms = due;
    open_ = std::make_unique<PackBuilder>(open_pack_.created_ms);
  }
  if (!open_->Add(std::move(e), m.segment).ok()) {
    if (first) open_.reset();
    return AddResult::kRefused;
  }
  const bool sooner = first || due < open_pack_.seal_at_ms;
  open_pack_.seal_at_ms = std::min(open_pack_.seal_at_ms, due);
  if (seal_at_ms) *seal_at_ms = open_pack_.seal_at_ms;
  open_bytes_ += m.segment.size();
  open_pack_.members.push_back(std::move(m));
  if (open_->bytes() < cfg_.max_bytes) return sooner ? AddResult::kAddedFirst : AddResult::kAdded;
  SealLocked();  // full: Flush stores it
  return AddResult::kAddedFull;
}

void Packer::SealLocked() {
  open_pack_.body = open_->Finish(&open_pack_.index_offset);
  open_pack_.bytes = open_pack_.body.size();
  open_pack_.key = PackKey(cfg_.pack_dir, open_pack_.created_ms, open_pack_.index_offset);
  sealed_bytes_ += open_bytes_;
  open_bytes_ = 0;
  sealed_.push_back(std::move(open_pack_));
  open_pack_ = Pack();
  open_.reset();
}

Status Packer::Flush(bool all) {
  {
    MutexLock l(mu_);
    if (open_ && (all || now_ms_() >= open_pack_.seal_at_ms)) SealLocked();
    if (flushing_) return Status::OK();
    flushing_ = true;
  }
  for (;;) {
    Pack p;
    {
      MutexLock l(mu_);
      if (sealed_.empty()) {
        flushing_ = false;
        return Status::OK();
      }
      p = std::move(sealed_.front());
      sealed_.pop_front();
    }
    PutOptions po;
    po.if_none_match = true;
    Status st = store_->Put(p.key, p.body, po);
    if (st.code() == Code::kFailedPrecondition) {
      // Ours, when an earlier attempt's answer was lost; else another
      // writer's pack under the same id (same ms, same 16 random bits).
      std::string there;
      Status g = store_->Get(p.key, &there);
      if (g.ok() && there == p.body) st = Status::OK();
      else if (g.ok()) p.key = PackKey(cfg_.pack_dir, p.created_ms, p.index_offset);  // retried under another id
    }
    if (!st.ok()) {
      MutexLock l(mu_);
      sealed_.push_front(std::move(p));
      failing_ = true;
      flushing_ = false;
      return st.Annotate("storing pack " + sealed_.front().key + ": ");
    }
    uint64_t member_bytes = 0;
    for (const auto& m : p.members) member_bytes += m.segment.size();
    std::string().swap(p.body);
    stored_fn_(p.members, p.key, p.bytes);
    MutexLock l(mu_);
    failing_ = false;
    sealed_bytes_ -= member_bytes;
    if (stored_bytes_ + member_bytes > cfg_.unpack_bytes) {
      // Past the budget: unpacking reads it back (one GET for all its members).
      std::vector<PackMember>().swap(p.members);
      p.read_back = true;
    } else {
      p.member_bytes = member_bytes;
      stored_bytes_ += member_bytes;
      for (auto& m : p.members) m.note.reset();
    }
    ours_.insert(p.key);
    stored_.push_back(std::move(p));
  }
}

Status Packer::Unpack(bool now, int64_t foreign_after_ms, UnpackStats* stats) {
  *stats = UnpackStats();
  std::vector<Pack> packs;
  {
    MutexLock l(mu_);
    if (unpacking_) return Status::OK();
    const int64_t t = now_ms_();
    const bool due = !stored_.empty() && (now || t - stored_.front().created_ms >= cfg_.unpack_ms);
    if (!due && foreign_after_ms <= 0) return Status::OK();
    unpacking_ = true;
    if (due) {
      for (auto& p : stored_) packs.push_back(std::move(p));
      stored_.clear();
    }
  }
  Status st;
  if (foreign_after_ms > 0) {
    // Packs no process of ours is about to unpack: a crashed process's, or
    // an instance's that stopped. Read back whole, unpacked with ours.
    std::vector<ObjectInfo> listed;
    st = store_->List(cfg_.pack_dir, &listed);
    const int64_t t = now_ms_();
    for (size_t i = 0; st.ok() && i < listed.size(); i++) {
      int64_t created;
      if (!ParsePackKey(cfg_.pack_dir, listed[i].key, &created) || t - created < foreign_after_ms) continue;
      {
        MutexLock l(mu_);
        if (ours_.count(listed[i].key)) continue;
      }
      Pack p;
      p.key = listed[i].key;
      p.created_ms = created;
      Status g = LoadPack(&p);
      if (g.code() == Code::kNotFound) continue;
      if (!g.ok()) {
        st = g;
        break;
      }
      packs.push_back(std::move(p));
      stats->foreign_packs++;
    }
  }
  for (auto& p : packs) {
    if (!st.ok() || !p.read_back) continue;
    st = LoadPack(&p);
    if (st.code() == Code::kNotFound) {  // unpacked by another process (it found it old enough)
      p.members.clear();
      st = Status::OK();
    }
  }
  if (st.ok()) st = UnpackPacks(packs, stats);
  MutexLock l(mu_);
  unpacking_ = false;
  if (!st.ok()) {
    // Ours go back, oldest first, for the next run; foreign ones are found again.
    for (auto it = packs.rbegin(); it != packs.rend(); ++it) {
      if (!ours_.count(it->key)) continue;
      if (it->read_back) std::vector<PackMember>().swap(it->members);
      stored_.push_front(std::move(*it));
    }
    return st;
  }
  for (const auto& p : packs)
    if (ours_.erase(p.key)) stored_bytes_ -= p.member_bytes;
  return st;
}

Status Packer::LoadPack(Pack* p) {
  std::string body;
  Status g = store_->Get(p->key, &body);
  PackIndex ix;
  if (g.ok()) g = DecodePack(body, &ix);
  if (!g.ok()) return g.code() == Code::kNotFound ? g : g.Annotate("reading back pack " + p->key + ": ");
  p->members.clear();
  const std::string root = cfg_.pack_dir.substr(0, cfg_.pack_dir.size() - std::strlen(kPackDirName) - 1);
  for (const auto& e : ix.members) {
    PackMember m;
    m.db_prefix = root + e.name;
    m.segment = body.substr(e.offset, e.length);
    Status h = DecodeSegmentHeader(m.segment.substr(0, kSegHeaderSize), &m.header);
    if (!h.ok() || m.header.generation != e.generation || m.header.first_txid != e.first_txid ||
        m.header.last_txid != e.last_txid)
      return Status::Corruption("pack " + p->key + ": member " + e.name + " does not match its index entry");
    p->members.push_back(std::move(m));
  }
  return Status::OK();
}

Status Packer::UnpackPacks(std::vector<Pack>& packs, UnpackStats* stats) {
  if (packs.empty()) return Status::OK();
  std::map<std::pair<std::string, std::string>, std::vector<const PackMember*>> by_db;
  for (const auto& p : packs)
    for (const auto& m : p.members) by_db[{m.db_prefix, m.header.generation}].push_back(&m);
  // One object per database, generation and run of consecutive txids; a
  // member inside a run already taken (the same transactions captured again
  // after a crash) is left out.
  struct Run {
    const std::pair<std::string, std::string>* db;
    std::vector<const PackMember*> members;
  };
  std::vector<Run> runs;
  for (auto& [db, members] : by_db) {
    std::stable_sort(members.begin(), members.end(), [](const PackMember* a, const PackMember* b) {
      return a->header.first_txid != b->header.first_txid ? a->header.first_txid < b->header.first_txid
                                                          : a->header.last_txid > b->header.last_txid;
    });
    for (const PackMember* m : members) {
      if (!runs.empty() && runs.back().db == &db) {
        const SegmentHeader& last = runs.back().members.back()->header;
        if (m->header.last_txid <= last.last_txid) continue;
        if (m->header.first_txid == last.last_txid + 1) {
          runs.back().members.push_back(m);
          continue;
        }
      }
      runs.push_back(Run{&db, {m}});
    }
  }
  // Written by a few threads at once: one PUT per database and run, each
  // waiting on the store.
  std::atomic<uint64_t> written{0}, existing{0}, bytes_written{0};
  Status s = ForEachParallel(runs.size(), kUnpackThreads, [&](size_t i) {
    const Run& r = runs[i];
    std::string bytes;
    Status m = MergeRun(r.members, cfg_.zstd_level, &bytes);
    if (!m.ok()) return m.Annotate("unpacking " + r.db->first + ": ");
    PutOptions po;
    po.if_none_match = true;
    m = store_->Put(SegmentKey(r.db->first, r.db->second, r.members.front()->header.first_txid,
                               r.members.back()->header.last_txid),
                    bytes, po);
    if (m.code() == Code::kFailedPrecondition) {
      existing++;  // left by an unpack a crash interrupted: the same transactions
      return Status::OK();
    }
    if (!m.ok()) return m.Annotate("unpacking " + r.db->first + ": ");
    written++;
    bytes_written += bytes.size();
    return Status::OK();
  });
  stats->objects_written += written;
  stats->objects_existing += existing;
  stats->bytes_written += bytes_written;
  if (!s.ok()) return s;  // the packs stay; the next run writes what is missing
  std::vector<std::string> keys;
  for (const auto& p : packs) keys.push_back(p.key);
  s = store_->Delete(keys);
  if (!s.ok()) return s.Annotate("deleting unpacked packs: ");
  stats->packs += packs.size();
  return Status::OK();
}

uint64_t Packer::memory_bytes() const {
  MutexLock l(mu_);
  return open_bytes_ + sealed_bytes_ + stored_bytes_;
}

size_t Packer::pending_members() const {
  MutexLock l(mu_);
  size_t n = open_pack_.members.size();
  for (const auto& p : sealed_) n += p.members.size();
  return n;
}

std::vector<uint32_t> Packer::PendingDbIds() const {
  MutexLock l(mu_);
  std::vector<uint32_t> ids;
  for (const auto& m : open_pack_.members) ids.push_back(m.db_id);
  for (const auto& p : sealed_)
    for (const auto& m : p.members) ids.push_back(m.db_id);
  return ids;
}

bool Packer::failing() const {
  MutexLock l(mu_);
  return failing_;
}

bool Packer::idle() const {
  MutexLock l(mu_);
  return !open_ && sealed_.empty() && stored_.empty();
}

}  // namespace replite
