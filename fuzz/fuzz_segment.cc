// libFuzzer harness for the segment/snapshot decoder (lib/format/segment.h).
//
// Every input is decoded twice:
//  1. as is, the way restore sees an object from the store: DecodeSegment,
//     and separately the ranged-read path (DecodeSegmentTrailer ->
//     DecodeSegmentIndex -> BlockStreamDecoder per entry, as ObjectReader
//     does).
//     Both paths must agree.
//  2. after "fixing up" the three checksums (header XXH64, each block's hash
//     in the index, the trailer's hash of header+index), so that mutations
//     reach the index bounds checks, zstd and the block parser instead of
//     stopping at the first checksum.
// Invariants for every object that decodes OK:
//  - block count matches the header; every block's txid lies in the header's
//    range; pages.size() == pgnos.size() * page_size; no page number 0;
//    page size a power of two in 512..65536; at most kMaxPagesPerBlock pages;
//  - re-encoding the decoded header and blocks with SegmentBuilder and
//    decoding again gives back the same header and blocks.
#include <zstd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "format/segment.h"
#include "fuzz_check.h"
#include "util/coding.h"
#include "util/hash.h"

using namespace replite;

namespace {

void PutLE64At(std::string* s, size_t off, uint64_t v) {
  for (int i = 0; i < 8; i++) (*s)[off + i] = static_cast<char>(v >> (8 * i));
}

bool SameHeader(const SegmentHeader& a, const SegmentHeader& b) {
  return a.kind == b.kind && a.page_size == b.page_size && a.first_txid == b.first_txid &&
         a.last_txid == b.last_txid && a.first_ts_ms == b.first_ts_ms && a.last_ts_ms == b.last_ts_ms &&
         a.checksum_before == b.checksum_before && a.checksum_after == b.checksum_after &&
         a.pages_before == b.pages_before && a.pages_after == b.pages_after && a.block_count == b.block_count &&
         a.flags == b.flags && a.generation == b.generation;
}

bool SameBlock(const DecodedBlock& a, const DecodedBlock& b) {
  return a.txid == b.txid && a.ts_ms == b.ts_ms && a.db_pages == b.db_pages && a.flags == b.flags &&
         a.checksum_after == b.checksum_after && a.pgnos == b.pgnos && a.pages == b.pages;
}

void CheckDecoded(const SegmentHeader& h, const std::vector<DecodedBlock>& blocks) {
  FUZZ_CHECK(h.page_size >= 512 && h.page_size <= 65536 && (h.page_size & (h.page_size - 1)) == 0,
             "decoded page size is not a power of two in 512..65536");
  FUZZ_CHECK(h.kind == ObjectKind::kSegment || h.kind == ObjectKind::kSnapshot, "unknown object kind");
  FUZZ_CHECK(h.first_txid <= h.last_txid, "header txid range reversed");
  FUZZ_CHECK(h.generation.size() <= 16, "generation longer than 16 bytes");
  FUZZ_CHECK(h.block_count == blocks.size(), "block count differs from the header");
  for (const auto& b : blocks) {
    FUZZ_CHECK(b.txid >= h.first_txid && b.txid <= h.last_txid, "block txid outside the header's range");
    FUZZ_CHECK(b.pgnos.size() <= kMaxPagesPerBlock, "too many pages in a block");
    FUZZ_CHECK(b.pages.size() == b.pgnos.size() * size_t(h.page_size), "page bytes do not match page count");
    for (uint32_t p : b.pgnos) FUZZ_CHECK(p != 0, "page number 0 accepted");
  }
}

// Re-encodes a decoded object and checks it decodes to the same content.
void CheckReencode(const SegmentHeader& h, const std::vector<DecodedBlock>& blocks) {
  StringSink sink;
  SegmentBuilder b(&sink, h, 1, (h.flags & kSegFlagStream) != 0);
  FUZZ_CHECK(b.Start().ok(), "SegmentBuilder::Start failed");
  for (const auto& blk : blocks)
    FUZZ_CHECK(b.AddBlock(blk.txid, blk.ts_ms, blk.db_pages, blk.checksum_after, blk.flags, blk.pgnos, blk.pages)
                   .ok(),
               "SegmentBuilder::AddBlock refused a decoded block");
  FUZZ_CHECK(b.Finish(h).ok(), "SegmentBuilder::Finish failed");
  SegmentHeader h2;
  std::vector<DecodedBlock> blocks2;
  Status s = DecodeSegment(sink.buffer(), &h2, &blocks2);
  if (!s.ok()) std::fprintf(stderr, "re-decode: %s\n", s.ToString().c_str());
  FUZZ_CHECK(s.ok(), "re-encoded object does not decode");
  FUZZ_CHECK(SameHeader(h, h2), "re-encoded header differs");
  FUZZ_CHECK(blocks.size() == blocks2.size(), "re-encoded block count differs");
  for (size_t i = 0; i < blocks.size(); i++) FUZZ_CHECK(SameBlock(blocks[i], blocks2[i]), "re-encoded block differs");
}

// The ranged-read path of ObjectReader::Open/ReadBlock.
Status DecodeRanged(const std::string& obj, SegmentHeader* h, std::vector<DecodedBlock>* blocks) {
  if (obj.size() < kSegHeaderSize + kSegTrailerSize) return Status::Corruption("truncated");
  SegmentTrailer t;
  Status s = DecodeSegmentTrailer(obj.substr(obj.size() - kSegTrailerSize), &t);
  if (!s.ok()) return s;
  if (t.index_offset < kSegHeaderSize || t.index_offset > obj.size() - kSegTrailerSize)
    return Status::Corruption("index offset out of range");
  std::vector<BlockIndexEntry> index;
  s = DecodeSegmentIndex(obj.substr(0, kSegHeaderSize),
                         obj.substr(t.index_offset, obj.size() - kSegTrailerSize - t.index_offset), t, obj.size(), h,
                         &index);
  if (!s.ok()) return s;
  FUZZ_CHECK(index.size() == h->block_count, "index size differs from the header's block count");
  blocks->clear();
  BlockStreamDecoder dec(*h);
  for (size_t i = 0; i < index.size(); i++) {
    const BlockIndexEntry& e = index[i];
    FUZZ_CHECK(e.offset >= kSegHeaderSize && e.offset + e.comp_len <= t.index_offset, "index entry out of bounds");
    FUZZ_CHECK(e.raw_len == kSegBlockHeaderSize + uint64_t(e.page_count) * (4 + h->page_size),
               "index entry raw_len inconsistent");
    DecodedBlock b;
    s = dec.Decode(i, obj.substr(e.offset, e.comp_len), e, &b);
    if (!s.ok()) return s;
    FUZZ_CHECK(b.pgnos.size() == e.page_count, "block page count differs from its index entry");
    blocks->push_back(std::move(b));
  }
  return Status::OK();
}

void DecodeAndCheck(const std::string& obj) {
  SegmentHeader h1, h2;
  std::vector<DecodedBlock> b1, b2;
  Status s1 = DecodeSegment(obj, &h1, &b1);
  Status s2 = DecodeRanged(obj, &h2, &b2);
  if (s1.ok()) FUZZ_CHECK(s1.ok() == s2.ok(), "DecodeSegment accepts what the ranged reader refuses");
  if (s2.ok()) FUZZ_CHECK(s1.ok() == s2.ok(), "the ranged reader accepts what DecodeSegment refuses");
  if (!s1.ok()) {
    FUZZ_CHECK(s1.code() == Code::kCorruption, "decoder error is not kCorruption");
    return;
  }
  FUZZ_CHECK(SameHeader(h1, h2), "the two decode paths disagree on the header");
  FUZZ_CHECK(b1.size() == b2.size(), "the two decode paths disagree on the block count");
  for (size_t i = 0; i < b1.size(); i++) FUZZ_CHECK(SameBlock(b1[i], b2[i]), "the two decode paths disagree on a block");
  CheckDecoded(h1, b1);
  CheckReencode(h1, b1);
}

// Recomputes block hashes, header checksum and trailer hash in place, where
// the structure is intact enough to find them.
void FixChecksums(std::string* obj) {
  if (obj->size() < kSegHeaderSize + kSegTrailerSize) return;
  const size_t tpos = obj->size() - kSegTrailerSize;
  uint64_t index_offset = GetLE64(obj->data() + tpos);
  if (index_offset < kSegHeaderSize || index_offset > tpos) return;
  const uint64_t index_len = tpos - index_offset;
  for (uint64_t p = index_offset; p + kSegIndexEntrySize <= tpos; p += kSegIndexEntrySize) {
    uint64_t off = GetLE64(obj->data() + p + 16);
    uint32_t comp_len = GetLE32(obj->data() + p + 24);
    if (off <= obj->size() && comp_len <= obj->size() - off)
      PutLE64At(obj, p + 56, XXH64(obj->data() + off, comp_len, 0));
  }
  PutLE64At(obj, 120, XXH64(obj->data(), 120, 0));
  XXH64Stream hs(0);
  hs.Update(obj->data(), kSegHeaderSize);
  hs.Update(obj->data() + index_offset, index_len);
  PutLE64At(obj, tpos + 16, hs.Digest());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (4u << 20)) return 0;  // keep executions fast; real blocks are far smaller than this
  std::string obj(reinterpret_cast<const char*>(data), size);
  DecodeAndCheck(obj);
  std::string fixed = obj;
  FixChecksums(&fixed);
  if (fixed != obj) DecodeAndCheck(fixed);
  // A single header on its own (DecodeSegmentHeader): what decodes must
  // encode back to the same 120 significant bytes modulo the reserved area.
  if (size >= kSegHeaderSize) {
    SegmentHeader h;
    std::string head = fixed.substr(0, kSegHeaderSize);
    if (DecodeSegmentHeader(head, &h).ok()) {
      std::string enc = EncodeSegmentHeader(h);
      SegmentHeader h2;
      FUZZ_CHECK(DecodeSegmentHeader(enc, &h2).ok(), "encoded header does not decode");
      FUZZ_CHECK(SameHeader(h, h2), "header does not round-trip");
      FUZZ_CHECK(enc.compare(0, 80, head, 0, 80) == 0, "header fields do not re-encode byte for byte");
    }
  }
#ifdef REPLITE_FUZZ_STRICT
  // KNOWN BUG (reported with issue 6): DecodeBlock trusts entry.raw_len; an
  // entry that DecodeSegmentIndex would refuse (raw_len < 40 + 4 * count)
  // makes it read out of bounds. Unreachable from restore today (entries
  // always come from DecodeSegmentIndex), so only checked in strict mode:
  // the first 64 bytes are an index entry, the rest the compressed block.
  if (size > kSegIndexEntrySize) {
    BlockIndexEntry e;
    e.txid = GetLE64(data);
    e.raw_len = GetLE32(data + 8) % (4u << 20);
    e.page_count = GetLE32(data + 12) % (kMaxPagesPerBlock + 1);
    e.db_pages = GetLE32(data + 16);
    e.flags = GetLE32(data + 20);
    e.checksum_after = GetLE64(data + 24);
    const uint32_t page_size = 512u << (data[32] % 8);
    std::string comp(reinterpret_cast<const char*>(data) + kSegIndexEntrySize, size - kSegIndexEntrySize);
    e.comp_len = static_cast<uint32_t>(comp.size());
    e.block_hash = XXH64(comp.data(), comp.size(), 0);
    DecodedBlock b;
    if (DecodeBlock(comp, e, page_size, &b).ok())
      FUZZ_CHECK(b.pgnos.size() == e.page_count && b.pages.size() == b.pgnos.size() * size_t(page_size),
                 "DecodeBlock returned a block whose pages do not match its page count");
  }
#endif
  return 0;
}
