// Restore: plan (generation, base snapshot, chain of segments), stream the
// blocks into a temporary file beside the target, verify, rename.
#include "replite/restore.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <future>
#include <optional>
#include <unordered_map>
#include <limits>

#include "format/layout.h"
#include "replica/catalog.h"
#include "replica/object_reader.h"
#include "replica/pack_catalog.h"
#include "restore/block_prefetcher.h"
#include "replite/sys/env.h"
#include "store/store_registry.h"
#include "util/file_util.h"
#include "util/time_format.h"
#include "util/hash.h"

namespace replite {
namespace {

struct Plan {
  std::string generation;
  ObjectRef snapshot;
  std::vector<ObjectRef> segments;
  uint64_t target = 0;     // the txid the objects rebuild
  uint64_t requested = 0;  // the txid asked for; above target only when a segment is missing
  std::string gap;         // why target < requested
};

// Chooses the snapshot and segments of `cat` that rebuild txid `target`.
// A txid no segment holds is an error, or with `stop_at_gap` the end of the
// plan (Plan::gap says which txids are missing).
Status PlanInGeneration(const GenerationCatalog& cat, uint64_t target, const std::string& where, bool stop_at_gap,
                        Plan* plan) {
  const ObjectRef* base = nullptr;
  for (const auto& s : cat.snapshots)
    if (s.first_txid <= target) base = &s;
  if (!base) return Status::NotFound(where + ": no snapshot at or before txid " + std::to_string(target) +
                                     " in generation " + cat.id);
  plan->generation = cat.id;
  plan->snapshot = *base;
  plan->segments.clear();
  plan->target = plan->requested = target;
  plan->gap.clear();
  uint64_t need = base->first_txid + 1;
  while (need <= target) {
    // The object holding `need` that reaches furthest: a per-sync segment
    // (every txid in it is a restore point) or a compacted object ending at
    // or before the target (only its last txid is one). Coarse objects come
    // first because they reach furthest; the tail is per-sync segments.
    const ObjectRef* best = nullptr;
    uint64_t next_first = 0;  // where the next segment after the gap starts
    for (const auto& s : cat.segments) {
      if (s.first_txid <= need && s.last_txid >= need && (!best || s.last_txid > best->last_txid)) best = &s;
      if (s.first_txid > need && (next_first == 0 || s.first_txid < next_first)) next_first = s.first_txid;
    }
    for (const auto& c : cat.compacted) {
      if (c.last_txid > target) continue;
      if (c.first_txid <= need && c.last_txid >= need && (!best || c.last_txid > best->last_txid)) best = &c;
      if (c.first_txid > need && (next_first == 0 || c.first_txid < next_first)) next_first = c.first_txid;
    }
    if (!best) {
      const uint64_t gap_end = next_first ? std::min(target, next_first - 1) : target;
      // Inside a compacted range only its last txid is a restore point.
      std::string restore_points;
      for (const auto& c : cat.compacted)
        if (c.first_txid <= need && c.last_txid >= need) {
          restore_points = " (compacted: txid " + std::to_string(target) +
                           " is no longer a restore point; the nearest after it is " + std::to_string(c.last_txid) + ")";
          break;
        }
      const std::string missing = "generation " + cat.id + " has no segment holding txid" +
                                  (gap_end > need ? "s " + std::to_string(need) + ".." + std::to_string(gap_end)
                                                  : " " + std::to_string(need)) +
                                  restore_points;
      if (!stop_at_gap)
        return Status::NotFound(where + ": " + missing + " (missing object; restore an earlier txid or another generation)");
      plan->target = need - 1;
      plan->gap = "missing object: " + missing;
      break;
    }
    plan->segments.push_back(*best);
    need = best->last_txid + 1;
  }
  return Status::OK();
}

// Shortens `plan` to end at txid `target` (< plan->target).
void TruncatePlan(Plan* plan, uint64_t target) {
  plan->target = target;
  auto past = [target](const ObjectRef& s) { return s.first_txid > target; };
  plan->segments.erase(std::remove_if(plan->segments.begin(), plan->segments.end(), past), plan->segments.end());
}

class Applier {
 public:
  Applier(ObjectStore* store, const std::string& tmp, RestoreOptions opts) : store_(store), tmp_(tmp), opts_(std::move(opts)) {}

  Status Open() { return OpenFile(tmp_, O_RDWR | O_CREAT | O_EXCL, 0600, &fd_); }  // the data is private

  // Fetches a small object whole on its own thread (a large one is read in
  // ranges when applied: nothing is fetched ahead).
  std::future<std::pair<Status, std::string>> StartFetch(const ObjectRef& o) {
    ObjectStore* store = store_;
    return std::async(std::launch::async, [store, o]() {
      std::pair<Status, std::string> out;
      if (o.size <= ObjectReader::kWholeObjectBytes) out.first = ObjectReader::FetchWhole(store, o.key, o.size, &out.second, o.offset);
      return out;
    });
  }

  // Opens object `o` of `plan` from what StartFetch got, and checks its
  // header against its name, the plan's generation and the page size.
  Status OpenFetched(const Plan& plan, const ObjectRef& o, std::pair<Status, std::string> got,
                     std::optional<ObjectReader>* rd) {
    if (!got.first.ok()) return got.first;
    if (o.size <= ObjectReader::kWholeObjectBytes) rd->emplace(store_, o.key, std::move(got.second));
    else rd->emplace(store_, o.key, o.size, o.offset);
    Status s = (*rd)->Open();
    if (!s.ok()) return s;
    const SegmentHeader& h = (*rd)->header();
    if (h.generation != plan.generation || h.first_txid != o.first_txid || h.last_txid != o.last_txid)
      return Status::Corruption("object " + o.key + ": header does not match its name");
    if (page_size_ == 0) page_size_ = h.page_size;
    if (h.page_size != page_size_) return Status::Corruption("object " + o.key + ": page size changes inside a generation");
    return Status::OK();
  }

  // Writes the plan's transactions into the file. When it fails,
  // failed_key() is the object being applied, has_tx() whether a whole
  // transaction (at least the snapshot) was written, last_txid() the last
  // one, and partial() whether pages of the next one were written too.
  Status Apply(const Plan& plan, RestoreResult* r) {
    uint64_t total = plan.snapshot.size, done = 0;
    for (const auto& s : plan.segments) total += s.size;
    std::vector<ObjectRef> objs{plan.snapshot};
    objs.insert(objs.end(), plan.segments.begin(), plan.segments.end());
    uint64_t next = plan.snapshot.first_txid;  // first txid still to apply
    // Small objects are fetched whole, `parallelism` of them ahead of the
    // one being applied (memory: at most parallelism x 8 MiB); large ones
    // (snapshots) stream in ranged reads.
    const size_t ahead = size_t(std::max(1, opts_.parallelism));
    std::deque<std::future<std::pair<Status, std::string>>> fetches;
    size_t queued = 0;
    auto fetch_more = [&] {
      while (queued < objs.size() && fetches.size() < ahead) {
        const ObjectRef o = objs[queued++];
        fetches.push_back(StartFetch(o));
      }
    };
    for (const auto& o : objs) {
      failed_key_ = o.key;
      fetch_more();
      auto got = fetches.front().get();
      fetches.pop_front();
      std::optional<ObjectReader> opened;
      Status s = OpenFetched(plan, o, std::move(got), &opened);
      if (!s.ok()) return s;
      ObjectReader& rd = *opened;
      for (size_t i = 0; i < rd.index().size(); i++) {
        const BlockIndexEntry& e = rd.index()[i];
        if (e.txid < next || e.txid > plan.target) continue;  // overlap with the previous segment / past target
        DecodedBlock b;
        s = rd.ReadBlock(i, &b);
        if (!s.ok()) return s;
        for (size_t k = 0; k < b.pgnos.size(); k++) {
          s = PWriteAll(fd_.get(), b.pages.data() + k * page_size_, page_size_, uint64_t(b.pgnos[k] - 1) * page_size_, tmp_);
          if (!s.ok()) return s;
        }
        partial_ = true;
        if (b.flags & kBlockTxEnd) {
          if (b.db_pages < pages_) {
            if (::ftruncate(fd_.get(), off_t(b.db_pages) * page_size_) != 0) return ErrnoStatus("truncate " + tmp_, errno);
          }
          pages_ = b.db_pages;
          last_txid_ = b.txid;
          last_ts_ = b.ts_ms;
          checksum_ = b.checksum_after;
          has_checksum_ = !(b.flags & kBlockNoChecksum);
          next = b.txid + 1;
          has_tx_ = true;
          partial_ = false;
        }
      }
      done += o.size;
      r->objects++;
      r->bytes += o.size;
      if (opts_.progress) opts_.progress(done, total);
    }
    if (last_txid_ != plan.target)
      return Status::Corruption("replica ends at txid " + std::to_string(last_txid_) + " (last object " + failed_key_ +
                                "), before the requested txid " + std::to_string(plan.target));
    return Status::OK();
  }

  // Writes the plan's target state newest object first, each page once:
  // the newest version of a page that survives to the target (a version
  // is cut off when a transaction at or after it, up to the target, ends
  // with fewer pages). Pages no surviving version writes stay holes (zeros,
  // as the format says a page grown over without being written is). Memory:
  // one bit per page of the target's size. Any damage fails the restore
  // (stop_at_last_good uses Apply, which stops at the last whole
  // transaction).
  Status ApplyNewestFirst(const Plan& plan, RestoreResult* r) {
    std::vector<ObjectRef> objs{plan.snapshot};
    objs.insert(objs.end(), plan.segments.begin(), plan.segments.end());
    uint64_t total = 0, done = 0;
    for (const auto& o : objs) total += o.size;
    // The first txid each object contributes: before it, an overlap with
    // the object before (whose blocks hold the same commits).
    std::vector<uint64_t> from(objs.size(), plan.snapshot.first_txid);
    for (size_t k = 1; k < objs.size(); k++) from[k] = objs[k - 1].last_txid + 1;
    const size_t ahead = size_t(std::max(1, opts_.parallelism));
    std::deque<std::future<std::pair<Status, std::string>>> fetches;
    size_t queued = 0;  // counted from the newest
    auto fetch_more = [&] {
      while (queued < objs.size() && fetches.size() < ahead) {
        const ObjectRef o = objs[objs.size() - 1 - queued++];
        fetches.push_back(StartFetch(o));
      }
    };
    std::vector<bool> written;  // by a newer object
    uint32_t limit = std::numeric_limits<uint32_t>::max();  // smallest size after, from newer objects
    for (size_t k = objs.size(); k-- > 0;) {
      const ObjectRef& o = objs[k];
      failed_key_ = o.key;
      fetch_more();
      auto got = fetches.front().get();
      fetches.pop_front();
      std::optional<ObjectReader> opened;
      Status s = OpenFetched(plan, o, std::move(got), &opened);
      if (!s.ok()) return s;
      ObjectReader& rd = *opened;
      const std::vector<BlockIndexEntry>& idx = rd.index();
      auto applies = [&](const BlockIndexEntry& e) { return e.txid >= from[k] && e.txid <= plan.target; };
      if (k + 1 == objs.size()) {
        // The newest object ends the target transaction.
        const BlockIndexEntry* end = nullptr;
        for (const auto& e : idx)
          if (e.txid == plan.target && (e.flags & kBlockTxEnd)) end = &e;
        if (!end)
          return Status::Corruption("object " + o.key + " does not end txid " + std::to_string(plan.target) +
                                    ", the requested txid");
        pages_ = end->db_pages;
        last_txid_ = end->txid;
        last_ts_ = end->ts_ms;
        checksum_ = end->checksum_after;
        has_checksum_ = !(end->flags & kBlockNoChecksum);
        written.assign(size_t(pages_) + 1, false);
      }
      // lim[i]: the smallest size after of the transactions from block i's
      // to the target; a page above it is cut off before the target.
      std::vector<uint32_t> lim(idx.size());
      uint32_t run = limit;
      for (size_t i = idx.size(); i-- > 0;) {
        if (applies(idx[i]) && (idx[i].flags & kBlockTxEnd)) run = std::min(run, idx[i].db_pages);
        lim[i] = run;
      }
      std::vector<bool> want(idx.size());
      for (size_t i = 0; i < idx.size(); i++) want[i] = applies(idx[i]);
      // Each written page's hash goes into the content checksum; an object
      // with several transactions may write a page again, and then only
      // its last version counts.
      size_t tx_ends = 0;
      for (size_t i = 0; i < idx.size(); i++) tx_ends += want[i] && (idx[i].flags & kBlockTxEnd);
      std::unordered_map<uint32_t, uint64_t> rewritable;
      std::vector<uint32_t> mine;
      // Writes the pages of a block that survive to the target and that no
      // newer object wrote, in runs of consecutive page numbers; leaves in
      // rb the written ones only, with their PageHash (pages skipped are
      // not hashed). Reads `written`, which changes only between objects.
      auto write = [&](ReadyBlock* rb) -> Status {
        DecodedBlock& b = rb->block;
        const uint32_t cut = lim[rb->index];
        auto keep = [&](size_t x) {
          const uint32_t pg = b.pgnos[x];
          return pg <= cut && pg < written.size() && !written[pg];
        };
        size_t kept = 0;
        for (size_t j = 0; j < b.pgnos.size();) {
          if (!keep(j)) {
            j++;
            continue;
          }
          size_t e = j + 1;
          while (e < b.pgnos.size() && b.pgnos[e] == b.pgnos[e - 1] + 1 && keep(e)) e++;
          Status ws = PWriteAll(fd_.get(), b.pages.data() + j * page_size_, (e - j) * size_t(page_size_),
                                uint64_t(b.pgnos[j] - 1) * page_size_, tmp_);
          if (!ws.ok()) return ws;
          for (; j < e; j++, kept++) {
            b.pgnos[kept] = b.pgnos[j];
            rb->hashes.push_back(PageHash(b.pgnos[j], b.pages.data() + j * page_size_, page_size_));
          }
        }
        b.pgnos.resize(kept);
        b.pages.clear();
        return Status::OK();
      };
      {
        // A single transaction names each page once, so its blocks are
        // written in any order, by the threads that decode them; several
        // transactions are written in order here.
        BlockPrefetcher blocks(&rd, want, opts_.parallelism,
                               tx_ends <= 1 ? BlockPrefetcher::OnDecoded(write) : BlockPrefetcher::OnDecoded(),
                               /*hash=*/false);  // `write` hashes the pages it keeps
        for (;;) {
          ReadyBlock rb;
          bool end = false;
          s = blocks.Next(&rb, &end);
          if (!s.ok()) return s;
          if (end) break;
          if (tx_ends > 1) {
            s = write(&rb);
            if (!s.ok()) return s;
          }
          if (opts_.progress && !rd.whole()) {
            const BlockIndexEntry& e = idx[rb.index];
            opts_.progress(done + std::min(o.size, e.offset + e.comp_len), total);
          }
          for (size_t j = 0; j < rb.block.pgnos.size(); j++) {
            mine.push_back(rb.block.pgnos[j]);
            if (tx_ends > 1) rewritable[rb.block.pgnos[j]] = rb.hashes[j];
            else sum_ ^= rb.hashes[j];
          }
        }
      }
      for (const auto& [pg, h] : rewritable) sum_ ^= h;
      for (uint32_t pg : mine) written[pg] = true;
      limit = run;
      done += o.size;
      r->objects++;
      r->bytes += o.size;
      if (opts_.progress) opts_.progress(done, total);
    }
    // Pages no version wrote are zeros.
    const std::string zeros(page_size_, '\0');
    for (uint32_t p = 1; p <= pages_; p++)
      if (!written[p]) sum_ ^= PageHash(p, zeros.data(), page_size_);
    summed_ = true;
    has_tx_ = true;
    return Status::OK();
  }

  // Sizes the file for the last transaction written.
  Status Finish() {
    if (::ftruncate(fd_.get(), off_t(pages_) * page_size_) != 0) return ErrnoStatus("truncate " + tmp_, errno);
    return Status::OK();
  }

  const std::string& failed_key() const { return failed_key_; }
  bool has_tx() const { return has_tx_; }
  uint64_t last_txid() const { return last_txid_; }
  bool partial() const { return partial_; }

  // Recomputes the content checksum from the file just written, or takes
  // the one summed while writing.
  Status Verify(RestoreResult* r) {
    std::string page(page_size_, '\0');
    uint64_t c = sum_;
    for (uint32_t p = 1; p <= pages_ && !summed_; p++) {
      size_t got = 0;
      Status s = PRead(fd_.get(), page.data(), page_size_, uint64_t(p - 1) * page_size_, &got, tmp_);
      if (!s.ok()) return s;
      if (got < page_size_) std::memset(page.data() + got, 0, page_size_ - got);
      c ^= PageHash(p, page.data(), page_size_);
    }
    r->txid = last_txid_;
    r->timestamp_ms = last_ts_;
    r->page_size = page_size_;
    r->pages = pages_;
    r->checksum = c;
    r->checksum_verified = has_checksum_;
    if (has_checksum_ && c != checksum_)
      return Status::Corruption("restored database checksum " + Hex16(c) + " differs from the one recorded at capture (" +
                                Hex16(checksum_) + ") for txid " + std::to_string(last_txid_));
    return Status::OK();
  }

  Status Sync() { return FSync(fd_.get(), tmp_); }

  void CloseFile() { fd_.Reset(); }

 private:
  ObjectStore* store_;
  std::string tmp_;
  RestoreOptions opts_;
  ScopedFd fd_;
  uint32_t page_size_ = 0;
  uint32_t pages_ = 0;
  uint64_t last_txid_ = 0;
  int64_t last_ts_ = 0;
  uint64_t checksum_ = 0;
  bool has_checksum_ = false;
  std::string failed_key_;
  bool has_tx_ = false;
  bool partial_ = false;
  uint64_t sum_ = 0;     // content checksum summed while writing (ApplyNewestFirst)
  bool summed_ = false;
};

// A damaged (checksum, format) or vanished object, as opposed to a store or
// disk that failed: the errors stop_at_last_good stops at.
bool IsDamage(const Status& s) { return s.code() == Code::kCorruption || s.code() == Code::kNotFound; }

// PRAGMA integrity_check of the restored file.
Status IntegrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  Status s;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    s = Status::Corruption("restored database " + path + " does not open: " + (db ? sqlite3_errmsg(db) : "?"));
  } else {
    // Mapped reads (the file was just written and is in the page cache)
    // and a 64 MiB page cache: together 0.31 s instead of 0.58 s for a
    // 1 GB database here (bench/restore_bench).
    sqlite3_exec(db, "PRAGMA mmap_size=1073741824; PRAGMA cache_size=-65536", nullptr, nullptr, nullptr);
    sqlite3_stmt* st = nullptr;
    std::string result;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) == SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW) {
        if (!result.empty()) result += "; ";
        result += reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      }
      sqlite3_finalize(st);
    } else {
      result = sqlite3_errmsg(db);
    }
    if (result != "ok") s = Status::Corruption("restored database fails PRAGMA integrity_check: " + result.substr(0, 500));
  }
  if (db) sqlite3_close_v2(db);
  return s;
}

// Writes and verifies `plan` into `tmp`. With stop_at_last_good, damage met
// after the snapshot ends the restore at the last whole transaction before
// it: the file already holds exactly that unless pages of the next
// transaction were written, and then it is rebuilt with the shorter plan.
Status BuildFile(ObjectStore* store, Plan plan, const std::string& tmp, const RestoreOptions& o, RestoreResult* r) {
  r->requested_txid = plan.requested;
  if (!plan.gap.empty()) {
    r->stopped_early = true;
    r->stop_reason = plan.gap;
  }
  for (;;) {
    r->objects = r->bytes = 0;
    Applier ap(store, tmp, o);
    Status s = ap.Open();
    if (s.ok()) s = o.stop_at_last_good ? ap.Apply(plan, r) : ap.ApplyNewestFirst(plan, r);
    if (!s.ok() && o.stop_at_last_good && IsDamage(s) && ap.has_tx() && ap.last_txid() < plan.target) {
      r->stopped_early = true;
      r->bad_object = ap.failed_key();
      r->stop_reason = s.message();
      if (ap.partial()) {
        ap.CloseFile();
        ::unlink(tmp.c_str());
        TruncatePlan(&plan, ap.last_txid());
        continue;
      }
      plan.target = ap.last_txid();
      s = Status::OK();
    }
    if (s.ok()) s = ap.Finish();
    if (s.ok()) s = ap.Verify(r);
    if (s.ok()) {
      // PRAGMA integrity_check reads the file (from the page cache) while
      // it is synced: both must pass.
      auto checked = std::async(std::launch::async, [&tmp] { return IntegrityCheck(tmp); });
      const Status synced = ap.Sync();
      const Status ic = checked.get();
      s = synced.ok() ? ic : synced;
    }
    ap.CloseFile();
    return s;
  }
}

void RemoveSidecars(const std::string& path) {
  ::unlink((path + "-wal").c_str());
  ::unlink((path + "-shm").c_str());
  ::unlink((path + "-journal").c_str());
}

// Moves the finished file into place unless `out` exists by now (created
// while the restore ran, or by a concurrent restore): the check before the
// restore is only for an early error, this one is atomic.
Status RenameNoReplace(const std::string& tmp, const std::string& out) {
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, out.c_str(), RENAME_NOREPLACE) == 0) return Status::OK();
  int err = errno;
  if (err == EINVAL || err == ENOSYS) {  // a file system without RENAME_NOREPLACE: link fails if `out` exists
    if (::link(tmp.c_str(), out.c_str()) == 0) {
      ::unlink(tmp.c_str());
      return Status::OK();
    }
    err = errno;
  }
  if (err == EEXIST)
    return Status::AlreadyExists("restore target " + out +
                                 " was created while the restore ran (nothing was overwritten; choose another output "
                                 "path or pass overwrite)");
  return ErrnoStatus("rename " + tmp + " to " + out, err);
}

// Removes what killed restores left in `out`'s directory, to any target
// name: temporary files named "<target>.replite-restore.tmp-<pid>-..." (and
// their -wal/-shm) whose process is gone.
void RemoveStaleTemps(const std::string& out) {
  RemoveDeadTemps(DirName(out), ".replite-restore", /*stem_anywhere=*/true);
}

// The capture time of the last transaction a generation holds.
Status LastCaptureMs(ObjectStore* store, const GenerationCatalog& cat, int64_t* ms) {
  const ObjectRef* last = nullptr;
  for (const auto& o : cat.segments)
    if (!last || o.last_txid > last->last_txid) last = &o;
  for (const auto& o : cat.snapshots)
    if (!last || o.last_txid > last->last_txid) last = &o;
  for (const auto& o : cat.compacted)
    if (!last || o.last_txid > last->last_txid) last = &o;
  int64_t f = 0;
  *ms = 0;
  return last ? ReadObjectTimes(store, last->key, &f, ms, last->offset) : Status::OK();
}

// Generations whose txid ranges [first snapshot, last txid] overlap: only
// when two writers shared the replica (txids otherwise continue across
// generations). One line naming each overlapping pair.
std::string Overlaps(const std::vector<GenerationCatalog>& cats, std::vector<std::string>* per_gen = nullptr) {
  std::string out;
  if (per_gen) per_gen->assign(cats.size(), "");
  for (size_t i = 0; i < cats.size(); i++) {
    if (cats[i].snapshots.empty()) continue;
    const uint64_t f1 = cats[i].snapshots.front().first_txid, l1 = cats[i].max_txid();
    for (size_t j = i + 1; j < cats.size(); j++) {
      if (cats[j].snapshots.empty()) continue;
      const uint64_t f2 = cats[j].snapshots.front().first_txid, l2 = cats[j].max_txid();
      if (f1 > l2 || f2 > l1) continue;
      if (!out.empty()) out += "; ";
      out += "generations " + cats[i].id + " (txids " + std::to_string(f1) + ".." + std::to_string(l1) + ") and " +
             cats[j].id + " (txids " + std::to_string(f2) + ".." + std::to_string(l2) + ") overlap";
      if (per_gen) {
        (*per_gen)[i] += ((*per_gen)[i].empty() ? "" : " ") + cats[j].id;
        (*per_gen)[j] += ((*per_gen)[j].empty() ? "" : " ") + cats[i].id;
      }
    }
  }
  if (!out.empty()) out += " (two instances wrote this replica at once)";
  return out;
}

// Every generation's catalog, in manifest order (one LIST each), with the
// replica's segments that still wait in packs (one LIST of the pack
// directory, one ranged GET of each pack's tail: replica/pack_catalog.h).
Status ListAll(ObjectStore* store, const std::string& prefix, const std::vector<GenerationEntry>& gens,
               std::vector<GenerationCatalog>* cats) {
  cats->resize(gens.size());
  for (size_t g = 0; g < gens.size(); g++) {
    Status s = ListGeneration(store, prefix, gens[g].id, &(*cats)[g]);
    if (!s.ok()) return s;
  }
  if (PackMemberName(prefix).empty()) return Status::OK();
  PackIndexCache packs;
  std::vector<ObjectRef> members;
  Status s = packs.Members(store, prefix, &members);
  if (!s.ok()) return s;
  for (auto& cat : *cats) AddPackMembers(members, &cat);
  return Status::OK();
}

// The generation and txid to restore.
Status Choose(ObjectStore* store, const ReplicaUrl& url, const RestoreOptions& o, Plan* plan, std::string* overlap) {
  const std::string where = url.ToString();
  std::vector<GenerationEntry> gens;
  Status s = LoadGenerations(store, url.prefix, &gens);
  if (!s.ok()) return s;
  if (gens.empty())
    return Status::NotFound("no generations at " + where + " (nothing was replicated there yet, or the URL is wrong)");
  std::vector<GenerationCatalog> cats;
  s = ListAll(store, url.prefix, gens, &cats);
  if (!s.ok()) return s;
  *overlap = Overlaps(cats);
  // The last txid the replica records for each generation: its objects'
  // last, or the one before the next generation's first (a generation
  // starts at the txid after the last one captured before it) when its
  // last segments are gone; PlanInGeneration then names the missing ones.
  std::vector<uint64_t> end(cats.size());
  for (size_t g = 0; g < cats.size(); g++) {
    end[g] = cats[g].max_txid();
    if (g + 1 < gens.size() && gens[g + 1].first_txid > end[g] + 1) end[g] = gens[g + 1].first_txid - 1;
  }
  if (o.txid == 0 && !o.timestamp_ms) {
    // The latest: the highest txid, whichever generation holds it (with
    // two writers the one listed last may be the stale one); ties (only
    // with overlaps) go to the last capture.
    int best = -1;
    int64_t best_ms = 0;
    for (int g = 0; g < int(cats.size()); g++) {
      if (cats[g].snapshots.empty()) continue;
      if (best >= 0 && end[g] < end[best]) continue;
      if (best >= 0 && end[g] == end[best]) {
        int64_t ms = 0;
        if (best_ms == 0) {
          s = LastCaptureMs(store, cats[best], &best_ms);
          if (!s.ok()) return s;
        }
        s = LastCaptureMs(store, cats[g], &ms);
        if (!s.ok()) return s;
        if (ms < best_ms) continue;
        best_ms = ms;
      } else {
        best_ms = 0;
      }
      best = g;
    }
    if (best < 0) return Status::NotFound("no generation with a snapshot at " + where);
    // A later generation whose snapshot is gone (the manifest names a
    // generation only once its snapshot is stored): its txids are known but
    // cannot be restored, so "latest" is not what an earlier one holds.
    uint64_t lost_first = 0, lost_last = 0;
    std::string lost_gen;
    for (int g = int(cats.size()) - 1; g >= 0; g--) {
      if (!cats[g].snapshots.empty() || gens[g].first_txid <= end[best]) continue;
      lost_gen = gens[g].id;
      lost_first = gens[g].first_txid;
      lost_last = std::max(lost_first, cats[g].max_txid());
      break;
    }
    s = PlanInGeneration(cats[best], end[best], where, o.stop_at_last_good, plan);
    if (!s.ok() || lost_gen.empty()) return s;
    const std::string missing = "generation " + lost_gen + " has no snapshot, so txids " + std::to_string(lost_first) +
                                ".." + std::to_string(lost_last) + " are known but cannot be restored";
    if (!o.stop_at_last_good)
      return Status::NotFound(where + ": " + missing + " (missing object; restore an earlier txid, or stop at the "
                              "last good one: -stop-at-last-good / stop_at_last_good)");
    plan->requested = lost_last;
    if (plan->gap.empty()) plan->gap = "missing object: " + missing;
    return s;
  }
  if (o.txid != 0) {
    // A txid several generations hold (overlaps): from the one reaching
    // furthest, as for the latest.
    int best = -1;
    for (int g = 0; g < int(cats.size()); g++) {
      const GenerationCatalog& cat = cats[g];
      if (cat.snapshots.empty() || o.txid < cat.snapshots.front().first_txid || o.txid > end[g]) continue;
      if (best < 0 || end[g] >= end[best]) best = g;
    }
    if (best >= 0) return PlanInGeneration(cats[best], o.txid, where, o.stop_at_last_good, plan);
  }
  for (int g = static_cast<int>(gens.size()) - 1; g >= 0 && o.txid == 0; g--) {
    const GenerationCatalog& cat = cats[g];
    if (cat.snapshots.empty()) continue;
    // By time: the last transaction captured at or before T in this
    // generation, if its first snapshot is not after T.
    int64_t f = 0, l = 0;
    s = ReadObjectTimes(store, cat.snapshots.front().key, &f, &l);
    if (!s.ok()) return s;
    if (f > *o.timestamp_ms) continue;
    uint64_t best = cat.snapshots.front().first_txid;
    for (const auto& snap : cat.snapshots) {
      s = ReadObjectTimes(store, snap.key, &f, &l);
      if (!s.ok()) return s;
      if (f <= *o.timestamp_ms) best = std::max(best, snap.first_txid);
    }
    // Capture times grow with txids: binary-search the last segment that
    // starts at or before T (one small ranged read per probe).
    size_t lo = 0, hi = cat.segments.size();  // candidates [lo, hi)
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      s = ReadObjectTimes(store, cat.segments[mid].key, &f, &l, cat.segments[mid].offset);
      if (!s.ok()) return s;
      if (f <= *o.timestamp_ms) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) {
      const ObjectRef& seg = cat.segments[lo - 1];
      if (seg.last_txid > best) {
        s = ReadObjectTimes(store, seg.key, &f, &l, seg.offset);
        if (!s.ok()) return s;
        if (l <= *o.timestamp_ms) {
          best = seg.last_txid;
        } else {
          ObjectReader rd(store, seg.key, seg.size, seg.offset);
          s = rd.Open();
          if (!s.ok()) return s;
          for (const auto& e : rd.index())
            if (e.ts_ms <= *o.timestamp_ms && (e.flags & kBlockTxEnd)) best = std::max(best, e.txid);
          // Everything before this segment is at or before T too.
          if (best < seg.first_txid - 1 && seg.first_txid > 0) best = std::max(best, seg.first_txid - 1);
        }
      }
    }
    // Compacted objects: their last txids are restore points too (the
    // per-sync segments of older ranges may be gone). Capture times grow
    // with txids: binary-search them by last txid.
    std::vector<const ObjectRef*> coarse;
    for (const auto& c : cat.compacted) coarse.push_back(&c);
    std::sort(coarse.begin(), coarse.end(),
              [](const ObjectRef* a, const ObjectRef* b) { return a->last_txid < b->last_txid; });
    lo = 0;
    hi = coarse.size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      s = ReadObjectTimes(store, coarse[mid]->key, &f, &l);
      if (!s.ok()) return s;
      if (l <= *o.timestamp_ms) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) best = std::max(best, coarse[lo - 1]->last_txid);
    // The next generation was created at or before T, so every txid of this
    // one was captured before T, the missing last ones too.
    if (best == cat.max_txid() && end[g] > best && gens[g + 1].created_ms <= *o.timestamp_ms) best = end[g];
    return PlanInGeneration(cat, best, where, o.stop_at_last_good, plan);
  }
  if (o.txid != 0) return Status::NotFound("txid " + std::to_string(o.txid) + " is not in any generation at " + where);
  if (o.timestamp_ms)
    return Status::NotFound("nothing at " + where + " was captured at or before " + FormatRfc3339(*o.timestamp_ms));
  return Status::NotFound("no generation with a snapshot at " + where);
}

}  // namespace

Status Restore(const std::string& replica_url, const std::string& output_path, const RestoreOptions& o,
               RestoreResult* result) {
  RestoreResult local;
  RestoreResult* r = result ? result : &local;
  *r = RestoreResult();
  ReplicaUrl url;
  Status s = ParseReplicaUrl(replica_url, &url);
  if (!s.ok()) return s;
  if (o.txid != 0 && o.timestamp_ms) return Status::InvalidArgument("restore: give a txid or a timestamp, not both");
  const std::string out = AbsolutePath(output_path);
  if (FileExists(out) && !o.overwrite)
    return Status::AlreadyExists("restore target " + out + " exists (choose another output path or pass overwrite)");
  StoreRegistry reg(o.env ? o.env : Env::Default(), StoreConfig());
  std::shared_ptr<ObjectStore> store;
  s = o.store_factory ? o.store_factory(url.ToString(), &store) : reg.Open(url, &store);
  if (!s.ok()) return s;
  if (!store) return Status::InvalidArgument("store_factory returned no store for " + url.ToString());
  RemoveStaleTemps(out);
  const std::string tmp = out + ".replite-restore" + TempSuffix();
  for (int attempt = 0;; attempt++) {
    Plan plan;
    s = Choose(store.get(), url, o, &plan, &r->overlap);
    if (!s.ok()) return s;
    r->generation = plan.generation;
    s = BuildFile(store.get(), plan, tmp, o, r);
    RemoveSidecars(tmp);
    // A pack unpacked and deleted since it was listed: its members are in
    // the database's own segments now; plan again (docs/FORMAT.md, 2b).
    const bool packed = std::any_of(plan.segments.begin(), plan.segments.end(), [](const ObjectRef& x) { return x.offset != 0; });
    if (s.code() != Code::kNotFound || !packed || attempt == 2) break;
    ::unlink(tmp.c_str());
  }
  if (s.ok()) {
    if (o.overwrite) {
      RemoveSidecars(out);  // an old WAL must not be applied to the restored file
      if (::rename(tmp.c_str(), out.c_str()) != 0) s = ErrnoStatus("rename " + tmp + " to " + out, errno);
    } else {
      s = RenameNoReplace(tmp, out);
    }
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return FSyncDir(DirName(out));
}

Status ListGenerations(const std::string& replica_url, std::vector<GenerationInfo>* out) {
  out->clear();
  ReplicaUrl url;
  Status s = ParseReplicaUrl(replica_url, &url);
  if (!s.ok()) return s;
  StoreRegistry reg(Env::Default(), StoreConfig());
  std::shared_ptr<ObjectStore> store;
  s = reg.Open(url, &store);
  if (!s.ok()) return s;
  std::vector<GenerationEntry> gens;
  s = LoadGenerations(store.get(), url.prefix, &gens);
  if (!s.ok()) return s;
  std::vector<GenerationCatalog> cats;
  s = ListAll(store.get(), url.prefix, gens, &cats);
  if (!s.ok()) return s;
  std::vector<std::string> overlaps;
  Overlaps(cats, &overlaps);
  for (size_t i = 0; i < gens.size(); i++) {
    const GenerationCatalog& cat = cats[i];
    GenerationInfo gi;
    gi.id = gens[i].id;
    gi.overlaps = overlaps[i];
    gi.snapshots = cat.snapshots.size();
    gi.segments = cat.segments.size();
    gi.compacted = cat.compacted.size();
    gi.bytes = cat.bytes;
    if (!cat.snapshots.empty()) {
      gi.first_txid = cat.snapshots.front().first_txid;
      int64_t f = 0, l = 0;
      if (ReadObjectTimes(store.get(), cat.snapshots.front().key, &f, &l).ok()) gi.first_ts_ms = f;
    }
    gi.last_txid = cat.max_txid();
    int64_t last_ms = 0;
    if (LastCaptureMs(store.get(), cat, &last_ms).ok()) gi.last_ts_ms = last_ms;
    out->push_back(gi);
  }
  return Status::OK();
}

Status ParseRfc3339(const std::string& t, int64_t* ms) {
  int y, mo, d, h, mi, sec;
  char tail[64] = {0};
  if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%63s", &y, &mo, &d, &h, &mi, &sec, tail) < 6 &&
      std::sscanf(t.c_str(), "%4d-%2d-%2dt%2d:%2d:%2d%63s", &y, &mo, &d, &h, &mi, &sec, tail) < 6)
    return Status::InvalidArgument("time '" + t + "' is not RFC 3339 (e.g. 2026-11-26T21:00:00Z)");
  std::string rest = tail;
  int64_t frac_ms = 0;
  if (!rest.empty() && rest[0] == '.') {
    size_t i = 1;
    int64_t scale = 100;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) {
      frac_ms += (rest[i] - '0') * scale;
      scale /= 10;
      i++;
    }
    rest = rest.substr(i);
  }
  int64_t offset_s = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = std::atoi(rest.substr(1, 2).c_str()), om = std::atoi(rest.substr(4, 2).c_str());
    offset_s = (oh * 3600 + om * 60) * (rest[0] == '+' ? 1 : -1);
  } else {
    return Status::InvalidArgument("time '" + t + "' needs a zone: 'Z' or '+HH:MM' (e.g. 2026-11-26T21:00:00Z)");
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return Status::InvalidArgument("time '" + t + "' is out of range");
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset_s;
  *ms = secs * 1000 + frac_ms;
  return Status::OK();
}

std::string FormatRfc3339(int64_t ms) { return FormatUtcMs(ms); }

}  // namespace replite
