#include "replica/packer.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <unistd.h>

#include "format/layout.h"
#include "store/parallel_requests.h"
#include "util/file_util.h"

namespace replite {
namespace {

constexpr size_t kUnpackThreads = 8;
// What one member's index entry costs while a pass holds it (the entry,
// its name, its place in the pass's map): the passes are sized by it.
constexpr uint64_t kRefBytes = 256;

// One segment object holding the transactions of `run` (consecutive txids,
// in order), block by block: every txid stays a restore point.
Status MergeRun(std::vector<PackMember>& run, int level, std::string* out) {
  if (run.size() == 1) {
    *out = std::move(run[0].segment);
    return Status::OK();
  }
  const SegmentHeader& first = run.front().header;
  StringSink sink;
  SegmentBuilder b(&sink, first, level, true);
  Status s = b.Start();
  for (PackMember& m : run) {
    if (!s.ok()) break;
    SegmentHeader h;
    std::vector<DecodedBlock> blocks;
    s = DecodeSegment(m.segment, &h, &blocks);
    std::string().swap(m.segment);  // (decoded: its blocks are what is held now)
    for (const auto& blk : blocks) {
      if (!s.ok()) break;
      s = b.AddBlock(blk.txid, blk.ts_ms, blk.db_pages, blk.checksum_after, blk.flags, blk.pgnos, blk.pages);
    }
  }
  if (!s.ok()) return s;
  SegmentHeader fin = first;
  const SegmentHeader& last = run.back().header;
  fin.last_txid = last.last_txid;
  fin.last_ts_ms = last.last_ts_ms;
  fin.checksum_after = last.checksum_after;
  fin.pages_after = last.pages_after;
  s = b.Finish(fin);
  if (!s.ok()) return s;
  *out = std::move(sink.buffer());
  return Status::OK();
}

PackerConfig WithSpillCount(PackerConfig cfg) {
  if (!cfg.spill_used) cfg.spill_used = std::make_shared<std::atomic<uint64_t>>(0);
  return cfg;
}

}  // namespace

Packer::Packer(std::shared_ptr<ObjectStore> store, PackerConfig cfg, StoredFn stored, std::function<int64_t()> now_ms)
    : store_(std::move(store)), cfg_(WithSpillCount(std::move(cfg))), stored_fn_(std::move(stored)),
      now_ms_(std::move(now_ms)) {}

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
    Status st;
    for (int attempt = 0; attempt < 4; attempt++) {
      st = store_->Put(p.key, p.body, po);
      if (st.code() != Code::kFailedPrecondition) break;
      // Ours, when an earlier attempt's answer was lost; else another pack
      // under the same id (same ms, same 15 random bits): stored under
      // another one at once.
      std::string there;
      Status g = store_->Get(p.key, &there);
      if (g.ok() && there == p.body) st = Status::OK();
      if (!g.ok() || st.ok()) break;
      p.key = PackKey(cfg_.pack_dir, p.created_ms, p.index_offset);
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
    p.member_count = p.members.size();
    stored_fn_(p.members, p.key, p.bytes);
    std::vector<PackMember>().swap(p.members);  // the body holds them
    bool keep;
    {
      MutexLock l(mu_);
      keep = stored_bytes_ + p.bytes <= cfg_.unpack_bytes;
      if (keep) stored_bytes_ += p.bytes;
    }
    if (!keep) {
      // Past the memory budget: a local copy, else read back by ranges.
      Spill(&p, p.body);
      std::string().swap(p.body);
    }
    MutexLock l(mu_);
    failing_ = false;
    sealed_bytes_ -= member_bytes;
    ours_.insert(p.key);
    stored_.push_back(std::move(p));
  }
}

void Packer::Spill(Pack* p, const std::string& body) {
  if (cfg_.spill_dir.empty()) return;
  std::atomic<uint64_t>& used = *cfg_.spill_used;
  uint64_t was = used.load();
  do {
    if (body.size() > cfg_.spill_cap || was > cfg_.spill_cap - body.size()) return;  // full: read back from the store
  } while (!used.compare_exchange_weak(was, was + body.size()));
  const std::string path = cfg_.spill_dir + "/pack" + TempSuffix();
  ScopedFd fd;
  Status s = OpenFile(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &fd);
  if (s.ok()) s = WriteAll(fd.get(), body.data(), body.size(), path);
  if (s.ok()) {
    p->spill = path;
    p->spill_bytes = body.size();
    return;
  }
  if (fd.get() >= 0) ::unlink(path.c_str());
  used -= body.size();
}

void Packer::RemoveSpill(Pack* p) {
  if (p->spill.empty()) return;
  ::unlink(p->spill.c_str());
  p->spill.clear();
  *cfg_.spill_used -= p->spill_bytes;
  p->spill_bytes = 0;
}

Packer::~Packer() {
  // What waits is durable in the store: a later process finds it there.
  MutexLock l(mu_);
  for (auto& p : stored_) RemoveSpill(&p);
}

Status Packer::ReadRange(const Pack& p, uint64_t offset, uint64_t length, std::string* out) const {
  if (offset > p.bytes || length > p.bytes - offset)
    return Status::Corruption("pack " + p.key + ": range " + std::to_string(offset) + "+" + std::to_string(length) +
                              " is past its end (" + std::to_string(p.bytes) + " bytes)");
  if (!p.body.empty()) {
    out->assign(p.body, offset, length);
    return Status::OK();
  }
  auto from_store = [&] {
    Status g = store_->Get(p.key, out, offset, length);
    if (g.ok() && out->size() != length) return Status::Corruption("pack " + p.key + ": short read");
    return g;
  };
  if (p.spill.empty()) return from_store();
  ScopedFd fd;
  Status s = OpenFile(p.spill, O_RDONLY | O_CLOEXEC, 0, &fd);
  out->resize(length);
  size_t got = 0;
  if (s.ok()) s = PRead(fd.get(), out->data(), length, offset, &got, p.spill);
  if (s.ok() && got != length) s = Status::IOError("read " + p.spill + ": short read");
  return s.ok() ? s : from_store();  // the local copy is gone or damaged: the store has it
}

Status Packer::ReadIndex(const Pack& p, PackIndex* ix) const {
  if (!p.body.empty()) return DecodePack(p.body, ix);
  if (p.index_offset > p.bytes) return Status::Corruption("pack " + p.key + ": index offset past its end");
  std::string tail;
  Status s = ReadRange(p, p.index_offset, p.bytes - p.index_offset, &tail);
  if (s.ok()) s = DecodePackTail(p.key, tail, p.index_offset, p.bytes, ix);
  if (s.code() != Code::kCorruption || p.spill.empty()) return s;
  // A damaged local copy (not the store's pack): the store's index.
  s = store_->Get(p.key, &tail, p.index_offset, p.bytes - p.index_offset);
  if (!s.ok()) return s;
  return DecodePackTail(p.key, tail, p.index_offset, p.bytes, ix);
}

Status Packer::FetchForeign(Pack* p) {
  std::string body;
  Status g = store_->Get(p->key, &body);
  PackIndex ix;
  if (g.ok()) g = DecodePack(body, &ix);
  if (!g.ok()) return g.code() == Code::kNotFound ? g : g.Annotate("reading back pack " + p->key + ": ");
  p->bytes = body.size();
  p->member_count = ix.members.size();
  Spill(p, body);
  return Status::OK();
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
  const size_t ours = packs.size();
  Status st;
  if (foreign_after_ms > 0) {
    // Packs no process of ours is about to unpack: a crashed process's, or
    // an instance's that stopped. Copied here one at a time, unpacked with
    // ours.
    std::vector<ObjectInfo> listed;
    st = store_->List(cfg_.pack_dir, &listed);
    const int64_t t = now_ms_();
    for (size_t i = 0; st.ok() && i < listed.size(); i++) {
      int64_t created;
      uint64_t at;
      if (!ParsePackKey(cfg_.pack_dir, listed[i].key, &created, &at) || t - created < foreign_after_ms) continue;
      {
        MutexLock l(mu_);
        if (ours_.count(listed[i].key)) continue;
      }
      Pack p;
      p.key = listed[i].key;
      p.created_ms = created;
      p.index_offset = at;
      Status g = FetchForeign(&p);
      if (g.code() == Code::kNotFound) continue;
      if (!g.ok()) {
        st = g;
        break;
      }
      packs.push_back(std::move(p));
      stats->foreign_packs++;
    }
  }
  if (st.ok()) st = UnpackPacks(packs, stats);
  for (size_t i = ours; i < packs.size(); i++) RemoveSpill(&packs[i]);  // found again if need be
  MutexLock l(mu_);
  unpacking_ = false;
  if (!st.ok()) {
    // Ours go back, oldest first, for the next run.
    for (size_t i = ours; i-- > 0;) stored_.push_front(std::move(packs[i]));
    return st;
  }
  for (size_t i = 0; i < ours; i++) {
    ours_.erase(packs[i].key);
    stored_bytes_ -= packs[i].body.size();
    RemoveSpill(&packs[i]);
  }
  return st;
}

// A member of one pass: where its bytes are (the name and generation are
// its map key).
struct Packer::MemberRef {
  uint32_t pack = 0;
  uint64_t offset = 0, length = 0, first_txid = 0, last_txid = 0;
};

struct Packer::Run {
  const std::pair<std::string, std::string>* db;  // member name, generation
  std::vector<const MemberRef*> members;
};

uint64_t Packer::run_bytes() const {
  return std::max<uint64_t>(cfg_.max_bytes / 4, cfg_.unpack_bytes / (2 * kUnpackThreads));
}

Status Packer::UnpackPacks(const std::vector<Pack>& packs, UnpackStats* stats) {
  if (packs.empty()) return Status::OK();
  uint64_t members = 0;
  for (const auto& p : packs) members += p.member_count;
  const size_t parts = size_t(std::max<uint64_t>(1, (members * kRefBytes + cfg_.unpack_bytes - 1) / cfg_.unpack_bytes));
  for (size_t part = 0; part < parts; part++) {
    Status s = UnpackPart(packs, part, parts, stats);
    if (!s.ok()) return s;  // the packs stay; the next run writes what is missing
    stats->passes++;
  }
  std::vector<std::string> keys;
  for (const auto& p : packs) keys.push_back(p.key);
  Status s = store_->Delete(keys);
  if (!s.ok()) return s.Annotate("deleting unpacked packs: ");
  stats->packs += packs.size();
  return Status::OK();
}

Status Packer::UnpackPart(const std::vector<Pack>& packs, size_t part, size_t parts, UnpackStats* stats) {
  std::map<std::pair<std::string, std::string>, std::vector<MemberRef>> by_db;
  const std::hash<std::string> hash;
  for (size_t i = 0; i < packs.size(); i++) {
    PackIndex ix;
    Status s = ReadIndex(packs[i], &ix);
    if (s.code() == Code::kNotFound) continue;  // unpacked by another process (it found it old enough)
    if (!s.ok()) return s.Annotate("unpacking: ");
    for (auto& e : ix.members) {
      if (parts > 1 && hash(e.name) % parts != part) continue;
      by_db[{std::move(e.name), std::move(e.generation)}].push_back(
          MemberRef{uint32_t(i), e.offset, e.length, e.first_txid, e.last_txid});
    }
  }
  // One object per database, generation and run of consecutive txids (split
  // past run_bytes()); a member inside a run already taken (the same
  // transactions captured again after a crash) is left out.
  const uint64_t cap = run_bytes();
  std::vector<Run> runs;
  uint64_t run_len = 0;
  for (auto& [db, refs] : by_db) {
    std::stable_sort(refs.begin(), refs.end(), [](const MemberRef& a, const MemberRef& b) {
      return a.first_txid != b.first_txid ? a.first_txid < b.first_txid : a.last_txid > b.last_txid;
    });
    for (const MemberRef& m : refs) {
      if (!runs.empty() && runs.back().db == &db) {
        const MemberRef& last = *runs.back().members.back();
        if (m.last_txid <= last.last_txid) continue;
        if (m.first_txid == last.last_txid + 1 && run_len + m.length <= cap) {
          runs.back().members.push_back(&m);
          run_len += m.length;
          continue;
        }
      }
      runs.push_back(Run{&db, {&m}});
      run_len = m.length;
    }
  }
  const std::string root = cfg_.pack_dir.substr(0, cfg_.pack_dir.size() - std::strlen(kPackDirName) - 1);
  // Written by a few threads at once: one PUT per database and run, each
  // waiting on the store; each reads its run's members only then.
  std::atomic<uint64_t> written{0}, existing{0}, bytes_written{0}, held{0}, peak{stats->peak_member_bytes};
  Status s = ForEachParallel(runs.size(), kUnpackThreads, [&](size_t i) {
    const Run& r = runs[i];
    const std::string prefix = root + r.db->first;
    std::vector<PackMember> loaded(r.members.size());
    uint64_t run_held = 0;
    struct Release {
      std::atomic<uint64_t>& held;
      uint64_t& n;
      ~Release() { held -= n; }
    } release{held, run_held};
    for (size_t j = 0; j < r.members.size(); j++) {
      const MemberRef& ref = *r.members[j];
      PackMember& m = loaded[j];
      Status g = ReadRange(packs[ref.pack], ref.offset, ref.length, &m.segment);
      if (!g.ok()) return g.Annotate("unpacking " + prefix + ": ");
      run_held += m.segment.size();
      const uint64_t now_held = held += m.segment.size();
      for (uint64_t p = peak.load(); now_held > p && !peak.compare_exchange_weak(p, now_held);) {
      }
      g = m.segment.size() < kSegHeaderSize ? Status::Corruption("too short")
                                             : DecodeSegmentHeader(m.segment.substr(0, kSegHeaderSize), &m.header);
      if (!g.ok() || m.header.generation != r.db->second || m.header.first_txid != ref.first_txid ||
          m.header.last_txid != ref.last_txid)
        return Status::Corruption("pack " + packs[ref.pack].key + ": member " + r.db->first +
                                  " does not match its index entry");
    }
    std::string bytes;
    Status m = MergeRun(loaded, cfg_.zstd_level, &bytes);
    if (!m.ok()) return m.Annotate("unpacking " + prefix + ": ");
    PutOptions po;
    po.if_none_match = true;
    m = store_->Put(SegmentKey(prefix, r.db->second, r.members.front()->first_txid, r.members.back()->last_txid),
                    bytes, po);
    if (m.code() == Code::kFailedPrecondition) {
      existing++;  // left by an unpack a crash interrupted: the same transactions
      return Status::OK();
    }
    if (!m.ok()) return m.Annotate("unpacking " + prefix + ": ");
    written++;
    bytes_written += bytes.size();
    return Status::OK();
  });
  stats->objects_written += written;
  stats->objects_existing += existing;
  stats->bytes_written += bytes_written;
  stats->peak_member_bytes = peak;
  return s;
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

uint64_t Packer::spilled_bytes() const {
  MutexLock l(mu_);
  uint64_t n = 0;
  for (const auto& p : stored_) n += p.spill_bytes;
  return n;
}

size_t Packer::spilled_packs() const {
  MutexLock l(mu_);
  size_t n = 0;
  for (const auto& p : stored_) n += !p.spill.empty();
  return n;
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
