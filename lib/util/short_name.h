// ShortName: a file name in 16 bytes, held inline up to 15 bytes (a longer
// one in a heap block of its exact size). A std::string takes 32 bytes for
// the same inline 15; one is kept per database (issue 20).
//
// Thread-safety: none (a value; the owner synchronizes).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "util/memory_size.h"

namespace replite {

class ShortName {
 public:
  ShortName() { std::memset(b_, 0, sizeof b_); }
  explicit ShortName(std::string_view s) : ShortName() { Set(s); }
  ShortName(const ShortName&) = delete;
  ShortName& operator=(const ShortName&) = delete;
  ShortName& operator=(std::string_view s) {
    Set(s);
    return *this;
  }
  ~ShortName() { Free(); }

  std::string_view view() const {
    if (b_[15] != kOnHeap) return std::string_view(b_, uint8_t(b_[15]));
    const char* p;
    uint32_t n;
    std::memcpy(&p, b_, sizeof p);
    std::memcpy(&n, b_ + 8, sizeof n);
    return std::string_view(p, n);
  }
  std::string str() const { return std::string(view()); }
  size_t size() const { return view().size(); }
  // Heap bytes (0 when inline).
  uint64_t HeapBytes() const { return b_[15] == kOnHeap ? MallocChunk(view().size()) : 0; }

 private:
  static constexpr char kOnHeap = char(0xff);
  void Set(std::string_view s) {
    Free();
    std::memset(b_, 0, sizeof b_);
    if (s.size() < 16) {
      std::memcpy(b_, s.data(), s.size());
      b_[15] = char(s.size());
      return;
    }
    char* p = new char[s.size()];
    std::memcpy(p, s.data(), s.size());
    const uint32_t n = uint32_t(s.size());
    std::memcpy(b_, &p, sizeof p);
    std::memcpy(b_ + 8, &n, sizeof n);
    b_[15] = kOnHeap;
  }
  void Free() {
    if (b_[15] != kOnHeap) return;
    char* p;
    std::memcpy(&p, b_, sizeof p);
    delete[] p;
    b_[15] = 0;
  }

  // Inline: the bytes, then the length in b_[15] (0-15). On the heap: the
  // pointer, the 32-bit length, and kOnHeap in b_[15].
  alignas(8) char b_[16];
};

}  // namespace replite
