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

struct Pool {
  std::mutex mu;
  std::vector<CompressorLease::Item*> cctx;
  std::vector<ZSTD_DCtx*> dctx;
};

// Never destroyed: leases may be returned by threads that outlive static
// destruction order (a detached worker at exit).
Pool& ThePool() {
  static Pool* p = new Pool;
  return *p;
}

uint64_t ItemBytes(const CompressorLease::Item* it) { return ZSTD_sizeof_CCtx(it->cctx) + it->cap; }

}  // namespace

CompressorLease::CompressorLease() : item_(nullptr) {
  Pool& p = ThePool();
  {
    std::lock_guard<std::mutex> l(p.mu);
    if (!p.cctx.empty()) {
      item_ = p.cctx.back();
      p.cctx.pop_back();
    }
  }
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
  Pool& p = ThePool();
  {
    std::lock_guard<std::mutex> l(p.mu);
    if (item_->cctx && p.cctx.size() < kZstdPoolIdle) {
      p.cctx.push_back(item_);
      return;
    }
  }
  delete item_;
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

DecompressorLease::DecompressorLease() : dctx_(nullptr) {
  Pool& p = ThePool();
  {
    std::lock_guard<std::mutex> l(p.mu);
    if (!p.dctx.empty()) {
      dctx_ = p.dctx.back();
      p.dctx.pop_back();
    }
  }
  if (dctx_) {
    ZSTD_DCtx_reset(dctx_, ZSTD_reset_session_and_parameters);
  } else {
    dctx_ = ZSTD_createDCtx();
  }
}

DecompressorLease::~DecompressorLease() {
  if (!dctx_) return;
  Pool& p = ThePool();
  {
    std::lock_guard<std::mutex> l(p.mu);
    if (p.dctx.size() < kZstdPoolIdle) {
      p.dctx.push_back(dctx_);
      return;
    }
  }
  ZSTD_freeDCtx(dctx_);
}

uint64_t TrimZstdPool() {
  std::vector<CompressorLease::Item*> c;
  std::vector<ZSTD_DCtx*> d;
  Pool& p = ThePool();
  {
    std::lock_guard<std::mutex> l(p.mu);
    c.swap(p.cctx);
    d.swap(p.dctx);
  }
  uint64_t freed = 0;
  for (auto* it : c) {
    freed += ItemBytes(it);
    delete it;
  }
  for (auto* x : d) {
    freed += ZSTD_sizeof_DCtx(x);
    ZSTD_freeDCtx(x);
  }
  return freed;
}

uint64_t ZstdPoolBytes() {
  Pool& p = ThePool();
  std::lock_guard<std::mutex> l(p.mu);
  uint64_t n = 0;
  for (auto* it : p.cctx) n += ItemBytes(it);
  for (auto* x : p.dctx) n += ZSTD_sizeof_DCtx(x);
  return n;
}

}  // namespace replite
