// libFuzzer harness for the SQLite WAL parser (lib/wal/wal_format.h).
//
// The input is a WAL file. It is scanned twice, the way WAL capture scans:
//  1. as is: ParseWalHeader, then frames with VerifyWalFrame until the first
//     frame that does not verify;
//  2. after fixing up the header checksum, every frame's salts and the
//     checksum chain (what a correct writer produces): then EVERY complete
//     frame with a non-zero page number must verify, in both byte orders.
// Invariants: a header that parses has the WAL magic, version 3007000, a
// power-of-two page size in 512..65536 and a self-consistent checksum; a
// frame that verifies has a non-zero page number and the header's salts, and
// advances the running checksum to exactly the frame's stored checksum;
// a frame that fails leaves the running checksum untouched.
// 3. Both times also through WalReader (lib/wal/wal_reader.h) with a read
//    size taken from the input: it must verify exactly the frames the plain
//    scan verified, report only whole transactions ending in a commit frame,
//    and never read more than its read size at once.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "util/coding.h"
#include "wal/wal_format.h"
#include "wal/wal_reader.h"

using namespace replite;

namespace {

bool ValidPageSize(uint32_t ps) { return ps >= 512 && ps <= 65536 && (ps & (ps - 1)) == 0; }

// Returns the number of frames that verified.
size_t Scan(const unsigned char* d, size_t n) {
  WalHeader h;
  Status s = ParseWalHeader(d, n, &h);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kCorruption, "WAL header error is not kCorruption");
    return 0;
  }
  FUZZ_CHECK(h.magic == kWalMagicLE || h.magic == kWalMagicBE, "parsed header has a bad magic");
  FUZZ_CHECK(h.version == kWalVersion, "parsed header has a bad version");
  FUZZ_CHECK(ValidPageSize(h.page_size), "parsed header has an invalid page size");
  uint32_t c1 = 0, c2 = 0;
  WalChecksum(h.big_endian_cksum(), d, 24, &c1, &c2);
  FUZZ_CHECK(c1 == h.cksum1 && c2 == h.cksum2, "parsed header's checksum does not match its bytes");
  FUZZ_CHECK(h.salt1 == GetBE32(d + 16) && h.salt2 == GetBE32(d + 20), "parsed salts differ from the bytes");

  uint32_t s1 = h.cksum1, s2 = h.cksum2;
  const size_t frame_size = kWalFrameHeaderSize + h.page_size;
  size_t ok_frames = 0;
  for (size_t off = kWalHeaderSize; off + frame_size <= n; off += frame_size) {
    const unsigned char* f = d + off;
    WalFrameHeader fh = ParseWalFrameHeader(f);
    FUZZ_CHECK(fh.pgno == GetBE32(f) && fh.commit_size == GetBE32(f + 4) && fh.salt1 == GetBE32(f + 8) &&
                   fh.salt2 == GetBE32(f + 12) && fh.cksum1 == GetBE32(f + 16) && fh.cksum2 == GetBE32(f + 20),
               "ParseWalFrameHeader does not read the big-endian fields");
    uint32_t a = s1, b = s2;
    if (!VerifyWalFrame(h, f, &a, &b)) {
      FUZZ_CHECK(a == s1 && b == s2, "a frame that failed verification moved the running checksum");
      break;
    }
    FUZZ_CHECK(fh.pgno != 0, "a frame with page number 0 verified");
    FUZZ_CHECK(fh.salt1 == h.salt1 && fh.salt2 == h.salt2, "a frame with foreign salts verified");
    FUZZ_CHECK(a == fh.cksum1 && b == fh.cksum2, "running checksum does not end at the frame's checksum");
    s1 = a;
    s2 = b;
    ok_frames++;
  }
  return ok_frames;
}

// Makes the input a WAL a correct writer could have produced (keeping the
// page size field if valid, the byte order from bit 0 of byte 3).
// Returns how many complete frames precede the first pgno-0 frame.
size_t FixUp(std::vector<unsigned char>* w) {
  if (w->size() < kWalHeaderSize) return 0;
  unsigned char* d = w->data();
  bool be = d[3] & 1;
  PutBE32(d, be ? kWalMagicBE : kWalMagicLE);
  PutBE32(d + 4, kWalVersion);
  uint32_t ps = GetBE32(d + 8);
  if (!ValidPageSize(ps)) {
    ps = 512u << (d[8] % 8);  // 512..65536
    PutBE32(d + 8, ps);
  }
  uint32_t s1 = 0, s2 = 0;
  WalChecksum(be, d, 24, &s1, &s2);
  PutBE32(d + 24, s1);
  PutBE32(d + 28, s2);
  const size_t frame_size = kWalFrameHeaderSize + ps;
  size_t expect = 0;
  bool stopped = false;
  for (size_t off = kWalHeaderSize; off + frame_size <= w->size(); off += frame_size) {
    unsigned char* f = d + off;
    std::memcpy(f + 8, d + 16, 8);  // salts
    WalChecksum(be, f, 8, &s1, &s2);
    WalChecksum(be, f + kWalFrameHeaderSize, ps, &s1, &s2);
    PutBE32(f + 16, s1);
    PutBE32(f + 20, s2);
    if (GetBE32(f) == 0) stopped = true;
    if (!stopped) expect++;
  }
  return expect;
}

// The input as a ReadableFile; records the largest read.
class MemFile : public ReadableFile {
 public:
  MemFile(const unsigned char* d, size_t n) : d_(d), n_(n) {}
  Status Size(uint64_t* size) const override {
    *size = n_;
    return Status::OK();
  }
  Status Read(void* buf, size_t n, uint64_t offset, size_t* got) const override {
    max_read_ = std::max(max_read_, n);
    *got = offset >= n_ ? 0 : static_cast<size_t>(std::min<uint64_t>(n, n_ - offset));
    if (*got) std::memcpy(buf, d_ + offset, *got);
    return Status::OK();
  }
  const std::string& path() const override { return path_; }
  size_t max_read() const { return max_read_; }

 private:
  const unsigned char* d_;
  size_t n_;
  std::string path_ = "fuzz-wal";
  mutable size_t max_read_ = 0;
};

void ReaderAgrees(const unsigned char* d, size_t n, size_t plain_frames) {
  MemFile f(d, n);
  WalReader::Options o;
  o.max_read_bytes = n > 0 ? 1 + (size_t(d[n - 1]) << 10) : 1;  // 1 byte .. 255 KiB
  WalReader r(o);
  FUZZ_CHECK(r.Open(&f).ok(), "WalReader::Open failed on memory");
  WalHeader h;
  FUZZ_CHECK(r.has_header() == ParseWalHeader(d, n, &h).ok(), "WalReader and ParseWalHeader disagree");
  if (!r.has_header()) return;
  WalScan scan;
  FUZZ_CHECK(r.ScanCommitted(0, r.header_chain(), &scan).ok(), "ScanCommitted failed on memory");
  FUZZ_CHECK(scan.verified_end == plain_frames, "WalReader verified other frames than the plain scan");
  FUZZ_CHECK(scan.end <= scan.verified_end && scan.pgnos.size() == scan.end, "scan end or page list is off");
  uint64_t next = 0;
  for (const WalTx& tx : scan.txs) {
    FUZZ_CHECK(tx.first == next && tx.end > tx.first && tx.db_pages != 0, "transactions are not contiguous");
    FUZZ_CHECK(GetBE32(d + WalFrameOffset(h.page_size, tx.end - 1) + 4) == tx.db_pages, "tx without its commit");
    next = tx.end;
  }
  FUZZ_CHECK(next == scan.end, "scan end is not the last commit");
  const size_t frame = kWalFrameHeaderSize + h.page_size;
  FUZZ_CHECK(f.max_read() <= std::max(frame, o.max_read_bytes), "a read exceeded max_read_bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1u << 20)) return 0;
  ReaderAgrees(data, size, Scan(data, size));
  // Short reads: the header parser must never read past n.
  if (size >= 1) {
    std::vector<unsigned char> shorter(data, data + std::min(size - 1, kWalHeaderSize - 1));
    WalHeader h;
    FUZZ_CHECK(!ParseWalHeader(shorter.data(), shorter.size(), &h).ok(), "a truncated WAL header parsed");
  }
  std::vector<unsigned char> w(data, data + size);
  size_t expect = FixUp(&w);
  if (w.size() >= kWalHeaderSize) {
    size_t got = Scan(w.data(), w.size());
    if (got != expect) std::fprintf(stderr, "verified %zu frames, expected %zu\n", got, expect);
    FUZZ_CHECK(got == expect, "a correctly checksummed frame failed to verify");
    ReaderAgrees(w.data(), w.size(), got);
  }
  return 0;
}
