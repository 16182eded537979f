#include "core/db_registry.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "core/memory_report.h"
#include "util/file_util.h"
#include "util/sanitizers.h"
#include "util/slab.h"

namespace replite {

#if defined(REPLITE_SANITIZER_MALLOC)
void* DbSlot::operator new(size_t n) { return ::operator new(n); }
void DbSlot::operator delete(void* p) { ::operator delete(p); }
uint64_t DbSlot::CellBytes() { return MallocChunk(sizeof(DbSlot)); }
#else
namespace {
// Never destroyed: slots may be dropped during static destruction.
Slab& SlotSlab() {
  static Slab* s = new Slab(sizeof(DbSlot));
  return *s;
}
}  // namespace
void* DbSlot::operator new(size_t) { return SlotSlab().Alloc(); }  // (always sizeof(DbSlot): nothing derives)
void DbSlot::operator delete(void* p) { SlotSlab().Free(p); }
uint64_t DbSlot::CellBytes() { return SlotSlab().cell(); }
#endif

namespace {

// The heap bytes of a slot without its DbExtra: the slot (its cell, its
// count inside), its file name when longer than 15 bytes, its target (directory names are
// shared: the registry's tables count them). A DbExtra counts kExtraBytes
// (its error text and hooks are not counted).
uint64_t SlotBytes(const DbSlot& s) {
  uint64_t b = DbSlot::CellBytes() + s.name.HeapBytes();
  if (const DbTarget* t = s.target())  // (its config's: one database's)
    b += MallocChunk(sizeof(DbTarget)) + StringHeap(t->url_str) + StringHeap(t->url.prefix);
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
  if (const DbTarget* t = s.target()) return {t->store.get(), t->health.get(), t->url.prefix, t->url_str};
  const ReplicaUrl url = s.cfg->root.Child(ReplicaNameFor(s.name.str()));
  return {s.cfg->store.get(), s.cfg->health.get(), url.prefix, url.ToString()};
}

uint32_t DbRegistry::PathHash(std::string_view p) {
  const size_t k = p.rfind('/');  // (as DbSlot::SetPath splits it)
  return k == std::string_view::npos ? PathHash(std::string_view(), p) : PathHash(p.substr(0, k), p.substr(k + 1));
}

uint32_t DbRegistry::FindPath(std::string_view p) const {
  const SlotPtr* slots = slots_.data();  // (the lambda runs under our lock)
  return by_path_.Find(PathHash(p), [&](uint32_t id) { return slots[id]->PathIs(p); });
}

Status DbRegistry::Insert(const SlotPtr& slot, const std::string& url) {
  const std::string path = slot->path();
  WriterLock l(mu_);
  if (FindPath(path) != FlatIdTable::kNone)
    return Status::AlreadyExists("database " + path + " is already being replicated");
  // The same file under another path (a symlink, a hard link, a bind
  // mount): one database, which two slots would capture twice.
  const SlotPtr* slots = slots_.data();  // (the lambdas run under our lock)
  const uint32_t file_hash = FileHash(*slot);
  if (uint32_t id = by_file_.Find(file_hash,
                                  [&](uint32_t id) {
                                    return slots[id]->file_key == slot->file_key;
                                  });
      id != FlatIdTable::kNone)
    return Status::AlreadyExists("database " + path + " is the same file as " + slots_[id]->path() +
                                 ", which is already being replicated (a symlink or hard link to it): add it "
                                 "once, under one path");
  // One database per replica (two would share one manifest and serve
  // each other's data): checked by the URL's hash, O(1) per Add.
  const uint32_t url_hash = UrlHash(url);
  if (uint32_t id = by_url_.Find(url_hash, [&](uint32_t id) { return ReplicaRefOf(*slots[id]).url == url; });
      id != FlatIdTable::kNone)
    return Status::AlreadyExists(
        "database " + path + " would replicate to " + url + ", which database " + slots_[id]->path() +
        " already uses" +
        (slot->target() ? std::string(" (give each database its own replica URL)")
                      : std::string(" (under one replica root the replica is named after the file name "
                                    "without .db/.sqlite/.sqlite3: rename one of them, or give it its own "
                                    "replica URL)")));
  if (free_ids_.empty() && slots_.size() > FlatIdTable::kMaxId)
    return Status::ResourceExhausted("database " + path + ": " + std::to_string(slots_.size()) +
                                     " databases are replicated already, the most one replicator takes");
  if (free_ids_.empty()) {
    slot->id = static_cast<uint32_t>(slots_.size());
    slots_.push_back(slot);
  } else {
    slot->id = free_ids_.back();
    free_ids_.pop_back();
    slots_[slot->id] = slot;
  }
  // (what the tables ask when they grow: the hashes of the slots' keys)
  slots = slots_.data();
  by_path_.Insert(PathHash(*slot), slot->id, [&](uint32_t id) { return PathHash(*slots[id]); });
  by_url_.Insert(url_hash, slot->id, [&](uint32_t id) { return UrlHash(*slots[id]); });
  by_file_.Insert(file_hash, slot->id, [&](uint32_t id) { return FileHash(*slots[id]); });
  slot_bytes_ += SlotBytes(*slot);
  return Status::OK();
}

void DbRegistry::Erase(const DbSlot& slot, const std::string& url) {
  uint64_t bytes = SlotBytes(slot);
  {
    MutexLock sl(slot.stripe());  // not while holding mu_ (the lock order)
    if (slot.extra) bytes += kExtraBytes;
  }
  slot_bytes_ -= bytes;
  WriterLock l(mu_);
  const SlotPtr* slots = slots_.data();  // (the lambdas run under our lock: the hashes of the slots' keys)
  by_path_.Erase(PathHash(slot), slot.id, [&](uint32_t id) { return PathHash(*slots[id]); });
  by_url_.Erase(UrlHash(url), slot.id, [&](uint32_t id) { return UrlHash(*slots[id]); });
  by_file_.Erase(FileHash(slot), slot.id, [&](uint32_t id) { return FileHash(*slots[id]); });
  slots_[slot.id].reset();
  free_ids_.push_back(slot.id);
}

SlotPtr DbRegistry::Find(const std::string& abs_path) const {
  ReaderLock l(mu_);
  const uint32_t id = FindPath(abs_path);
  return id == FlatIdTable::kNone ? nullptr : slots_[id];
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
      if (s) v.push_back(s->path());
  }
  std::sort(v.begin(), v.end());
  return v;
}

void DbRegistry::MemoryBytes(uint64_t* slots, uint64_t* tables) {
  uint64_t tb = 0;
  {
    ReaderLock l(mu_);
    tb += MallocChunk(slots_.capacity() * sizeof(SlotPtr)) + MallocChunk(free_ids_.capacity() * sizeof(uint32_t));
    tb += by_path_.HeapBytes() + by_url_.HeapBytes() + by_file_.HeapBytes();
  }
  tb += InternedDir::HeapBytes();  // (the process's: every Replicator's directories)
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
  SlotLocks& locks = TheSlotLocks();
  for (uint32_t i = 0; i < kSlotStripes; i++) {
    MutexLock l(locks.mu[i]);
    locks.cv[i].notify_all();
  }
}

}  // namespace replite
