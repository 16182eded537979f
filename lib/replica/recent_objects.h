// RecentObjects: the bytes of objects this process has just stored and
// compaction will read soon (per-sync segments, compacted objects of the
// levels below the top), kept in memory under one byte budget shared by
// every database, so that compaction merges from local state instead of
// GETting back what it uploaded seconds earlier. Each object is taken once;
// when the budget is exceeded the oldest go first, and Expire drops what
// waited too long (a database that went idle is not compacted again until
// it changes: its last segments would stay); compaction then reads those
// from the store, as after a restart.
//
// What is kept is exactly what was stored, and compaction checks it as it
// checks the store's bytes (block hashes, header against name); its own
// output is still read back from the store.
//
// Thread-safety: safe for concurrent use.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

#include "util/thread_annotations.h"

namespace replite {

class RecentObjects {
 public:
  // Objects larger than max_object_bytes are not kept.
  RecentObjects(uint64_t budget_bytes, uint64_t max_object_bytes)
      : budget_(budget_bytes), max_object_(max_object_bytes) {}

  // Keeps a copy of `bytes` stored under `key` (the full store key).
  void Keep(const std::string& key, const std::string& bytes);
  // Moves the bytes kept for `key` to *out and forgets them; false if none.
  bool Take(const std::string& key, std::string* out);
  uint64_t bytes() const;
  // Forgets the objects kept more than `max_age_us` ago (steady clock).
  void Expire(int64_t max_age_us);

 private:
  const uint64_t budget_, max_object_;
  mutable Mutex mu_;
  std::unordered_map<std::string, std::string> objects_ GUARDED_BY(mu_);
  struct Entry {
    std::string key;
    int64_t kept_us;  // steady clock
  };
  std::deque<Entry> order_ GUARDED_BY(mu_);  // oldest first (some already taken)
  uint64_t bytes_ GUARDED_BY(mu_) = 0;
};

}  // namespace replite
