// Reads a SQLite WAL file as SQLite's own recovery does (wal.c,
// walIndexRecover), in the spirit of leveldb's log::Reader: the header,
// then frames for as long as each carries the header's salts and continues
// the cumulative checksum chain; the last commit frame before the first
// frame that does not is where the committed WAL ends. Frames after it
// (torn, left over from an older epoch, or of a transaction not yet
// committed) are not part of the WAL.
//
// Memory is bounded whatever the WAL or transaction size: reads go through
// one buffer of at most WalReader::Options::max_read_bytes, and the scan
// keeps 4 bytes (a page number) per committed frame.
//
// Not thread-safe: one reader per capture. It keeps no pointer into the
// file beyond `file`, which must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "replite/status.h"
#include "wal/readable_file.h"
#include "wal/wal_format.h"

namespace replite {

// The running checksum after the WAL header or after some frame.
struct WalChain {
  uint32_t s1 = 0, s2 = 0;
  bool operator==(const WalChain& o) const { return s1 == o.s1 && s2 == o.s2; }
  bool operator!=(const WalChain& o) const { return !(*this == o); }
};

// One committed transaction: frames [first, end) of the epoch, the last of
// them its commit frame.
struct WalTx {
  uint64_t first = 0, end = 0;
  uint32_t db_pages = 0;  // database size in pages after the commit
};

// Why a scan found no further frame.
enum class WalScanEnd {
  kEndOfFile,     // no whole frame left in the file
  kPartialFrame,  // the file ends inside a frame (a torn write)
  kForeignFrame,  // the next frame has other salts or page 0 (an older epoch's)
  kBrokenChain,   // the next frame's checksum does not continue the chain
};

struct WalScan {
  uint64_t start = 0;            // first frame scanned
  std::vector<WalTx> txs;        // complete transactions, in order
  std::vector<uint32_t> pgnos;   // page number of each frame in [start, end)
  uint64_t end = 0;              // frame after the last commit (start if none)
  WalChain chain;                // the chain after frame end - 1
  uint64_t verified_end = 0;     // frame after the last valid one (>= end: an
                                 // uncommitted transaction lies in [end, verified_end))
  WalScanEnd stop = WalScanEnd::kEndOfFile;
  // Frames [buf_first, buf_first + buf_frames) exactly as the scan read and
  // verified them, kept only when they hold all of [start, end) (one read:
  // a small capture), so that WalFrameCursor::UseScan serves their pages
  // without reading them again. Null otherwise.
  std::shared_ptr<const unsigned char[]> buf;
  uint64_t buf_first = 0, buf_frames = 0;
};

class WalReader {
 public:
  struct Options {
    // Largest single read. Reads start at a few frames and double up to
    // this (after a WAL restart the file keeps its old size while a sync
    // usually finds one or two new frames at its front). Default: 1 MiB.
    size_t max_read_bytes = 1u << 20;
  };

  WalReader() = default;
  explicit WalReader(Options o) : opts_(o) {}

  // Reads the size and the header of `file`, which must outlive the reader.
  // A file shorter than a header, or whose header does not verify, holds
  // no frames (SQLite treats it as empty): has_header() is then false. An
  // error only for a failed read.
  Status Open(const ReadableFile* file);

  bool has_header() const { return has_header_; }
  const WalHeader& header() const { return hdr_; }
  uint32_t page_size() const { return hdr_.page_size; }
  uint64_t file_size() const { return size_; }
  const ReadableFile* file() const { return file_; }
  // The chain after the header: where a scan from frame 0 starts.
  WalChain header_chain() const { return {hdr_.cksum1, hdr_.cksum2}; }
  // Whole frames the file (as opened) has room for, valid or not.
  uint64_t FramesInFile() const;

  // Reads the header again from the file (not the one Open read):
  // kCorruption if it is short or does not verify.
  Status ReadHeader(WalHeader* out) const;

  // Collects every complete, verified transaction from frame `start`, whose
  // preceding chain is `chain` (header_chain() for frame 0). Needs
  // has_header().
  // `end_hint` (> start), where the caller expects the committed WAL to end
  // (the wal-index's mxFrame), sizes the reads: up to it, then one frame to
  // find the end, instead of 8 frames at a time from `start` (in a WAL that
  // SQLite reuses after a checkpoint, the frames past the end are an older
  // epoch's: a commit of one page read eight). Only the read sizes depend
  // on it, never the result. The read up to the hint also takes the next
  // frame's header, so that a frame of an older epoch there ends the scan
  // without a read of its own.
  Status ScanCommitted(uint64_t start, WalChain chain, WalScan* out, uint64_t end_hint = 0) const;

  // The header of `frame` (not verified). kUnavailable if the file no
  // longer holds the whole header (it shrank: a restart or truncate).
  Status ReadFrameHeader(uint64_t frame, WalFrameHeader* out) const;

  // Reads the page of `frame` into page[0, page_size), checking that the
  // frame still holds page `pgno` under this epoch's salts: kUnavailable
  // if it was rewritten (a WAL restart since the scan).
  Status ReadPage(uint64_t frame, uint32_t pgno, char* page) const;

 private:
  Options opts_;
  const ReadableFile* file_ = nullptr;
  uint64_t size_ = 0;
  bool has_header_ = false;
  WalHeader hdr_;
};

// The pages of a scanned epoch's frames, read in big sequential reads:
// the encode pass after ScanCommitted asks for frames in ascending order
// and gets them from one buffer of up to WalReader::Options::max_read_bytes
// refilled a chunk at a time, instead of one read per page. A frame before
// the buffer is read again (any order works; ascending is the fast one).
// Frames at or after `end` are never read.
class WalFrameCursor {
 public:
  WalFrameCursor(const WalReader* wal, uint64_t end, size_t max_read_bytes = 1u << 20);
  // The page of `frame` (valid until the next call), checking that the
  // frame still holds page `pgno` under the epoch's salts: kUnavailable if
  // the WAL was rewritten or shrank since the scan (a restart), kInternal
  // for a frame at or past `end`.
  Status Page(uint64_t frame, uint32_t pgno, const char** page);
  // Serves the frames `scan` kept (WalScan::buf) from its buffer instead of
  // reading them again (the scan's reader must be this cursor's).
  void UseScan(const WalScan& scan);

 private:
  const WalReader* wal_;
  std::shared_ptr<const unsigned char[]> scan_buf_;
  uint64_t scan_first_ = 0, scan_count_ = 0;
  uint64_t end_;
  uint64_t chunk_frames_;
  std::unique_ptr<unsigned char[]> buf_;
  uint64_t buf_frames_ = 0;         // buf_'s size in frames
  uint64_t first_ = 0, count_ = 0;  // frames [first_, first_ + count_) are in buf_
};

}  // namespace replite
