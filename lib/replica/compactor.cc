#include "replica/compactor.h"

#include <algorithm>
#include <limits>
#include <map>

#include "format/layout.h"
#include "replica/catalog.h"
#include "replica/manifest_update.h"
#include "replica/object_reader.h"

namespace replite {
namespace {

// The objects of one level, sorted by (first, last).
std::vector<ObjectRef> LevelOf(const GenerationCatalog& cat, int level) {
  if (level == 0) return cat.segments;
  std::vector<ObjectRef> out;
  for (const auto& o : cat.compacted)
    if (o.level == level) out.push_back(o);
  return out;
}

// The chain of objects of `inputs` (sorted by (first, last)) that continues after txid `after`
// (0: from the first one): at each step the object holding the next txid
// that reaches furthest, as a restore chooses. Stops at a gap.
std::vector<ObjectRef> Chain(const std::vector<ObjectRef>& inputs, uint64_t after) {
  std::vector<ObjectRef> chain;
  uint64_t need = after + 1;
  if (after == 0) {
    if (inputs.empty()) return chain;
    need = inputs.front().first_txid;
  }
  // One pass (inputs are sorted by first txid): an object passed over can
  // never hold a later `need`, since the one chosen reached further.
  size_t i = 0;
  for (;;) {
    const ObjectRef* best = nullptr;
    for (; i < inputs.size() && inputs[i].first_txid <= need; i++)
      if (inputs[i].last_txid >= need && (!best || inputs[i].last_txid > best->last_txid)) best = &inputs[i];
    if (!best) return chain;
    chain.push_back(*best);
    need = best->last_txid + 1;
  }
}

// The state at the end of a range, built page by page from its inputs.
class Merger {
 public:
  Merger(ObjectStore* store, const std::string& gen) : store_(store), gen_(gen) {}

  // Merges object `o`, taken from `recent` when this process stored it
  // lately (*local says so), else read from the store.
  Status Add(const ObjectRef& o, RecentObjects* recent, bool* local) {
    std::string whole;
    *local = recent && recent->Take(o.key, &whole) && whole.size() == o.size;
    const bool small = *local || o.size <= ObjectReader::kWholeObjectBytes;
    if (small && !*local) {
      Status s = ObjectReader::FetchWhole(store_, o.key, o.size, &whole);
      if (!s.ok()) return s;
    }
    ObjectReader rd = small ? ObjectReader(store_, o.key, std::move(whole)) : ObjectReader(store_, o.key, o.size);
    Status s = rd.Open();
    if (!s.ok()) return s;
    const SegmentHeader& h = rd.header();
    if (h.kind != ObjectKind::kSegment || h.generation != gen_ || h.first_txid != o.first_txid ||
        h.last_txid != o.last_txid)
      return Status::Corruption("object " + o.key + ": header does not match its name");
    if (inputs_ == 0) {
      first_ = h;
      page_size_ = h.page_size;
      next_ = h.first_txid;
    }
    if (h.page_size != page_size_) return Status::Corruption("object " + o.key + ": page size changes in a generation");
    for (size_t i = 0; i < rd.index().size(); i++) {
      if (rd.index()[i].txid < next_) continue;  // an overlap with the previous input: already merged
      DecodedBlock b;
      s = rd.ReadBlock(i, &b);
      if (!s.ok()) return s;
      for (size_t k = 0; k < b.pgnos.size(); k++) {
        std::string& page = pages_[b.pgnos[k]];
        if (page.empty()) bytes_ += page_size_;
        page.assign(b.pages, k * page_size_, page_size_);
      }
      if (b.flags & kBlockTxEnd) {
        // Pages cut off by this transaction are gone from the state.
        for (auto it = pages_.upper_bound(b.db_pages); it != pages_.end();) {
          bytes_ -= page_size_;
          it = pages_.erase(it);
        }
        min_pages_ = std::min(min_pages_, b.db_pages);
        db_pages_ = b.db_pages;
        checksum_ = b.checksum_after;
        no_checksum_ = (b.flags & kBlockNoChecksum) != 0;
        last_ts_ = b.ts_ms;
        last_ = b.txid;
        next_ = b.txid + 1;
      }
    }
    if (last_ != o.last_txid)
      return Status::Corruption("object " + o.key + " ends at txid " + std::to_string(last_) + ", not at its name's " +
                                std::to_string(o.last_txid));
    inputs_++;
    return Status::OK();
  }

  uint64_t bytes() const { return bytes_; }

  // The compacted object: one transaction at the range's last txid.
  Status Build(int zstd_level, std::string* out) {
    // A page above the smallest size the range went through that no input
    // wrote after it is zeros at the end (cut off, then grown over).
    for (uint32_t p = min_pages_ + 1; min_pages_ != std::numeric_limits<uint32_t>::max() && p <= db_pages_; p++)
      if (!pages_.count(p)) pages_[p] = std::string(page_size_, '\0');
    SegmentHeader h;
    h.kind = ObjectKind::kSegment;
    h.page_size = page_size_;
    h.generation = gen_;
    h.first_txid = first_.first_txid;
    h.last_txid = last_;
    StringSink sink;
    SegmentBuilder b(&sink, h, zstd_level, /*stream=*/true);
    Status s = b.Start();
    std::vector<uint32_t> pgnos;
    std::string data;
    auto it = pages_.begin();
    do {
      pgnos.clear();
      data.clear();
      for (; it != pages_.end() && pgnos.size() < kMaxPagesPerBlock; ++it) {
        pgnos.push_back(it->first);
        data += it->second;
      }
      const bool end = it == pages_.end();
      const uint32_t flags = end ? (kBlockTxEnd | (no_checksum_ ? kBlockNoChecksum : 0)) : 0;
      if (s.ok()) s = b.AddBlock(last_, last_ts_, db_pages_, end ? checksum_ : 0, flags, pgnos, data);
    } while (s.ok() && it != pages_.end());
    h.first_ts_ms = first_.first_ts_ms;
    h.last_ts_ms = last_ts_;
    h.checksum_before = first_.checksum_before;
    h.pages_before = first_.pages_before;
    h.checksum_after = checksum_;
    h.pages_after = db_pages_;
    if (s.ok()) s = b.Finish(h);
    if (!s.ok()) return s;
    *out = std::move(sink.buffer());
    return Status::OK();
  }

  uint64_t first() const { return first_.first_txid; }
  uint64_t last() const { return last_; }

 private:
  ObjectStore* store_;
  std::string gen_;
  SegmentHeader first_;
  uint32_t page_size_ = 0;
  uint64_t next_ = 0, last_ = 0;
  std::map<uint32_t, std::string> pages_;
  uint64_t bytes_ = 0;
  uint32_t min_pages_ = std::numeric_limits<uint32_t>::max();
  uint32_t db_pages_ = 0;
  uint64_t checksum_ = 0;
  bool no_checksum_ = false;
  int64_t last_ts_ = 0;
  size_t inputs_ = 0;
};

// Merges `range` into one object of `level`, stores it and reads it back.
Status WriteRange(ObjectStore* store, const std::string& prefix, const std::string& gen, int level,
                  const std::vector<ObjectRef>& range, const CompactionPolicy& p, CompactionStats* stats,
                  ObjectRef* written) {
  Merger m(store, gen);
  for (const auto& o : range) {
    bool local = false;
    Status s = m.Add(o, p.recent, &local);
    if (!s.ok()) return s;
    stats->inputs_read++;
    stats->inputs_local += local;
  }
  std::string obj;
  Status s = m.Build(p.zstd_level, &obj);
  if (!s.ok()) return s;
  const std::string key = CompactedKey(prefix, gen, level, m.first(), m.last());
  s = store->Put(key, obj);
  if (!s.ok()) return s;
  // Read back before anything relies on it; a bad copy is removed at once
  // (PruneLevels verifies it again before deleting any input).
  std::string back;
  s = ObjectReader::FetchWhole(store, key, obj.size(), &back);
  if (s.ok() && back != obj) s = Status::Corruption("compacted object " + key + " reads back different bytes");
  if (!s.ok()) {
    if (s.code() == Code::kCorruption) store->Delete({key});
    return s;
  }
  stats->objects_written++;
  stats->bytes_written += obj.size();
  if (p.recent && level < int(p.intervals_ms.size())) p.recent->Keep(key, obj);  // the next level's input
  written->kind = ObjectRef::kSegment;
  written->key = key;
  written->generation = gen;
  written->first_txid = m.first();
  written->last_txid = m.last();
  written->level = level;
  written->size = obj.size();
  return Status::OK();
}

}  // namespace

Status VerifyCompacted(ObjectStore* store, const std::string& key, uint64_t size, const std::string& gen,
                       uint64_t first, uint64_t last, SegmentHeader* header) {
  std::string whole;
  const bool small = size <= ObjectReader::kWholeObjectBytes;
  if (small) {
    Status s = ObjectReader::FetchWhole(store, key, size, &whole);
    if (!s.ok()) return s;
  }
  ObjectReader rd = small ? ObjectReader(store, key, std::move(whole)) : ObjectReader(store, key, size);
  Status s = rd.Open();
  if (!s.ok()) return s;
  const SegmentHeader& h = rd.header();
  if (h.generation != gen || h.first_txid != first || h.last_txid != last || rd.index().empty())
    return Status::Corruption("compacted object " + key + ": header does not match its name");
  DecodedBlock b;
  for (size_t i = 0; i < rd.index().size(); i++) {
    s = rd.ReadBlock(i, &b);
    if (!s.ok()) return s;
    if (b.txid != last) return Status::Corruption("compacted object " + key + ": a block is not at its last txid");
  }
  if (!(b.flags & kBlockTxEnd) || b.db_pages != h.pages_after || b.checksum_after != h.checksum_after)
    return Status::Corruption("compacted object " + key + ": its last block does not end its transaction");
  *header = h;
  return Status::OK();
}

uint32_t CompactionStaggerS(uint32_t key, int64_t interval_ms) {
  const uint64_t n = uint64_t(std::max<int64_t>(1, interval_ms / 1000));
  // Consecutive ids (databases added one after another) land far apart.
  return uint32_t((uint64_t(key) * 0x9E3779B1u & 0xffffffffu) * n >> 32);
}

Status CompactGeneration(ObjectStore* store, const std::string& prefix, const std::string& gen,
                         const CompactionPolicy& p, CompactionStats* stats, const std::function<Status()>& fence,
                         GenerationCatalog* catalog) {
  *stats = CompactionStats();
  if (p.intervals_ms.empty() && !catalog) return Status::OK();
  GenerationCatalog cat;
  Status s = ListGeneration(store, prefix, gen, &cat);
  if (!s.ok()) return s;
  bool manifest_checked = !cat.compacted.empty();
  const int levels = std::min<int>(int(p.intervals_ms.size()), kMaxLevel);
  for (int level = 1; level <= levels; level++) {
    // How many inputs make one object: level 1 takes whatever level 0
    // stored since the last run; level n a fixed count of level n-1.
    size_t want = 1;
    if (level >= 2 && p.intervals_ms[level - 2] > 0)
      want = size_t(std::max<int64_t>(1, p.intervals_ms[level - 1] / p.intervals_ms[level - 2]));
    for (;;) {
      const std::vector<ObjectRef> outputs = LevelOf(cat, level);
      uint64_t covered = 0;
      for (const auto& o : outputs) covered = std::max(covered, o.last_txid);
      std::vector<ObjectRef> inputs;
      for (const auto& o : LevelOf(cat, level - 1))
        if (o.last_txid > covered) inputs.push_back(o);
      std::vector<ObjectRef> chain = Chain(inputs, covered);
      if (chain.empty() || chain.size() < want) break;
      if (level >= 2) chain.resize(want);
      // Bound the merge's memory by the inputs' sizes (compressed, so a
      // rough bound; the pages of one input are always taken). A range the
      // job's share would cut short waits for the one large merge allowed.
      auto fit = [&](uint64_t limit) {
        uint64_t sum = 0;
        size_t n = 0;
        while (n < chain.size() && (n == 0 || sum + chain[n].size * 4 <= limit)) sum += chain[n++].size * 4;
        return n;
      };
      size_t n = fit(p.memory_limit);
      std::unique_lock<std::mutex> large;
      if (n < chain.size() && p.large_merge_mu && p.large_memory_limit > p.memory_limit) {
        large = std::unique_lock<std::mutex>(*p.large_merge_mu);
        n = fit(p.large_memory_limit);
      }
      chain.resize(n);
      if (!manifest_checked) {
        // Readers must know levels before they meet one.
        s = UpdateManifest(store, prefix, [](Manifest* m) { return m->version < kManifestVersion; }, fence);
        if (!s.ok()) return s;
        manifest_checked = true;
      }
      ObjectRef written;
      s = WriteRange(store, prefix, gen, level, chain, p, stats, &written);
      if (!s.ok()) return s;
      cat.compacted.push_back(written);
      if (level == 1) break;  // one level 1 object per run
    }
  }
  if (catalog) {
    std::sort(cat.compacted.begin(), cat.compacted.end(), [](const ObjectRef& a, const ObjectRef& b) {
      return a.first_txid != b.first_txid ? a.first_txid < b.first_txid : a.last_txid < b.last_txid;
    });
    *catalog = std::move(cat);
  }
  return Status::OK();
}

}  // namespace replite
