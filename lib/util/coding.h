// Fixed-width integer encoding. Our formats are little-endian; the SQLite
// WAL and database headers are big-endian.
#pragma once

#include <cstdint>
#include <string>

namespace replite {

inline void PutLE32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; i++) s->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutLE64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; i++) s->push_back(static_cast<char>(v >> (8 * i)));
}
inline uint32_t GetLE32(const void* p) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}
inline uint64_t GetLE64(const void* p) {
  return uint64_t(GetLE32(p)) | uint64_t(GetLE32(static_cast<const char*>(p) + 4)) << 32;
}
inline uint32_t GetBE32(const void* p) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | uint32_t(b[3]);
}
inline uint16_t GetBE16(const void* p) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(b[0] << 8 | b[1]);
}
inline void PutBE32(void* p, uint32_t v) {
  unsigned char* b = static_cast<unsigned char*>(p);
  b[0] = static_cast<unsigned char>(v >> 24);
  b[1] = static_cast<unsigned char>(v >> 16);
  b[2] = static_cast<unsigned char>(v >> 8);
  b[3] = static_cast<unsigned char>(v);
}

}  // namespace replite
