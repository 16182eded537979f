#include "util/slab.h"

#include <sys/mman.h>

#include <cstring>
#include <new>

namespace replite {

void* Slab::Alloc() {
  std::lock_guard<std::mutex> l(mu_);
  if (free_ != nullptr) {
    void* p = free_;
    std::memcpy(&free_, p, sizeof free_);
    return p;
  }
  if (next_ == nullptr || size_t(end_ - next_) < cell_) {
    void* m = ::mmap(nullptr, kBlock, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    next_ = static_cast<char*>(m);
    end_ = next_ + kBlock;
    mapped_ += kBlock;
  }
  void* p = next_;
  next_ += cell_;
  return p;
}

void Slab::Free(void* p) {
  if (p == nullptr) return;
  std::lock_guard<std::mutex> l(mu_);
  std::memcpy(p, &free_, sizeof free_);
  free_ = p;
}

}  // namespace replite
