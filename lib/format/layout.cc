#include "format/layout.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <sstream>

namespace replite {

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t NewGenerationNumber(int64_t now_ms) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return (static_cast<uint64_t>(now_ms) << 16) | (rng() & 0xffff) | 1;  // never 0
}

std::string NewGenerationId(int64_t now_ms) { return Hex16(NewGenerationNumber(now_ms)); }

static std::string Join(const std::string& prefix, const std::string& rest) {
  return prefix.empty() ? rest : prefix + "/" + rest;
}

std::string ManifestKey(const std::string& prefix) { return Join(prefix, "manifest"); }
std::string GenerationsPrefix(const std::string& prefix) { return Join(prefix, "generations/"); }
std::string GenerationPrefix(const std::string& prefix, const std::string& gen) {
  return GenerationsPrefix(prefix) + gen + "/";
}
std::string SnapshotKey(const std::string& prefix, const std::string& gen, uint64_t txid) {
  return GenerationPrefix(prefix, gen) + "snapshots/" + Hex16(txid) + ".snap";
}
std::string SegmentKey(const std::string& prefix, const std::string& gen, uint64_t first, uint64_t last) {
  return GenerationPrefix(prefix, gen) + "segments/" + Hex16(first) + "-" + Hex16(last) + ".seg";
}

static bool ParseHex16(const std::string& s, uint64_t* v) {
  if (s.size() != 16) return false;
  uint64_t r = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return false;
    r = r << 4 | uint64_t(d);
  }
  *v = r;
  return true;
}

bool ParseObjectKey(const std::string& prefix, const ObjectInfo& info, ObjectRef* out) {
  const std::string gp = GenerationsPrefix(prefix);
  if (info.key.compare(0, gp.size(), gp) != 0) return false;
  std::string rest = info.key.substr(gp.size());  // <gen>/snapshots/x.snap
  size_t slash = rest.find('/');
  if (slash != 16) return false;
  out->generation = rest.substr(0, 16);
  uint64_t dummy;
  if (!ParseHex16(out->generation, &dummy)) return false;
  std::string tail = rest.substr(17);
  out->key = info.key;
  out->size = info.size;
  out->mtime_ms = info.mtime_ms;
  if (tail.compare(0, 10, "snapshots/") == 0 && tail.size() == 10 + 16 + 5 && tail.substr(26) == ".snap") {
    out->kind = ObjectRef::kSnapshot;
    if (!ParseHex16(tail.substr(10, 16), &out->first_txid)) return false;
    out->last_txid = out->first_txid;
    return true;
  }
  if (tail.compare(0, 9, "segments/") == 0 && tail.size() == 9 + 33 + 4 && tail[25] == '-' &&
      tail.substr(42) == ".seg") {
    out->kind = ObjectRef::kSegment;
    if (!ParseHex16(tail.substr(9, 16), &out->first_txid) || !ParseHex16(tail.substr(26, 16), &out->last_txid))
      return false;
    return out->first_txid <= out->last_txid;
  }
  return false;
}

std::string EncodeManifest(const Manifest& m) {
  std::ostringstream o;
  o << "replite-manifest 1\n";
  o << "page_size " << m.page_size << "\n";
  for (const auto& g : m.generations) o << "generation " << g.id << " " << g.first_txid << " " << g.created_ms << "\n";
  for (const auto& id : m.deleting) o << "deleting " << id << "\n";
  return o.str();
}

Status DecodeManifest(const std::string& text, Manifest* out) {
  *out = Manifest();
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != "replite-manifest 1")
    return Status::Corruption("manifest: unknown format (first line '" + line.substr(0, 40) + "')");
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream ls(line);
    std::string word;
    ls >> word;
    if (word == "page_size") {
      ls >> out->page_size;
    } else if (word == "generation") {
      GenerationEntry g;
      ls >> g.id >> g.first_txid >> g.created_ms;
      uint64_t dummy;
      if (ls.fail() || !ParseHex16(g.id, &dummy)) return Status::Corruption("manifest: bad generation line '" + line + "'");
      out->generations.push_back(g);
    } else if (word == "deleting") {
      std::string id;
      ls >> id;
      uint64_t dummy;
      if (ls.fail() || !ParseHex16(id, &dummy)) return Status::Corruption("manifest: bad deleting line '" + line + "'");
      out->deleting.push_back(id);
    }  // unknown words: newer writers may add fields; ignore them
  }
  return Status::OK();
}

uint64_t GenerationCatalog::max_txid() const {
  uint64_t m = 0;
  for (const auto& s : snapshots) m = std::max(m, s.last_txid);
  for (const auto& s : segments) m = std::max(m, s.last_txid);
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
    (r.kind == ObjectRef::kSnapshot ? out->snapshots : out->segments).push_back(r);
  }
  std::sort(out->snapshots.begin(), out->snapshots.end(),
            [](const ObjectRef& a, const ObjectRef& b) { return a.first_txid < b.first_txid; });
  std::sort(out->segments.begin(), out->segments.end(), [](const ObjectRef& a, const ObjectRef& b) {
    return a.first_txid != b.first_txid ? a.first_txid < b.first_txid : a.last_txid < b.last_txid;
  });
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

}  // namespace replite
