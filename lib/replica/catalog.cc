#include "replica/catalog.h"

#include <algorithm>
#include <map>

#include "format/segment.h"

namespace replite {

uint64_t GenerationCatalog::max_txid() const {
  uint64_t m = 0;
  for (const auto& s : snapshots) m = std::max(m, s.last_txid);
  for (const auto& s : segments) m = std::max(m, s.last_txid);
  for (const auto& s : compacted) m = std::max(m, s.last_txid);
  return m;
}

Status ListGeneration(ObjectStore* store, const std::string& prefix, const std::string& gen, GenerationCatalog* out) {
  *out = GenerationCatalog();
  out->id = gen;
  std::vector<ObjectInfo> objs;
  Status s = store->List(GenerationPrefix(prefix, gen), &objs);
  if (!s.ok()) return s;
  for (const auto& o : objs) {
    ObjectRef r;
    if (!ParseObjectKey(prefix, o, &r)) continue;
    out->bytes += r.size;
    (r.kind == ObjectRef::kSnapshot ? out->snapshots : r.level > 0 ? out->compacted : out->segments).push_back(r);
  }
  std::sort(out->snapshots.begin(), out->snapshots.end(),
            [](const ObjectRef& a, const ObjectRef& b) { return a.first_txid < b.first_txid; });
  auto by_range = [](const ObjectRef& a, const ObjectRef& b) {
    return a.first_txid != b.first_txid ? a.first_txid < b.first_txid : a.last_txid < b.last_txid;
  };
  std::sort(out->segments.begin(), out->segments.end(), by_range);
  std::sort(out->compacted.begin(), out->compacted.end(), by_range);
  return Status::OK();
}

Status LoadGenerations(ObjectStore* store, const std::string& prefix, std::vector<GenerationEntry>* out,
                       Manifest* manifest) {
  out->clear();
  std::string text;
  Status s = store->Get(ManifestKey(prefix), &text);
  if (s.ok()) {
    Manifest m;
    s = DecodeManifest(text, &m);
    if (!s.ok()) return s.Annotate(store->Describe() + ManifestKey(prefix) + ": ");
    *out = m.generations;
    if (manifest) *manifest = m;
  } else if (s.code() != Code::kNotFound) {
    return s;
  }
  // Generations newer than the manifest's last entry (a crash between the
  // first snapshot and the manifest write) are found by one LIST only when
  // the manifest is missing; otherwise the manifest is authoritative.
  if (out->empty()) {
    std::vector<ObjectInfo> objs;
    s = store->List(GenerationsPrefix(prefix), &objs);
    if (!s.ok()) return s;
    std::map<std::string, GenerationEntry> gens;
    for (const auto& o : objs) {
      ObjectRef r;
      if (!ParseObjectKey(prefix, o, &r)) continue;
      auto& g = gens[r.generation];
      g.id = r.generation;
      if (r.kind == ObjectRef::kSnapshot && (g.first_txid == 0 || r.first_txid < g.first_txid)) g.first_txid = r.first_txid;
      uint64_t idv = 0;
      for (char c : r.generation) idv = idv << 4 | uint64_t(c <= '9' ? c - '0' : c - 'a' + 10);
      g.created_ms = static_cast<int64_t>(idv >> 16);
    }
    for (auto& [id, g] : gens) out->push_back(g);
  }
  return Status::OK();
}

Status ReadObjectTimes(ObjectStore* store, const std::string& key, int64_t* first_ms, int64_t* last_ms,
                       uint64_t offset) {
  std::string head;
  Status s = store->Get(key, &head, offset, kSegHeaderSize);
  if (!s.ok()) return s;
  SegmentHeader h;
  s = DecodeSegmentHeader(head, &h);
  if (!s.ok()) return s.Annotate("object " + key + ": ");
  *first_ms = h.first_ts_ms;
  *last_ms = h.last_ts_ms;
  return Status::OK();
}

}  // namespace replite
