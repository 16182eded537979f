#include "core/db_registry.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "core/memory_report.h"
#include "util/file_util.h"

namespace replite {
namespace {

// The heap bytes of a slot without its DbExtra: the slot and its shared_ptr
// control block (make_shared), its path, its target. A DbExtra counts
// kExtraBytes (its error text and hooks are not counted).
uint64_t SlotBytes(const DbSlot& s) {
  uint64_t b = MallocChunk(sizeof(DbSlot) + 16) + StringHeap(s.path);
  if (s.target) b += MallocChunk(sizeof(DbTarget)) + StringHeap(s.target->url_str) + StringHeap(s.target->url.prefix);
  return b;
}
constexpr uint64_t kExtraBytes = MallocChunk(sizeof(DbExtra));

}  // namespace

std::string ReplicaNameFor(const std::string& db_path) {
  std::string name = BaseName(db_path);
  for (const char* ext : {".sqlite3", ".sqlite", ".db"}) {
    size_t n = std::strlen(ext);
    if (name.size() > n && name.compare(name.size() - n, n, ext) == 0) {
      name.resize(name.size() - n);
      break;
    }
  }
  return name;
}

ReplicaRef ReplicaRefOf(const DbSlot& s) {
  if (s.target) return {s.target->store.get(), s.target->health.get(), s.target->url.prefix, s.target->url_str};
  const ReplicaUrl url = s.cfg->root.Child(ReplicaNameFor(s.path));
  return {s.cfg->store.get(), s.cfg->health.get(), url.prefix, url.ToString()};
}

Status DbRegistry::Insert(const SlotPtr& slot, const std::string& url) {
  const std::string& path = slot->path;
  WriterLock l(mu_);
  if (by_path_.count(path)) return Status::AlreadyExists("database " + path + " is already being replicated");
  // The same file under another path (a symlink, a hard link, a bind
  // mount): one database, which two slots would capture twice.
  const uint64_t file_hash = FileHash(*slot);
  for (auto [it, end] = by_file_.equal_range(file_hash); it != end; ++it) {
    const SlotPtr& other = slots_[it->second];
    if (other && other->file_dev == slot->file_dev && other->file_ino == slot->file_ino)
      return Status::AlreadyExists("database " + path + " is the same file as " + other->path +
                                   ", which is already being replicated (a symlink or hard link to it): add it "
                                   "once, under one path");
  }
  // One database per replica (two would share one manifest and serve
  // each other's data): checked by the URL's hash, O(1) per Add.
  const uint64_t url_hash = std::hash<std::string>()(url);
  for (auto [it, end] = by_url_.equal_range(url_hash); it != end; ++it) {
    const SlotPtr& other = slots_[it->second];
    if (other && ReplicaRefOf(*other).url == url)
      return Status::AlreadyExists(
          "database " + path + " would replicate to " + url + ", which database " + other->path +
          " already uses" +
          (slot->target ? std::string(" (give each database its own replica URL)")
                        : std::string(" (under one replica root the replica is named after the file name "
                                      "without .db/.sqlite/.sqlite3: rename one of them, or give it its own "
                                      "replica URL)")));
  }
  if (free_ids_.empty()) {
    slot->id = static_cast<uint32_t>(slots_.size());
    slots_.push_back(slot);
  } else {
    slot->id = free_ids_.back();
    free_ids_.pop_back();
    slots_[slot->id] = slot;
  }
  slot->stripe = &stripes_[slot->id % kStripes];
  by_path_.emplace(std::string_view(slot->path), slot->id);
  by_url_.emplace(url_hash, slot->id);
  by_file_.emplace(file_hash, slot->id);
  slot_bytes_ += SlotBytes(*slot);
  return Status::OK();
}

void DbRegistry::Erase(const DbSlot& slot, const std::string& url) {
  uint64_t bytes = SlotBytes(slot);
  {
    MutexLock sl(Stripe(slot));  // not while holding mu_ (the lock order)
    if (slot.extra) bytes += kExtraBytes;
  }
  slot_bytes_ -= bytes;
  WriterLock l(mu_);
  by_path_.erase(std::string_view(slot.path));
  for (auto [it, end] = by_url_.equal_range(std::hash<std::string>()(url)); it != end; ++it)
    if (it->second == slot.id) {
      by_url_.erase(it);
      break;
    }
  for (auto [it, end] = by_file_.equal_range(FileHash(slot)); it != end; ++it)
    if (it->second == slot.id) {
      by_file_.erase(it);
      break;
    }
  slots_[slot.id].reset();
  free_ids_.push_back(slot.id);
}

SlotPtr DbRegistry::Find(const std::string& abs_path) const {
  ReaderLock l(mu_);
  auto it = by_path_.find(std::string_view(abs_path));
  return it == by_path_.end() ? nullptr : slots_[it->second];
}

SlotPtr DbRegistry::ById(uint32_t id) const {
  ReaderLock l(mu_);
  return id < slots_.size() ? slots_[id] : nullptr;
}

std::vector<SlotPtr> DbRegistry::All() const {
  ReaderLock l(mu_);
  std::vector<SlotPtr> v;
  v.reserve(by_path_.size());
  for (const auto& s : slots_)
    if (s) v.push_back(s);
  return v;
}

std::vector<std::string> DbRegistry::Paths() const {
  std::vector<std::string> v;
  {
    ReaderLock l(mu_);
    for (const auto& s : slots_)
      if (s) v.push_back(s->path);
  }
  std::sort(v.begin(), v.end());
  return v;
}

void DbRegistry::MemoryBytes(uint64_t* slots, uint64_t* tables) {
  uint64_t tb = 0;
  {
    ReaderLock l(mu_);
    tb += MallocChunk(slots_.capacity() * sizeof(SlotPtr)) + MallocChunk(free_ids_.capacity() * sizeof(uint32_t));
    tb += HashTableHeap(by_path_.bucket_count(), by_path_.size(), 8 + sizeof(std::string_view) + 8 + 8);
    tb += HashTableHeap(by_url_.bucket_count(), by_url_.size(), 8 + 8 + 8);
    tb += HashTableHeap(by_file_.bucket_count(), by_file_.size(), 8 + 8 + 8);
  }
  *slots = slot_bytes_.load();
  *tables = tb;
}

DbExtra& DbRegistry::Extra(DbSlot& s) {
  if (!s.extra) {
    s.extra = std::make_unique<DbExtra>();
    slot_bytes_ += kExtraBytes;
  }
  return *s.extra;
}

size_t DbRegistry::size() const {
  ReaderLock l(mu_);
  return by_path_.size();
}

void DbRegistry::NotifyAll() {
  for (int i = 0; i < kStripes; i++) {
    MutexLock l(stripes_[i]);
    cvs_[i].notify_all();
  }
}

}  // namespace replite
