// The SQLite WAL file format (https://www.sqlite.org/fileformat2.html#walformat):
// a 32-byte header, then frames of a 24-byte frame header + one page.
// Checksums are cumulative over the header and every frame, computed on
// 32-bit words in the byte order the magic number names (0x377f0682:
// little-endian, 0x377f0683: big-endian). A frame is valid only if its
// salts equal the header's and its checksum continues the chain; a frame
// with a non-zero "database size" field is a commit frame.
//
// Stateless functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

#include "replite/status.h"

namespace replite {

constexpr uint32_t kWalMagicLE = 0x377f0682;
constexpr uint32_t kWalMagicBE = 0x377f0683;
constexpr size_t kWalHeaderSize = 32;
constexpr size_t kWalFrameHeaderSize = 24;
constexpr uint32_t kWalVersion = 3007000;

struct WalHeader {
  uint32_t magic = 0;
  uint32_t version = 0;
  uint32_t page_size = 0;
  uint32_t ckpt_seq = 0;
  uint32_t salt1 = 0, salt2 = 0;
  uint32_t cksum1 = 0, cksum2 = 0;  // checksum of the first 24 header bytes
  bool big_endian_cksum() const { return magic == kWalMagicBE; }
};

struct WalFrameHeader {
  uint32_t pgno = 0;
  uint32_t commit_size = 0;  // database size in pages after a commit frame, else 0
  uint32_t salt1 = 0, salt2 = 0;
  uint32_t cksum1 = 0, cksum2 = 0;
};

// Parses and verifies a WAL header (magic, version, page size 512..65536 and
// a power of two, header checksum). kCorruption with the reason otherwise.
Status ParseWalHeader(const unsigned char* buf, size_t n, WalHeader* out);

WalFrameHeader ParseWalFrameHeader(const unsigned char* buf);

// Extends the running checksum (s1, s2) over `n` bytes (n a multiple of 8).
void WalChecksum(bool big_endian, const unsigned char* data, size_t n, uint32_t* s1, uint32_t* s2);

// Verifies one frame against the header's salts and the running checksum
// (s1, s2), which is advanced past the frame when it is valid. `frame` is
// the 24-byte header followed by page_size bytes.
bool VerifyWalFrame(const WalHeader& hdr, const unsigned char* frame, uint32_t* s1, uint32_t* s2);

// Byte offset of frame number `index` (0-based).
inline uint64_t WalFrameOffset(uint32_t page_size, uint64_t index) {
  return kWalHeaderSize + index * (kWalFrameHeaderSize + page_size);
}

}  // namespace replite
