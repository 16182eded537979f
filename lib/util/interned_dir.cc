#include "util/interned_dir.h"

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "util/memory_size.h"

namespace replite {

struct InternedDir::Entry {
  std::string name;
  uint64_t refs = 0;  // guarded by the table's lock
};

namespace {

struct Table {
  std::mutex mu;
  std::unordered_map<std::string_view, InternedDir::Entry*> by_name;  // keys point into the entries
  std::atomic<uint64_t> bytes{0};
};

// Never destroyed: slots may be dropped during static destruction.
Table& TheTable() {
  static Table* t = new Table;
  return *t;
}

uint64_t EntryBytes(const std::string& name) {
  // The entry, its name and a node of the map (key, value, next, hash).
  return MallocChunk(sizeof(std::string) + 8) + StringHeap(name) + MallocChunk(8 + 16 + 8 + 8);
}

}  // namespace

InternedDir::InternedDir(std::string_view dir) {
  Table& t = TheTable();
  std::lock_guard<std::mutex> l(t.mu);
  auto it = t.by_name.find(dir);
  if (it == t.by_name.end()) {
    Entry* e = new Entry{std::string(dir)};
    it = t.by_name.emplace(std::string_view(e->name), e).first;
    t.bytes += EntryBytes(e->name);
  }
  e_ = it->second;
  e_->refs++;
}

InternedDir& InternedDir::operator=(InternedDir&& o) noexcept {
  if (this != &o) {
    InternedDir old(std::move(*this));
    e_ = o.e_;
    o.e_ = nullptr;
  }
  return *this;
}

InternedDir::~InternedDir() {
  if (e_ == nullptr) return;
  Table& t = TheTable();
  std::lock_guard<std::mutex> l(t.mu);
  if (--e_->refs > 0) return;
  t.by_name.erase(std::string_view(e_->name));
  t.bytes -= EntryBytes(e_->name);
  delete e_;
}

const std::string& InternedDir::str() const {
  static const std::string* empty = new std::string;
  return e_ ? e_->name : *empty;
}

uint64_t InternedDir::HeapBytes() {
  Table& t = TheTable();
  std::lock_guard<std::mutex> l(t.mu);
  return t.bytes + MallocChunk(t.by_name.bucket_count() * sizeof(void*));
}

}  // namespace replite
