#include "replica/retention.h"

#include <algorithm>

#include "format/layout.h"
#include "replica/catalog.h"
#include "replica/compactor.h"
#include "replica/manifest_update.h"

namespace replite {

namespace {

Status DeleteExpired(ObjectStore* store, const std::string& prefix, int64_t now_ms, int64_t retention_ms,
                     RetentionStats* stats, const std::function<Status()>& fence) {
  Manifest manifest;
  std::vector<GenerationEntry> gens;
  Status s = LoadGenerations(store, prefix, &gens, &manifest);
  if (!s.ok()) return s;
  const int64_t cutoff = now_ms - retention_ms;
  // Newest generation first: find the base snapshot S0.
  int base_gen = -1;
  uint64_t base_txid = 0;
  GenerationCatalog base_cat;
  for (int g = static_cast<int>(gens.size()) - 1; g >= 0 && base_gen < 0; g--) {
    GenerationCatalog cat;
    s = ListGeneration(store, prefix, gens[g].id, &cat);
    if (!s.ok()) return s;
    for (auto it = cat.snapshots.rbegin(); it != cat.snapshots.rend(); ++it) {
      int64_t t0 = 0, t1 = 0;
      s = ReadObjectTimes(store, it->key, &t0, &t1);
      if (!s.ok()) return s;
      if (t1 <= cutoff) {
        base_gen = g;
        base_txid = it->first_txid;
        base_cat = cat;
        break;
      }
    }
  }
  // Generations a stopped run dropped from the manifest but may not have
  // deleted: finished here (the manifest is the only list of generations).
  const std::vector<std::string> leftover = manifest.deleting;
  if (base_gen < 0 && leftover.empty()) return Status::OK();
  std::vector<std::string> doomed;
  for (const auto& snap : base_cat.snapshots)
    if (snap.first_txid < base_txid) doomed.push_back(snap.key);
  for (const auto& seg : base_cat.segments)
    if (seg.last_txid <= base_txid) doomed.push_back(seg.key);
  for (const auto& c : base_cat.compacted)
    if (c.last_txid <= base_txid) doomed.push_back(c.key);
  std::vector<std::string> drop = leftover;
  if (base_gen > 0) {
    // Drop older generations from the manifest first, naming them as being
    // deleted: a crash after this leaves objects the next run deletes,
    // never a manifest pointing at deleted objects.
    for (int g = 0; g < base_gen; g++) drop.push_back(gens[g].id);
    s = UpdateManifest(
        store, prefix,
        [&](Manifest* m) {
          auto dropped = [&](const GenerationEntry& e) {
            return std::find(drop.begin(), drop.end(), e.id) != drop.end();
          };
          m->generations.erase(std::remove_if(m->generations.begin(), m->generations.end(), dropped),
                               m->generations.end());
          for (const auto& id : drop)
            if (std::find(m->deleting.begin(), m->deleting.end(), id) == m->deleting.end()) m->deleting.push_back(id);
          return true;
        },
        fence);
    if (!s.ok()) return s;
  }
  for (const auto& id : drop) {
    GenerationCatalog cat;
    s = ListGeneration(store, prefix, id, &cat);
    if (!s.ok()) return s;
    for (const auto& o : cat.snapshots) doomed.push_back(o.key);
    for (const auto& o : cat.segments) doomed.push_back(o.key);
    for (const auto& o : cat.compacted) doomed.push_back(o.key);
    stats->generations_deleted++;
  }
  if (!doomed.empty()) {
    s = store->Delete(doomed);
    if (!s.ok()) return s;
  }
  if (!drop.empty()) {
    s = UpdateManifest(
        store, prefix,
        [&](Manifest* m) {
          auto done = [&](const std::string& id) { return std::find(drop.begin(), drop.end(), id) != drop.end(); };
          m->deleting.erase(std::remove_if(m->deleting.begin(), m->deleting.end(), done), m->deleting.end());
          return true;
        },
        fence);
    if (!s.ok()) return s;
  }
  stats->objects_deleted = doomed.size();
  return Status::OK();
}

}  // namespace

Status PruneLevels(ObjectStore* store, const std::string& prefix, const std::string& gen, int64_t now_ms,
                   int64_t keep_ms, int top_level, LevelPruneStats* stats, const std::function<Status()>& fence,
                   const GenerationCatalog* listed) {
  *stats = LevelPruneStats();
  GenerationCatalog cat;
  Status s;
  if (listed) {
    cat = *listed;
  } else {
    s = ListGeneration(store, prefix, gen, &cat);
    if (!s.ok()) return s;
  }
  std::vector<std::string> doomed;
  for (int level = 0; level < top_level; level++) {
    std::vector<ObjectRef> lower, upper;
    for (const auto& o : level == 0 ? cat.segments : cat.compacted)
      if (o.level == level) lower.push_back(o);
    for (const auto& o : cat.compacted)
      if (o.level == level + 1) upper.push_back(o);
    for (const auto& u : upper) {
      std::vector<const ObjectRef*> covered;
      for (const auto& o : lower)
        if (o.first_txid >= u.first_txid && o.last_txid <= u.last_txid) covered.push_back(&o);
      if (covered.empty()) continue;
      int64_t first_ms = 0, last_ms = 0;
      s = ReadObjectTimes(store, u.key, &first_ms, &last_ms);
      if (!s.ok()) return s;
      if (last_ms > now_ms - keep_ms) break;  // this one and every later one are too young
      SegmentHeader h;
      s = VerifyCompacted(store, u.key, u.size, gen, u.first_txid, u.last_txid, &h);
      if (!s.ok()) return s.Annotate("not deleting what it covers: ");
      // The cover ends in the state its last input records.
      const ObjectRef* tail = covered.back();
      if (tail->last_txid == u.last_txid) {
        std::string head;
        s = store->Get(tail->key, &head, 0, kSegHeaderSize);
        SegmentHeader th;
        if (s.ok()) s = DecodeSegmentHeader(head, &th);
        if (!s.ok()) return s;
        if (th.checksum_after != h.checksum_after || th.pages_after != h.pages_after)
          return Status::Corruption("compacted object " + u.key + " does not end in the state of " + tail->key +
                                    " (size or checksum differ): not deleting what it covers");
      }
      stats->covers_verified++;
      for (const ObjectRef* o : covered) doomed.push_back(o->key);
    }
  }
  if (doomed.empty()) return Status::OK();
  if (fence) {
    s = fence();
    if (!s.ok()) return s;
  }
  s = store->Delete(doomed);
  if (!s.ok()) return s;
  stats->objects_deleted = doomed.size();
  return Status::OK();
}

Status ApplyRetention(ObjectStore* store, const std::string& prefix, int64_t now_ms, int64_t retention_ms,
                      RetentionStats* stats, const std::function<Status()>& fence) {
  *stats = RetentionStats();
  Status s = DeleteExpired(store, prefix, now_ms, retention_ms, stats, fence);
  if (!s.ok()) return s;
  return store->RemoveAbandoned(prefix + "/", now_ms - kAbandonedAfterMs, &stats->abandoned_removed);
}

}  // namespace replite
