// XXH64 (Yann Collet's xxHash, 64-bit variant), written from the published
// specification. Used for page hashes, block hashes and object checksums:
// fast enough to hash every page a snapshot reads. None of our dependencies
// exposes a public fast non-cryptographic 64-bit hash (zstd bundles XXH64
// but does not export it).
#pragma once

#include <cstddef>
#include <cstdint>

namespace replite {

uint64_t XXH64(const void* data, size_t len, uint64_t seed);

// Streaming form, for objects written or read in pieces.
class XXH64Stream {
 public:
  explicit XXH64Stream(uint64_t seed = 0);
  void Update(const void* data, size_t len);
  uint64_t Digest() const;

 private:
  uint64_t v_[4];
  uint64_t total_ = 0;
  uint64_t seed_;
  unsigned char buf_[32];
  size_t buf_len_ = 0;
};

// Hash of one database page, as used in the database content checksum:
// the checksum of a database state is the XOR of PageHash(pgno, page) over
// every page 1..n, so it can be updated page by page.
inline uint64_t PageHash(uint32_t pgno, const void* page, size_t page_size) {
  return XXH64(page, page_size, pgno);
}

}  // namespace replite
