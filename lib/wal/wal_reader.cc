#include "wal/wal_reader.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

namespace replite {
namespace {

Status NotOpen() { return Status::Internal("WAL reader used before Open"); }

}  // namespace

Status WalReader::Open(const ReadableFile* file) {
  file_ = file;
  size_ = 0;
  has_header_ = false;
  hdr_ = WalHeader();
  Status s = file_->Size(&size_);
  if (!s.ok() || size_ < kWalHeaderSize) return s;
  unsigned char buf[kWalHeaderSize];
  size_t got = 0;
  s = file_->Read(buf, sizeof buf, 0, &got);
  if (!s.ok()) return s;
  has_header_ = got == sizeof buf && ParseWalHeader(buf, got, &hdr_).ok();
  if (!has_header_) hdr_ = WalHeader();
  return Status::OK();
}

uint64_t WalReader::FramesInFile() const {
  if (!has_header_ || size_ < kWalHeaderSize) return 0;
  return (size_ - kWalHeaderSize) / (kWalFrameHeaderSize + hdr_.page_size);
}

Status WalReader::ReadHeader(WalHeader* out) const {
  if (file_ == nullptr) return NotOpen();
  unsigned char buf[kWalHeaderSize];
  size_t got = 0;
  Status s = file_->Read(buf, sizeof buf, 0, &got);
  if (!s.ok()) return s;
  return ParseWalHeader(buf, got, out);
}

Status WalReader::ScanCommitted(uint64_t start, WalChain chain, WalScan* out, uint64_t end_hint) const {
  out->start = start;
  out->txs.clear();
  out->pgnos.clear();
  out->end = start;
  out->chain = chain;
  out->verified_end = start;
  out->stop = WalScanEnd::kEndOfFile;
  out->buf.reset();
  out->buf_first = out->buf_frames = 0;
  if (file_ == nullptr) return NotOpen();
  if (!has_header_) return Status::Internal("WAL " + file_->path() + " scanned without a valid header");
  const uint64_t fsz = kWalFrameHeaderSize + hdr_.page_size;
  // Every quantity below is bounded: a read is at most kChunkFrames frames
  // (`want` doubles up to it and stays there; an uncapped doubling once
  // overflowed to 0 after ~61 MiB and ended a scan silently), and frame
  // offsets are checked against the file size before any read.
  const uint64_t kChunkFrames = std::max<uint64_t>(1, opts_.max_read_bytes / fsz);
  if (end_hint <= start) end_hint = 0;  // no use
  uint64_t want = std::min<uint64_t>(end_hint ? end_hint - start : 8, kChunkFrames);
  std::shared_ptr<unsigned char[]> buf;
  uint64_t buf_frames = 0;
  uint64_t buf_first = start, buf_valid = 0;  // the frames of the last read that verified
  uint64_t frame = start, tx_first = start;
  WalChain c = chain;
  std::vector<uint32_t> pending;  // page numbers of the open transaction
  for (;;) {
    if (frame > (size_ - kWalHeaderSize) / fsz) break;  // start lies past the file
    const uint64_t off = WalFrameOffset(hdr_.page_size, frame);
    const uint64_t whole = (size_ - off) / fsz;
    if (whole == 0) {
      if (size_ > off) out->stop = WalScanEnd::kPartialFrame;
      break;
    }
    uint64_t n = std::min(want, whole);
    if (frame < end_hint) {
      n = std::min(n, end_hint - frame);  // up to the hint, then
    } else if (end_hint != 0) {
      end_hint = 0;  // the frame after it alone (and doubling from there)
      n = want = 1;
    }
    want = std::min(want * 2, kChunkFrames);
    // A read that ends at the hint also takes the header of the frame after
    // it (when the file holds that frame), checked below.
    const bool peek = end_hint != 0 && frame + n == end_hint && whole > n;
    if (n > buf_frames) {
      buf.reset(new unsigned char[n * fsz + kWalFrameHeaderSize]);  // not zeroed: the read fills it
      buf_frames = n;
    }
    size_t got = 0;
    Status s = file_->Read(buf.get(), static_cast<size_t>(n * fsz + (peek ? kWalFrameHeaderSize : 0)), off, &got);
    if (!s.ok()) return s;
    const bool peeked = peek && got == n * fsz + kWalFrameHeaderSize;
    got = std::min<size_t>(got, static_cast<size_t>(n * fsz));
    const uint64_t read = got / fsz;
    buf_first = frame;
    buf_valid = 0;
    if (read == 0) {  // the file shrank under the read
      if (got > 0) out->stop = WalScanEnd::kPartialFrame;
      break;
    }
    bool stop = false;
    for (uint64_t i = 0; i < read; i++) {
      const unsigned char* f = buf.get() + i * fsz;
      const WalFrameHeader fh = ParseWalFrameHeader(f);
      if (fh.pgno == 0 || fh.salt1 != hdr_.salt1 || fh.salt2 != hdr_.salt2) {
        out->stop = WalScanEnd::kForeignFrame;
        stop = true;
        break;
      }
      if (!VerifyWalFrame(hdr_, f, &c.s1, &c.s2)) {
        out->stop = WalScanEnd::kBrokenChain;
        stop = true;
        break;
      }
      pending.push_back(fh.pgno);
      frame++;
      buf_valid++;
      out->verified_end = frame;
      if (fh.commit_size != 0) {
        out->txs.push_back({tx_first, frame, fh.commit_size});
        out->pgnos.insert(out->pgnos.end(), pending.begin(), pending.end());
        pending.clear();
        tx_first = frame;
        out->end = frame;
        out->chain = c;
      }
    }
    if (stop) break;
    if (read < n) {  // the file shrank under the read
      if (got % fsz != 0) out->stop = WalScanEnd::kPartialFrame;
      break;
    }
    if (peeked) {
      // What the next read (of that frame alone) would find first: in a WAL
      // that SQLite reuses after a checkpoint, an older epoch's frame.
      const WalFrameHeader fh = ParseWalFrameHeader(buf.get() + n * fsz);
      if (fh.pgno == 0 || fh.salt1 != hdr_.salt1 || fh.salt2 != hdr_.salt2) {
        out->stop = WalScanEnd::kForeignFrame;
        break;
      }
    }
  }
  if (out->end > start && buf_first <= start && buf_first + buf_valid >= out->end) {
    out->buf = std::move(buf);
    out->buf_first = buf_first;
    out->buf_frames = buf_valid;
  }
  return Status::OK();
}

Status WalReader::ReadFrameHeader(uint64_t frame, WalFrameHeader* out) const {
  if (file_ == nullptr) return NotOpen();
  unsigned char fh[kWalFrameHeaderSize];
  size_t got = 0;
  Status s = file_->Read(fh, sizeof fh, WalFrameOffset(hdr_.page_size, frame), &got);
  if (!s.ok()) return s;
  if (got != sizeof fh) return Status::Unavailable("WAL shrank while reading " + file_->path() + " (will retry)");
  *out = ParseWalFrameHeader(fh);
  return Status::OK();
}

Status WalReader::ReadPage(uint64_t frame, uint32_t pgno, char* page) const {
  if (file_ == nullptr) return NotOpen();
  // On the stack up to 16 KiB pages (one is read per changed page, for the
  // checksum: no allocation each), else on the heap.
  const size_t fsz = kWalFrameHeaderSize + hdr_.page_size;
  char small[kWalFrameHeaderSize + 16384];
  std::unique_ptr<char[]> big(fsz > sizeof small ? new char[fsz] : nullptr);
  char* buf = big ? big.get() : small;
  size_t got = 0;
  Status s = file_->Read(buf, fsz, WalFrameOffset(hdr_.page_size, frame), &got);
  if (!s.ok()) return s;
  const WalFrameHeader fh = ParseWalFrameHeader(reinterpret_cast<const unsigned char*>(buf));
  if (got != fsz || fh.salt1 != hdr_.salt1 || fh.salt2 != hdr_.salt2 || fh.pgno != pgno)
    return Status::Unavailable("WAL " + file_->path() + " was rewritten during capture (will retry)");
  std::memcpy(page, buf + kWalFrameHeaderSize, hdr_.page_size);
  return Status::OK();
}

WalFrameCursor::WalFrameCursor(const WalReader* wal, uint64_t end, size_t max_read_bytes) : wal_(wal), end_(end) {
  const uint64_t fsz = kWalFrameHeaderSize + uint64_t(wal->page_size());
  chunk_frames_ = std::max<uint64_t>(1, max_read_bytes / fsz);
}

void WalFrameCursor::UseScan(const WalScan& scan) {
  scan_buf_ = scan.buf;
  scan_first_ = scan.buf_first;
  scan_count_ = scan_buf_ ? scan.buf_frames : 0;
}

Status WalFrameCursor::Page(uint64_t frame, uint32_t pgno, const char** page) {
  if (wal_->file() == nullptr) return NotOpen();
  if (frame >= end_) return Status::Internal("WAL frame " + std::to_string(frame) + " read past the scanned end");
  const uint64_t fsz = kWalFrameHeaderSize + uint64_t(wal_->page_size());
  const unsigned char* f = nullptr;
  if (frame >= scan_first_ && frame < scan_first_ + scan_count_) {
    f = scan_buf_.get() + (frame - scan_first_) * fsz;  // as the scan verified it
  } else if (frame < first_ || frame >= first_ + count_) {
    const uint64_t n = std::min(chunk_frames_, end_ - frame);
    if (n > buf_frames_) {  // sized to what is read (a one-page commit: one frame), not max_read_bytes
      buf_.reset(new unsigned char[n * fsz]);  // not zeroed: the read fills it
      buf_frames_ = n;
    }
    count_ = 0;
    size_t got = 0;
    Status s = wal_->file()->Read(buf_.get(), static_cast<size_t>(n * fsz), WalFrameOffset(wal_->page_size(), frame),
                                  &got);
    if (!s.ok()) return s;
    if (got != n * fsz)
      return Status::Unavailable("WAL " + wal_->file()->path() + " shrank during capture (will retry)");
    first_ = frame;
    count_ = n;
  }
  if (f == nullptr) f = buf_.get() + (frame - first_) * fsz;
  const WalFrameHeader fh = ParseWalFrameHeader(f);
  const WalHeader& h = wal_->header();
  if (fh.salt1 != h.salt1 || fh.salt2 != h.salt2 || fh.pgno != pgno)
    return Status::Unavailable("WAL " + wal_->file()->path() + " was rewritten during capture (will retry)");
  *page = reinterpret_cast<const char*>(f + kWalFrameHeaderSize);
  return Status::OK();
}

}  // namespace replite
