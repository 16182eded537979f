#include "replica/pack_catalog.h"

#include <algorithm>
#include <unordered_set>

#include "store/parallel_requests.h"

namespace replite {
namespace {
constexpr size_t kIndexReaders = 8;  // pack indexes read at once
}  // namespace

std::string PackDirOf(const std::string& db_prefix) {
  const size_t slash = db_prefix.rfind('/');
  if (slash == std::string::npos) return std::string(kPackDirName) + "/";
  return db_prefix.substr(0, slash + 1) + kPackDirName + "/";
}

std::string PackMemberName(const std::string& db_prefix) {
  const size_t slash = db_prefix.rfind('/');
  return slash == std::string::npos ? db_prefix : db_prefix.substr(slash + 1);
}

std::string PackKey(const std::string& pack_dir, int64_t created_ms, uint64_t index_offset) {
  return pack_dir + Hex16(NewGenerationNumber(created_ms)) + "-" + Hex16(index_offset) + ".pack";
}

bool ParsePackKey(const std::string& pack_dir, const std::string& key, int64_t* created_ms, uint64_t* index_offset) {
  const size_t d = pack_dir.size();
  if (key.size() != d + 38 || key.compare(0, d, pack_dir) != 0 || key[d + 16] != '-' ||
      key.compare(key.size() - 5, 5, ".pack") != 0)
    return false;
  uint64_t id, off;
  if (!ParseHex16(key.substr(d, 16), &id) || !ParseHex16(key.substr(d + 17, 16), &off)) return false;
  *created_ms = int64_t(id >> 16);
  if (index_offset) *index_offset = off;
  return true;
}

Status ReadPackIndex(ObjectStore* store, const std::string& key, uint64_t size, PackIndex* out) {
  const size_t slash = key.rfind('/');
  int64_t created;
  uint64_t at;
  if (!ParsePackKey(key.substr(0, slash + 1), key, &created, &at))
    return Status::InvalidArgument("pack " + key + ": not a pack key");
  if (size < kPackHeaderSize + 4 + kPackTrailerSize || at < kPackHeaderSize || at > size - kPackTrailerSize - 4)
    return Status::Corruption("pack " + key + ": its size (" + std::to_string(size) + ") does not fit its index offset");
  std::string tail;
  Status s = store->Get(key, &tail, at, size - at);
  if (!s.ok()) return s;
  return DecodePackTail(key, tail, at, size, out);
}

Status DecodePackTail(const std::string& key, const std::string& tail, uint64_t at, uint64_t size, PackIndex* out) {
  if (tail.size() != size - at || tail.size() < kPackTrailerSize)
    return Status::Corruption("pack " + key + ": short read of its index");
  const char* t = tail.data() + tail.size() - kPackTrailerSize;
  uint64_t index_offset, index_len;
  Status s = DecodePackTrailer(t, size, &index_offset, &index_len);
  if (!s.ok()) return s.Annotate("pack " + key + ": ");
  if (index_offset != at) return Status::Corruption("pack " + key + ": index offset differs from its key");
  s = DecodePackIndex(tail.substr(0, index_len), t, size, out);
  if (!s.ok()) return s.Annotate("pack " + key + ": ");
  return Status::OK();
}

Status PackIndexCache::Members(ObjectStore* store, const std::string& db_prefix, std::vector<ObjectRef>* out) {
  out->clear();
  const std::string dir = PackDirOf(db_prefix), name = PackMemberName(db_prefix);
  std::vector<ObjectInfo> listed;
  Status s = store->List(dir, &listed);
  if (!s.ok()) return s;
  std::vector<const ObjectInfo*> packs;
  std::vector<std::shared_ptr<const PackIndex>> indexes;
  std::unordered_set<std::string> keys;
  for (const auto& p : listed) {
    int64_t created_ms;
    if (!ParsePackKey(dir, p.key, &created_ms)) continue;
    keys.insert(p.key);
    packs.push_back(&p);
    MutexLock l(mu_);
    auto it = indexes_.find(p.key);
    indexes.push_back(it == indexes_.end() ? nullptr : it->second);
  }
  // The indexes not read yet, by a few threads at once (each a ranged GET).
  s = ForEachParallel(packs.size(), kIndexReaders, [&](size_t i) {
    if (indexes[i]) return Status::OK();
    auto fresh = std::make_shared<PackIndex>();
    Status r = ReadPackIndex(store, packs[i]->key, packs[i]->size, fresh.get());
    if (r.code() == Code::kNotFound) return Status::OK();  // deleted since the LIST (its members were moved out)
    if (!r.ok()) return r;
    indexes[i] = fresh;
    MutexLock l(mu_);
    indexes_[packs[i]->key] = fresh;
    return Status::OK();
  });
  if (!s.ok()) return s;
  for (size_t i = 0; i < packs.size(); i++) {
    if (!indexes[i]) continue;
    for (const auto& m : indexes[i]->members) {
      if (m.name != name) continue;
      ObjectRef r;
      r.kind = ObjectRef::kSegment;
      r.key = packs[i]->key;
      r.generation = m.generation;
      r.first_txid = m.first_txid;
      r.last_txid = m.last_txid;
      r.offset = m.offset;
      r.size = m.length;
      r.mtime_ms = packs[i]->mtime_ms;
      out->push_back(std::move(r));
    }
  }
  MutexLock l(mu_);
  for (auto it = indexes_.begin(); it != indexes_.end();) {
    if (it->first.compare(0, dir.size(), dir) == 0 && !keys.count(it->first)) it = indexes_.erase(it);
    else ++it;
  }
  return Status::OK();
}

void AddPackMembers(const std::vector<ObjectRef>& members, GenerationCatalog* cat) {
  bool added = false;
  for (const auto& m : members)
    if (m.generation == cat->id) {
      cat->segments.push_back(m);
      added = true;
    }
  if (!added) return;
  std::sort(cat->segments.begin(), cat->segments.end(), [](const ObjectRef& a, const ObjectRef& b) {
    return a.first_txid != b.first_txid ? a.first_txid < b.first_txid : a.last_txid < b.last_txid;
  });
}

}  // namespace replite
