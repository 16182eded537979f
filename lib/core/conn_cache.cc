#include "core/conn_cache.h"

#include <vector>

#include "core/memory_report.h"

namespace replite {

std::unique_ptr<KeptDb> ConnCache::Take(uint32_t id, const std::string& path) {
  std::unique_ptr<KeptDb> stale;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_id_.find(id);
    if (it != by_id_.end()) {
      Entry& e = *it->second;
      std::unique_ptr<KeptDb> c = std::move(e.conn);
      const bool same = e.path == path;  // an id is reused after Remove
      lru_.erase(it->second);
      by_id_.erase(it);
      if (same) {
        taken_.fetch_add(1, std::memory_order_relaxed);
        c->taken = &taken_;
        return c;
      }
      stale = std::move(c);
    }
  }
  return std::make_unique<KeptDb>();  // `stale` closes outside the lock
}

void ConnCache::Put(uint32_t id, const std::string& path, std::unique_ptr<KeptDb> c, int64_t now_us) {
  if (c && c->taken) {
    taken_.fetch_sub(1, std::memory_order_relaxed);
    c->taken = nullptr;
  }
  if (!c || !c->conn.is_open()) return;
  const bool fresh = !c->cached;
  if (fresh) opened_.fetch_add(1, std::memory_order_relaxed);
  c->cached = true;
  if (capacity_ == 0) return;
  std::vector<std::unique_ptr<KeptDb>> evicted;
  {
    std::lock_guard<std::mutex> l(mu_);
    // Full of entries in use: the newcomer goes (closed outside the lock)
    // rather than one of them. An entry that was kept before comes back
    // (its place was taken only while its job ran).
    if (fresh && !lru_.empty() && lru_.size() + taken_.load(std::memory_order_relaxed) >= capacity_ &&
        now_us - lru_.back().used_us < kWarmUs) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      evicted.push_back(std::move(c));
      return;
    }
    if (auto it = by_id_.find(id); it != by_id_.end()) {  // cannot happen (one job per database); be safe
      evicted.push_back(std::move(it->second->conn));
      lru_.erase(it->second);
      by_id_.erase(it);
    }
    lru_.push_front(Entry{id, path, now_us, std::move(c)});
    by_id_[id] = lru_.begin();
    while (lru_.size() > capacity_) {
      evicted.push_back(std::move(lru_.back().conn));
      by_id_.erase(lru_.back().id);
      lru_.pop_back();
    }
  }
}

void ConnCache::Sweep(int64_t now_us, int64_t idle_us) {
  std::vector<std::unique_ptr<KeptDb>> idle;
  {
    std::lock_guard<std::mutex> l(mu_);
    while (!lru_.empty() && now_us - lru_.back().used_us > idle_us) {
      idle.push_back(std::move(lru_.back().conn));
      by_id_.erase(lru_.back().id);
      lru_.pop_back();
    }
  }
}

void ConnCache::Drop(uint32_t id) {
  std::unique_ptr<KeptDb> c;
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  c = std::move(it->second->conn);
  lru_.erase(it->second);
  by_id_.erase(it);
}

void ConnCache::Clear() {
  std::list<Entry> all;
  std::lock_guard<std::mutex> l(mu_);
  all.swap(lru_);
  by_id_.clear();
}

size_t ConnCache::size() {
  std::lock_guard<std::mutex> l(mu_);
  return lru_.size();
}

uint64_t ConnCache::MemoryBytes() {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t b = HashTableHeap(by_id_.bucket_count(), by_id_.size(), 8 + 4 + 8);
  for (Entry& e : lru_) {
    b += MallocChunk(sizeof(Entry) + 16) + StringHeap(e.path);  // list node
    if (!e.conn) continue;
    b += MallocChunk(sizeof(KeptDb)) + MallocChunk(e.conn->frames.pgnos.capacity() * sizeof(uint32_t));
    b += SqliteConnBytes(e.conn->conn.raw()) + SqliteConnBytes(e.conn->pin.raw());
  }
  return b;
}

}  // namespace replite
