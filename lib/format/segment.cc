#include "format/segment.h"

#include <zstd.h>

#include <cstring>

#include "util/coding.h"
#include "util/hash.h"

namespace replite {
namespace {

constexpr char kMagicSegment[8] = {'R', 'P', 'L', 'T', 'S', 'E', 'G', '1'};
constexpr char kMagicSnapshot[8] = {'R', 'P', 'L', 'T', 'S', 'N', 'P', '1'};
constexpr char kMagicTrailer[8] = {'R', 'P', 'L', 'T', 'E', 'N', 'D', '1'};

std::string EncodeIndexEntry(const BlockIndexEntry& e) {
  std::string s;
  PutLE64(&s, e.txid);
  PutLE64(&s, static_cast<uint64_t>(e.ts_ms));
  PutLE64(&s, e.offset);
  PutLE32(&s, e.comp_len);
  PutLE32(&s, e.raw_len);
  PutLE32(&s, e.db_pages);
  PutLE32(&s, e.page_count);
  PutLE64(&s, e.checksum_after);
  PutLE32(&s, e.flags);
  PutLE32(&s, e.first_pgno);
  PutLE64(&s, e.block_hash);
  return s;  // 64 bytes
}

BlockIndexEntry DecodeIndexEntry(const char* p) {
  BlockIndexEntry e;
  e.txid = GetLE64(p);
  e.ts_ms = static_cast<int64_t>(GetLE64(p + 8));
  e.offset = GetLE64(p + 16);
  e.comp_len = GetLE32(p + 24);
  e.raw_len = GetLE32(p + 28);
  e.db_pages = GetLE32(p + 32);
  e.page_count = GetLE32(p + 36);
  e.checksum_after = GetLE64(p + 40);
  e.flags = GetLE32(p + 48);
  e.first_pgno = GetLE32(p + 52);
  e.block_hash = GetLE64(p + 56);
  return e;
}

bool ValidPageSize(uint32_t ps) { return ps >= 512 && ps <= 65536 && (ps & (ps - 1)) == 0; }

}  // namespace

Status StringSink::Append(const char* d, size_t n) {
  buf_.append(d, n);
  return Status::OK();
}
Status StringSink::WriteAt(uint64_t offset, const std::string& d) {
  if (offset + d.size() > buf_.size()) return Status::Internal("patch past end of segment buffer");
  std::memcpy(buf_.data() + offset, d.data(), d.size());
  return Status::OK();
}

std::string EncodeSegmentHeader(const SegmentHeader& h) {
  std::string s(h.kind == ObjectKind::kSnapshot ? kMagicSnapshot : kMagicSegment, 8);
  PutLE32(&s, (h.flags & kSegFlagStream) ? kSegVersionStream : kSegVersion);
  PutLE32(&s, h.page_size);
  PutLE64(&s, h.first_txid);
  PutLE64(&s, h.last_txid);
  PutLE64(&s, static_cast<uint64_t>(h.first_ts_ms));
  PutLE64(&s, static_cast<uint64_t>(h.last_ts_ms));
  PutLE64(&s, h.checksum_before);
  PutLE64(&s, h.checksum_after);
  PutLE32(&s, h.pages_before);
  PutLE32(&s, h.pages_after);
  PutLE32(&s, h.block_count);
  PutLE32(&s, h.flags);
  std::string gen = h.generation;
  gen.resize(16, '\0');
  s += gen;  // offset 80..95
  s.resize(120, '\0');  // reserved: key id and nonce for client-side encryption
  PutLE64(&s, XXH64(s.data(), 120, 0));
  return s;
}

Status DecodeSegmentHeader(const std::string& b, SegmentHeader* out) {
  if (b.size() < kSegHeaderSize) return Status::Corruption("object header truncated");
  SegmentHeader h;
  if (std::memcmp(b.data(), kMagicSegment, 8) == 0) {
    h.kind = ObjectKind::kSegment;
  } else if (std::memcmp(b.data(), kMagicSnapshot, 8) == 0) {
    h.kind = ObjectKind::kSnapshot;
  } else {
    return Status::Corruption("not a replite segment or snapshot (bad magic)");
  }
  if (GetLE64(b.data() + 120) != XXH64(b.data(), 120, 0)) return Status::Corruption("object header checksum mismatch");
  uint32_t version = GetLE32(b.data() + 8);
  if (version != kSegVersion && version != kSegVersionStream)
    return Status::Corruption("unsupported object version " + std::to_string(version) +
                              " (written by a newer replite: restore with that version)");
  h.page_size = GetLE32(b.data() + 12);
  if (!ValidPageSize(h.page_size)) return Status::Corruption("bad page size in object header");
  h.first_txid = GetLE64(b.data() + 16);
  h.last_txid = GetLE64(b.data() + 24);
  h.first_ts_ms = static_cast<int64_t>(GetLE64(b.data() + 32));
  h.last_ts_ms = static_cast<int64_t>(GetLE64(b.data() + 40));
  h.checksum_before = GetLE64(b.data() + 48);
  h.checksum_after = GetLE64(b.data() + 56);
  h.pages_before = GetLE32(b.data() + 64);
  h.pages_after = GetLE32(b.data() + 68);
  h.block_count = GetLE32(b.data() + 72);
  h.flags = GetLE32(b.data() + 76);
  if ((h.flags & ~(kSegFlagZstd | kSegFlagStream)) != 0 || !(h.flags & kSegFlagZstd))
    return Status::Corruption("object header: unknown flags " + std::to_string(h.flags) +
                              " (written by a newer replite: restore with that version)");
  if (((h.flags & kSegFlagStream) != 0) != (version == kSegVersionStream) ||
      ((h.flags & kSegFlagStream) && h.kind != ObjectKind::kSegment))
    return Status::Corruption("object header: version " + std::to_string(version) + " does not match its flags");
  h.generation.assign(b.data() + 80, 16);
  if (size_t z = h.generation.find('\0'); z != std::string::npos) h.generation.resize(z);
  if (h.first_txid > h.last_txid) return Status::Corruption("object header txid range reversed");
  *out = h;
  return Status::OK();
}

SegmentBuilder::SegmentBuilder(SegmentSink* sink, SegmentHeader header, int level, bool stream)
    : sink_(sink), header_(std::move(header)), level_(level) {
  stream_ = stream && header_.kind == ObjectKind::kSegment;
  header_.flags = kSegFlagZstd | (stream_ ? kSegFlagStream : 0);
  if (stream_) ZSTD_CCtx_setParameter(enc_.cctx(), ZSTD_c_compressionLevel, level_);
}

SegmentBuilder::~SegmentBuilder() = default;

Status SegmentBuilder::Start() { return sink_->Append(EncodeSegmentHeader(header_)); }

Status SegmentBuilder::AddBlock(uint64_t txid, int64_t ts_ms, uint32_t db_pages, uint64_t checksum_after,
                                uint32_t flags, const std::vector<uint32_t>& pgnos, const std::string& pages) {
  if (pages.size() != pgnos.size() * size_t(header_.page_size))
    return Status::Internal("segment block: page bytes do not match page count");
  std::string& raw = raw_;
  raw.clear();
  raw.reserve(kSegBlockHeaderSize + pgnos.size() * 4 + pages.size());
  PutLE64(&raw, txid);
  PutLE64(&raw, static_cast<uint64_t>(ts_ms));
  PutLE32(&raw, db_pages);
  PutLE32(&raw, static_cast<uint32_t>(pgnos.size()));
  PutLE64(&raw, checksum_after);
  PutLE32(&raw, flags);
  PutLE32(&raw, 0);
  for (uint32_t p : pgnos) PutLE32(&raw, p);
  raw += pages;
  // The output buffer is the lease's: it keeps its size from object to
  // object and is never zero-filled.
  size_t cap = ZSTD_compressBound(raw.size()) + 64;
  char* comp = enc_.Buffer(cap, 0);
  size_t n = 0;
  if (stream_) {
    // The next piece of the segment's one stream, flushed so that it ends
    // where this block ends.
    ZSTD_inBuffer in{raw.data(), raw.size(), 0};
    for (;;) {
      ZSTD_outBuffer out{comp, cap, n};
      const size_t rem = ZSTD_compressStream2(enc_.cctx(), &out, &in, ZSTD_e_flush);
      if (ZSTD_isError(rem)) return Status::Internal(std::string("zstd: ") + ZSTD_getErrorName(rem));
      n = out.pos;
      if (rem == 0 && in.pos == in.size) break;
      if (cap - n < ZSTD_CStreamOutSize()) {
        cap += ZSTD_CStreamOutSize();
        comp = enc_.Buffer(cap, n);
      }
    }
  } else {
    n = ZSTD_compressCCtx(enc_.cctx(), comp, cap, raw.data(), raw.size(), level_);
    if (ZSTD_isError(n)) return Status::Internal(std::string("zstd: ") + ZSTD_getErrorName(n));
  }
  BlockIndexEntry e;
  e.txid = txid;
  e.ts_ms = ts_ms;
  e.offset = sink_->Size();
  e.comp_len = static_cast<uint32_t>(n);
  e.raw_len = static_cast<uint32_t>(raw.size());
  e.db_pages = db_pages;
  e.page_count = static_cast<uint32_t>(pgnos.size());
  e.checksum_after = checksum_after;
  e.flags = flags;
  e.first_pgno = pgnos.empty() ? 0 : pgnos[0];
  e.block_hash = XXH64(comp, n, 0);
  raw_bytes_ += raw.size();
  Status s = sink_->Append(comp, n);
  if (!s.ok()) return s;
  index_.push_back(e);
  return Status::OK();
}

Status SegmentBuilder::Finish(const SegmentHeader& fh) {
  SegmentHeader h = fh;
  h.kind = header_.kind;
  h.flags = header_.flags;
  h.page_size = header_.page_size;
  h.generation = header_.generation;
  h.block_count = static_cast<uint32_t>(index_.size());
  const std::string hdr = EncodeSegmentHeader(h);
  std::string index;
  for (const auto& e : index_) index += EncodeIndexEntry(e);
  const uint64_t index_offset = sink_->Size();
  XXH64Stream hs(0);
  hs.Update(hdr.data(), hdr.size());
  hs.Update(index.data(), index.size());
  std::string trailer;
  PutLE64(&trailer, index_offset);
  PutLE32(&trailer, h.block_count);
  PutLE32(&trailer, 0);
  PutLE64(&trailer, hs.Digest());
  trailer.append(kMagicTrailer, 8);
  Status s = sink_->Append(index + trailer);
  if (s.ok()) s = sink_->WriteAt(0, hdr);
  return s;
}

Status DecodeSegmentTrailer(const std::string& b, SegmentTrailer* out) {
  if (b.size() < kSegTrailerSize) return Status::Corruption("object trailer truncated");
  const char* p = b.data() + b.size() - kSegTrailerSize;
  if (std::memcmp(p + 24, kMagicTrailer, 8) != 0) return Status::Corruption("object trailer missing (truncated object?)");
  out->index_offset = GetLE64(p);
  out->block_count = GetLE32(p + 8);
  out->object_hash = GetLE64(p + 16);
  return Status::OK();
}

Status DecodeSegmentIndex(const std::string& header_bytes, const std::string& index_bytes,
                          const SegmentTrailer& t, uint64_t object_size, SegmentHeader* header,
                          std::vector<BlockIndexEntry>* index) {
  if (header_bytes.size() != kSegHeaderSize) return Status::Corruption("object header truncated");
  if (uint64_t(t.block_count) * kSegIndexEntrySize != index_bytes.size())
    return Status::Corruption("object index size does not match block count");
  if (t.index_offset < kSegHeaderSize || t.index_offset + index_bytes.size() + kSegTrailerSize != object_size)
    return Status::Corruption("object index offset out of range");
  XXH64Stream hs(0);
  hs.Update(header_bytes.data(), header_bytes.size());
  hs.Update(index_bytes.data(), index_bytes.size());
  if (hs.Digest() != t.object_hash) return Status::Corruption("object checksum mismatch (header or index damaged)");
  Status s = DecodeSegmentHeader(header_bytes, header);
  if (!s.ok()) return s;
  if (header->block_count != t.block_count) return Status::Corruption("object block count mismatch");
  index->clear();
  uint64_t expect_off = kSegHeaderSize;
  for (uint32_t i = 0; i < t.block_count; i++) {
    BlockIndexEntry e = DecodeIndexEntry(index_bytes.data() + i * kSegIndexEntrySize);
    if (e.offset != expect_off || e.offset + e.comp_len > t.index_offset)
      return Status::Corruption("object block " + std::to_string(i) + " out of range");
    if (e.page_count > kMaxPagesPerBlock ||
        e.raw_len != kSegBlockHeaderSize + uint64_t(e.page_count) * (4 + header->page_size))
      return Status::Corruption("object block " + std::to_string(i) + " has inconsistent sizes");
    if (e.txid < header->first_txid || e.txid > header->last_txid)
      return Status::Corruption("object block " + std::to_string(i) + " txid outside the header's range");
    expect_off += e.comp_len;
    index->push_back(e);
  }
  if (expect_off != t.index_offset) return Status::Corruption("object blocks do not end at the index");
  return Status::OK();
}

namespace {

// The checks every block passes before it is decompressed.
Status CheckBlock(const char* comp, size_t n, const BlockIndexEntry& e, uint32_t page_size) {
  if (n != e.comp_len) return Status::Corruption("block truncated");
  // Entries normally come from DecodeSegmentIndex, which checks this; a
  // caller with its own entry must not make us read past the buffer.
  if (e.page_count > kMaxPagesPerBlock || e.raw_len != kSegBlockHeaderSize + uint64_t(e.page_count) * (4 + page_size))
    return Status::Corruption("block sizes are inconsistent");
  if (XXH64(comp, n, 0) != e.block_hash) return Status::Corruption("block checksum mismatch");
  return Status::OK();
}

// Parses a decompressed block and checks it against its index entry.
Status ParseBlock(const char* p, const BlockIndexEntry& e, uint32_t page_size, DecodedBlock* out) {
  out->txid = GetLE64(p);
  out->ts_ms = static_cast<int64_t>(GetLE64(p + 8));
  out->db_pages = GetLE32(p + 16);
  uint32_t count = GetLE32(p + 20);
  out->checksum_after = GetLE64(p + 24);
  out->flags = GetLE32(p + 32);
  if (out->txid != e.txid || count != e.page_count || out->db_pages != e.db_pages || out->flags != e.flags ||
      out->checksum_after != e.checksum_after)
    return Status::Corruption("block header disagrees with the index");
  out->pgnos.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    out->pgnos[i] = GetLE32(p + kSegBlockHeaderSize + 4 * i);
    if (out->pgnos[i] == 0) return Status::Corruption("block holds page number 0");
  }
  out->pages.assign(p + kSegBlockHeaderSize + 4 * size_t(count), size_t(count) * page_size);
  return Status::OK();
}

// DecodeBlock into a buffer the caller keeps (no allocation per block).
Status DecodeBlockInto(const char* comp, size_t len, const BlockIndexEntry& e, uint32_t page_size, ZSTD_DCtx* dctx,
                       std::string* raw, DecodedBlock* out) {
  Status s = CheckBlock(comp, len, e, page_size);
  if (!s.ok()) return s;
  if (raw->size() < e.raw_len) raw->resize(e.raw_len);
  size_t n = ZSTD_decompressDCtx(dctx, raw->data(), e.raw_len, comp, len);
  if (ZSTD_isError(n) || n != e.raw_len) return Status::Corruption("block does not decompress to its recorded size");
  return ParseBlock(raw->data(), e, page_size, out);
}

}  // namespace

Status DecodeBlock(const std::string& comp, const BlockIndexEntry& e, uint32_t page_size, DecodedBlock* out) {
  std::string raw;
  DecompressorLease dec;
  return DecodeBlockInto(comp.data(), comp.size(), e, page_size, dec.dctx(), &raw, out);
}

BlockStreamDecoder::BlockStreamDecoder(const SegmentHeader& h)
    : page_size_(h.page_size), stream_((h.flags & kSegFlagStream) != 0) {}

BlockStreamDecoder::~BlockStreamDecoder() = default;

void BlockStreamDecoder::Reset() {
  next_ = 0;
  broken_ = false;
  if (dec_) ZSTD_DCtx_reset(dec_->dctx(), ZSTD_reset_session_only);
}

Status BlockStreamDecoder::Decode(size_t i, const std::string& comp, const BlockIndexEntry& e, DecodedBlock* out) {
  return Decode(i, comp.data(), comp.size(), e, out);
}

Status BlockStreamDecoder::Decode(size_t i, const char* comp, size_t len, const BlockIndexEntry& e, DecodedBlock* out) {
  if (!stream_) {
    if (!dec_) dec_ = std::make_unique<DecompressorLease>();
    Status s = DecodeBlockInto(comp, len, e, page_size_, dec_->dctx(), &raw_, out);
    if (s.ok()) next_ = i + 1;
    return s;
  }
  if (broken_) return Status::Corruption("block " + std::to_string(i) + " follows a damaged block of the same stream");
  if (i != next_) return Status::Internal("stream block " + std::to_string(i) + " decoded out of order");
  Status s = CheckBlock(comp, len, e, page_size_);
  if (!s.ok()) {
    broken_ = true;
    return s;
  }
  if (!dec_) dec_ = std::make_unique<DecompressorLease>();
  if (raw_.size() < e.raw_len) raw_.resize(e.raw_len);
  ZSTD_inBuffer in{comp, len, 0};
  ZSTD_outBuffer ob{raw_.data(), e.raw_len, 0};
  for (;;) {
    const size_t before_in = in.pos, before_out = ob.pos;
    const size_t r = ZSTD_decompressStream(dec_->dctx(), &ob, &in);
    if (ZSTD_isError(r)) {
      broken_ = true;
      return Status::Corruption(std::string("block does not decompress: ") + ZSTD_getErrorName(r));
    }
    if (in.pos == in.size && ob.pos == ob.size) break;
    if (in.pos == before_in && ob.pos == before_out) break;  // no progress: too little or too much input
  }
  if (in.pos != in.size || ob.pos != ob.size) {
    broken_ = true;
    return Status::Corruption("block does not decompress to its recorded size");
  }
  next_ = i + 1;
  return ParseBlock(raw_.data(), e, page_size_, out);
}

Status DecodeSegment(const std::string& obj, SegmentHeader* header, std::vector<DecodedBlock>* blocks) {
  SegmentTrailer t;
  Status s = DecodeSegmentTrailer(obj, &t);
  if (!s.ok()) return s;
  if (obj.size() < kSegHeaderSize + kSegTrailerSize || t.index_offset > obj.size() - kSegTrailerSize)
    return Status::Corruption("object index offset out of range");
  std::vector<BlockIndexEntry> index;
  s = DecodeSegmentIndex(obj.substr(0, kSegHeaderSize),
                         obj.substr(t.index_offset, obj.size() - kSegTrailerSize - t.index_offset), t, obj.size(),
                         header, &index);
  if (!s.ok()) return s;
  blocks->clear();
  BlockStreamDecoder dec(*header);
  for (size_t i = 0; i < index.size(); i++) {
    const BlockIndexEntry& e = index[i];
    DecodedBlock b;
    s = dec.Decode(i, obj.substr(e.offset, e.comp_len), e, &b);
    if (!s.ok()) return s;
    blocks->push_back(std::move(b));
  }
  return Status::OK();
}

}  // namespace replite
