#include "util/hash.h"

#include <cstring>

namespace replite {
namespace {

constexpr uint64_t P1 = 11400714785074694791ULL;
constexpr uint64_t P2 = 14029467366897019727ULL;
constexpr uint64_t P3 = 1609587929392839161ULL;
constexpr uint64_t P4 = 9650029242287828579ULL;
constexpr uint64_t P5 = 2870177450012600261ULL;

inline uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t Read64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian hosts (x86_64, aarch64); see CMake note
}
inline uint32_t Read32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t Round(uint64_t acc, uint64_t input) {
  acc += input * P2;
  acc = Rotl(acc, 31);
  return acc * P1;
}
inline uint64_t Merge(uint64_t acc, uint64_t val) {
  acc ^= Round(0, val);
  return acc * P1 + P4;
}

uint64_t Finish(uint64_t h, const unsigned char* p, size_t len) {
  while (len >= 8) {
    h ^= Round(0, Read64(p));
    h = Rotl(h, 27) * P1 + P4;
    p += 8;
    len -= 8;
  }
  if (len >= 4) {
    h ^= static_cast<uint64_t>(Read32(p)) * P1;
    h = Rotl(h, 23) * P2 + P3;
    p += 4;
    len -= 4;
  }
  while (len > 0) {
    h ^= (*p) * P5;
    h = Rotl(h, 11) * P1;
    p++;
    len--;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

}  // namespace

uint64_t XXH64(const void* data, size_t len, uint64_t seed) {
  XXH64Stream s(seed);
  s.Update(data, len);
  return s.Digest();
}

XXH64Stream::XXH64Stream(uint64_t seed) : seed_(seed) {
  v_[0] = seed + P1 + P2;
  v_[1] = seed + P2;
  v_[2] = seed;
  v_[3] = seed - P1;
}

void XXH64Stream::Update(const void* data, size_t len) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  total_ += len;
  if (buf_len_ + len < 32) {
    std::memcpy(buf_ + buf_len_, p, len);
    buf_len_ += len;
    return;
  }
  if (buf_len_ > 0) {
    size_t fill = 32 - buf_len_;
    std::memcpy(buf_ + buf_len_, p, fill);
    for (int i = 0; i < 4; i++) v_[i] = Round(v_[i], Read64(buf_ + 8 * i));
    p += fill;
    len -= fill;
    buf_len_ = 0;
  }
  while (len >= 32) {
    v_[0] = Round(v_[0], Read64(p));
    v_[1] = Round(v_[1], Read64(p + 8));
    v_[2] = Round(v_[2], Read64(p + 16));
    v_[3] = Round(v_[3], Read64(p + 24));
    p += 32;
    len -= 32;
  }
  std::memcpy(buf_, p, len);
  buf_len_ = len;
}

uint64_t XXH64Stream::Digest() const {
  uint64_t h;
  if (total_ >= 32) {
    h = Rotl(v_[0], 1) + Rotl(v_[1], 7) + Rotl(v_[2], 12) + Rotl(v_[3], 18);
    for (int i = 0; i < 4; i++) h = Merge(h, v_[i]);
  } else {
    h = seed_ + P5;
  }
  h += total_;
  return Finish(h, buf_, buf_len_);
}

}  // namespace replite
