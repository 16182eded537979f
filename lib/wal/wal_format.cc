#include "wal/wal_format.h"

#include "util/coding.h"

namespace replite {

void WalChecksum(bool big_endian, const unsigned char* d, size_t n, uint32_t* s1, uint32_t* s2) {
  uint32_t a = *s1, b = *s2;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint32_t x0, x1;
    if (big_endian) {
      x0 = GetBE32(d + i);
      x1 = GetBE32(d + i + 4);
    } else {
      x0 = GetLE32(d + i);
      x1 = GetLE32(d + i + 4);
    }
    a += x0 + b;
    b += x1 + a;
  }
  *s1 = a;
  *s2 = b;
}

Status ParseWalHeader(const unsigned char* buf, size_t n, WalHeader* out) {
  if (n < kWalHeaderSize) return Status::Corruption("WAL header truncated");
  WalHeader h;
  h.magic = GetBE32(buf);
  if (h.magic != kWalMagicLE && h.magic != kWalMagicBE) return Status::Corruption("bad WAL magic");
  h.version = GetBE32(buf + 4);
  if (h.version != kWalVersion) return Status::Corruption("unsupported WAL version " + std::to_string(h.version));
  h.page_size = GetBE32(buf + 8);
  if (h.page_size == 1) h.page_size = 65536;  // not used by SQLite for WAL, but harmless
  if (h.page_size < 512 || h.page_size > 65536 || (h.page_size & (h.page_size - 1)) != 0)
    return Status::Corruption("bad WAL page size " + std::to_string(h.page_size));
  h.ckpt_seq = GetBE32(buf + 12);
  h.salt1 = GetBE32(buf + 16);
  h.salt2 = GetBE32(buf + 20);
  h.cksum1 = GetBE32(buf + 24);
  h.cksum2 = GetBE32(buf + 28);
  uint32_t s1 = 0, s2 = 0;
  WalChecksum(h.big_endian_cksum(), buf, 24, &s1, &s2);
  if (s1 != h.cksum1 || s2 != h.cksum2) return Status::Corruption("WAL header checksum mismatch");
  *out = h;
  return Status::OK();
}

WalFrameHeader ParseWalFrameHeader(const unsigned char* b) {
  WalFrameHeader f;
  f.pgno = GetBE32(b);
  f.commit_size = GetBE32(b + 4);
  f.salt1 = GetBE32(b + 8);
  f.salt2 = GetBE32(b + 12);
  f.cksum1 = GetBE32(b + 16);
  f.cksum2 = GetBE32(b + 20);
  return f;
}

bool VerifyWalFrame(const WalHeader& hdr, const unsigned char* frame, uint32_t* s1, uint32_t* s2) {
  WalFrameHeader f = ParseWalFrameHeader(frame);
  if (f.pgno == 0 || f.salt1 != hdr.salt1 || f.salt2 != hdr.salt2) return false;
  uint32_t a = *s1, b = *s2;
  WalChecksum(hdr.big_endian_cksum(), frame, 8, &a, &b);
  WalChecksum(hdr.big_endian_cksum(), frame + kWalFrameHeaderSize, hdr.page_size, &a, &b);
  if (a != f.cksum1 || b != f.cksum2) return false;
  *s1 = a;
  *s2 = b;
  return true;
}

}  // namespace replite
