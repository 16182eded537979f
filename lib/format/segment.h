// Segment and snapshot objects (docs/FORMAT.md is the specification).
//
//   header (128 B) | block* | index (64 B per block) | trailer (32 B)
//
// A block holds a 40-byte block header, the page numbers (u32 each) and
// the pages. In a snapshot (and a version 1 segment) each block is one zstd
// frame; in a version 2 segment (kSegFlagStream) the blocks are consecutive
// flushed pieces of one zstd stream, so a page rewritten by many small
// transactions compresses against its earlier versions (3.8x fewer bytes
// for small commits, bench/replica_bytes_bench), and block i decodes only
// after blocks 0..i-1 (BlockStreamDecoder). A segment's blocks carry whole
// transactions in txid order (a large transaction spans several blocks; the
// last block of a transaction has kBlockTxEnd). A snapshot is the same
// family with every block at the snapshot's txid, pages in ascending order.
// Every block is hashed (XXH64 of its compressed bytes) in the index; the
// trailer hashes header + index, so a reader can verify the object with two
// small ranged reads and then stream blocks one at a time.
//
// SegmentBuilder is not thread-safe; decoding functions are stateless.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/zstd_pool.h"
#include "replite/status.h"

namespace replite {

constexpr size_t kSegHeaderSize = 128;
constexpr size_t kSegIndexEntrySize = 64;
constexpr size_t kSegTrailerSize = 32;
constexpr size_t kSegBlockHeaderSize = 40;
constexpr uint32_t kSegVersion = 1;        // snapshots, and segments without kSegFlagStream
constexpr uint32_t kSegVersionStream = 2;  // segments with kSegFlagStream
constexpr uint32_t kMaxPagesPerBlock = 1024;

enum class ObjectKind : uint32_t { kSegment = 1, kSnapshot = 2 };

// Header flags.
constexpr uint32_t kSegFlagZstd = 1;
constexpr uint32_t kSegFlagStream = 2;  // blocks are pieces of one zstd stream (version 2)
// Block flags.
constexpr uint32_t kBlockTxEnd = 1;          // last block of its transaction
constexpr uint32_t kBlockNoChecksum = 2;     // checksum_after not recorded (see FORMAT.md)

struct SegmentHeader {
  ObjectKind kind = ObjectKind::kSegment;
  uint32_t page_size = 0;
  uint64_t first_txid = 0, last_txid = 0;
  int64_t first_ts_ms = 0, last_ts_ms = 0;
  uint64_t checksum_before = 0, checksum_after = 0;
  uint32_t pages_before = 0, pages_after = 0;
  uint32_t block_count = 0;
  uint32_t flags = kSegFlagZstd;
  std::string generation;  // 16 characters
};

struct BlockIndexEntry {
  uint64_t txid = 0;
  int64_t ts_ms = 0;
  uint64_t offset = 0;        // of the compressed block in the object
  uint32_t comp_len = 0;
  uint32_t raw_len = 0;
  uint32_t db_pages = 0;      // database size after the transaction
  uint32_t page_count = 0;
  uint64_t checksum_after = 0;  // database content checksum after the transaction
  uint32_t flags = 0;
  uint32_t first_pgno = 0;
  uint64_t block_hash = 0;    // XXH64 of the compressed bytes
};

struct DecodedBlock {
  uint64_t txid = 0;
  int64_t ts_ms = 0;
  uint32_t db_pages = 0;
  uint32_t flags = 0;
  uint64_t checksum_after = 0;
  std::vector<uint32_t> pgnos;
  std::string pages;  // page_count * page_size bytes
};

// Accumulates blocks and writes the object to a sink (memory or file).
class SegmentSink {
 public:
  virtual ~SegmentSink() = default;
  virtual Status Append(const char* data, size_t n) = 0;
  Status Append(const std::string& data) { return Append(data.data(), data.size()); }
  virtual Status WriteAt(uint64_t offset, const std::string& data) = 0;  // header patch
  virtual uint64_t Size() const = 0;
};

class StringSink final : public SegmentSink {
 public:
  using SegmentSink::Append;
  Status Append(const char* d, size_t n) override;
  Status WriteAt(uint64_t offset, const std::string& d) override;
  uint64_t Size() const override { return buf_.size(); }
  std::string& buffer() { return buf_; }

 private:
  std::string buf_;
};

class SegmentBuilder {
 public:
  // level: zstd compression level. A segment is written as one stream
  // (kSegFlagStream, version 2) unless `stream` is false; a snapshot never
  // is (its blocks stay independently readable).
  SegmentBuilder(SegmentSink* sink, SegmentHeader header, int level = 1, bool stream = true);
  ~SegmentBuilder();
  // Writes the header placeholder. Call once first.
  Status Start();
  // Adds one block. `pages` holds pgnos.size() pages in the same order.
  Status AddBlock(uint64_t txid, int64_t ts_ms, uint32_t db_pages, uint64_t checksum_after, uint32_t flags,
                  const std::vector<uint32_t>& pgnos, const std::string& pages);
  // Writes index and trailer and patches the header with `final_header`'s
  // txid range, timestamps, checksums and sizes.
  Status Finish(const SegmentHeader& final_header);
  uint64_t raw_bytes() const { return raw_bytes_; }

 private:
  SegmentSink* sink_;
  SegmentHeader header_;
  int level_;
  CompressorLease enc_;  // context and output buffer, reused across objects
  bool stream_;
  std::vector<BlockIndexEntry> index_;
  uint64_t raw_bytes_ = 0;
  // Reused from block to block: a fresh multi-MiB buffer per block costs
  // page faults and zero-filling in a large transaction's capture.
  std::string raw_;
};

std::string EncodeSegmentHeader(const SegmentHeader& h);
Status DecodeSegmentHeader(const std::string& bytes, SegmentHeader* out);

struct SegmentTrailer {
  uint64_t index_offset = 0;
  uint32_t block_count = 0;
  uint64_t object_hash = 0;  // XXH64(header || index)
};
Status DecodeSegmentTrailer(const std::string& bytes, SegmentTrailer* out);

// Verifies header+index against the trailer and decodes the index.
// `object_size` is the full object's size, for bounds checks.
Status DecodeSegmentIndex(const std::string& header_bytes, const std::string& index_bytes,
                          const SegmentTrailer& trailer, uint64_t object_size, SegmentHeader* header,
                          std::vector<BlockIndexEntry>* index);

// Verifies the block hash, decompresses and parses one block of an object
// without kSegFlagStream (a stream block does not decompress alone: use
// BlockStreamDecoder).
Status DecodeBlock(const std::string& compressed, const BlockIndexEntry& entry, uint32_t page_size,
                   DecodedBlock* out);

// Decodes the blocks of any object in index order: independent blocks as
// DecodeBlock does, stream blocks (kSegFlagStream) through one zstd
// decompression context whose memory is bounded by the stream's window.
// Blocks must be given in order from 0 (Reset to start over).
class BlockStreamDecoder {
 public:
  explicit BlockStreamDecoder(const SegmentHeader& header);
  ~BlockStreamDecoder();
  BlockStreamDecoder(const BlockStreamDecoder&) = delete;
  BlockStreamDecoder& operator=(const BlockStreamDecoder&) = delete;
  // Decodes block `i` (must equal next()).
  Status Decode(size_t i, const std::string& compressed, const BlockIndexEntry& entry, DecodedBlock* out);
  Status Decode(size_t i, const char* compressed, size_t len, const BlockIndexEntry& entry, DecodedBlock* out);
  size_t next() const { return next_; }
  void Reset();

 private:
  uint32_t page_size_;
  bool stream_;
  std::unique_ptr<DecompressorLease> dec_;  // taken at the first block
  size_t next_ = 0;
  bool broken_ = false;
  std::string raw_;  // the decompressed block, reused
};

// Decodes a whole in-memory object (tests, small segments).
Status DecodeSegment(const std::string& object, SegmentHeader* header, std::vector<DecodedBlock>* blocks);

}  // namespace replite
