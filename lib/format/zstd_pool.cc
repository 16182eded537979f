#include "format/zstd_pool.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

namespace replite {

struct CompressorLease::Item {
  ZSTD_CCtx* cctx = nullptr;
  std::unique_ptr<char[]> buf;
  size_t cap = 0;
  ~Item() { ZSTD_freeCCtx(cctx); }
};

namespace {

// Idle objects of one kind, at most kZstdPoolIdle of them. Never destroyed:
// leases may be returned by threads that outlive static destruction order
// (a detached worker at exit).
template <typename T>
class IdleList {
 public:
  static IdleList& Get() {
    static IdleList* l = new IdleList;
    return *l;
  }
  T* Take() {
    std::lock_guard<std::mutex> l(mu_);
    if (items_.empty()) return nullptr;
    T* t = items_.back();
    items_.pop_back();
    return t;
  }
  // Keeps `t` for the next Take; false when full (the caller frees it).
  bool Give(T* t) {
    std::lock_guard<std::mutex> l(mu_);
    if (items_.size() >= kZstdPoolIdle) return false;
    items_.push_back(t);
    return true;
  }
  std::vector<T*> TakeAll() {
    std::vector<T*> v;
    std::lock_guard<std::mutex> l(mu_);
    v.swap(items_);
    return v;
  }
  template <typename F>
  uint64_t Sum(F bytes) {
    std::lock_guard<std::mutex> l(mu_);
    uint64_t n = 0;
    for (T* t : items_) n += bytes(t);
    return n;
  }

 private:
  std::mutex mu_;
  std::vector<T*> items_;
};

using CctxList = IdleList<CompressorLease::Item>;
using DctxList = IdleList<ZSTD_DCtx>;

uint64_t ItemBytes(const CompressorLease::Item* it) { return ZSTD_sizeof_CCtx(it->cctx) + it->cap; }
uint64_t DctxBytes(const ZSTD_DCtx* d) { return ZSTD_sizeof_DCtx(d); }

}  // namespace

CompressorLease::CompressorLease() : item_(CctxList::Get().Take()) {
  if (item_) {
    ZSTD_CCtx_reset(item_->cctx, ZSTD_reset_session_and_parameters);
  } else {
    item_ = new Item;
    item_->cctx = ZSTD_createCCtx();
  }
}

CompressorLease::~CompressorLease() {
  if (item_->cap > kZstdPoolMaxKeptBuffer) {
    item_->buf.reset();
    item_->cap = 0;
  }
  if (!item_->cctx || !CctxList::Get().Give(item_)) delete item_;
}

ZSTD_CCtx* CompressorLease::cctx() const { return item_->cctx; }

char* CompressorLease::buffer() const { return item_->buf.get(); }

char* CompressorLease::Buffer(size_t size, size_t keep) {
  if (size > item_->cap) {
    const size_t cap = std::max(size, item_->cap + item_->cap / 2);
    std::unique_ptr<char[]> b(new char[cap]);  // not zero-filled
    if (keep > 0) std::memcpy(b.get(), item_->buf.get(), std::min(keep, item_->cap));
    item_->buf = std::move(b);
    item_->cap = cap;
  }
  return item_->buf.get();
}

DecompressorLease::DecompressorLease() : dctx_(DctxList::Get().Take()) {
  if (dctx_) {
    ZSTD_DCtx_reset(dctx_, ZSTD_reset_session_and_parameters);
  } else {
    dctx_ = ZSTD_createDCtx();
  }
}

DecompressorLease::~DecompressorLease() {
  if (dctx_ && !DctxList::Get().Give(dctx_)) ZSTD_freeDCtx(dctx_);
}

uint64_t TrimZstdPool() {
  uint64_t freed = 0;
  for (auto* it : CctxList::Get().TakeAll()) {
    freed += ItemBytes(it);
    delete it;
  }
  for (auto* d : DctxList::Get().TakeAll()) {
    freed += DctxBytes(d);
    ZSTD_freeDCtx(d);
  }
  return freed;
}

uint64_t ZstdPoolBytes() {
  return CctxList::Get().Sum(ItemBytes) + DctxList::Get().Sum(DctxBytes);
}

}  // namespace replite
