#include "replica/object_reader.h"

#include <chrono>
#include <thread>

namespace replite {

static constexpr uint64_t kBatchBytes = 8ull << 20;

Status ObjectReader::FetchWhole(ObjectStore* store, const std::string& key, uint64_t size, std::string* out,
                                uint64_t base) {
  ObjectReader r(store, key, size, base);
  return r.GetRange(0, size, out);
}

Status ObjectReader::GetRange(uint64_t off, uint64_t len, std::string* out) const {
  out->clear();
  if (has_whole_) {
    if (off + len > whole_.size())
      return Status::Corruption("object " + key_ + " is truncated (wanted bytes " + std::to_string(off) + ".." +
                                std::to_string(off + len) + " of " + std::to_string(size_) + ")");
    out->assign(whole_, off, len);
    return Status::OK();
  }
  Status s;
  for (int attempt = 0; attempt < 5; attempt++) {
    std::string part;
    s = store_->Get(key_, &part, base_ + off + out->size(), len - out->size());
    if (s.ok()) {
      out->append(part);
      if (out->size() >= len || part.empty()) break;
      continue;  // short read: resume where it stopped
    }
    if (!s.retryable()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
  }
  if (!s.ok()) return s.Annotate("object " + key_ + ": ");
  if (out->size() != len)
    return Status::Corruption("object " + key_ + " is truncated (wanted bytes " + std::to_string(off) + ".." +
                              std::to_string(off + len) + " of " + std::to_string(size_) + ")");
  return Status::OK();
}

Status ObjectReader::Open() {
  if (size_ < kSegHeaderSize + kSegTrailerSize)
    return Status::Corruption("object " + key_ + " is truncated (" + std::to_string(size_) + " bytes)");
  std::string head, tail, index;
  Status s = GetRange(0, kSegHeaderSize, &head);
  if (s.ok()) s = GetRange(size_ - kSegTrailerSize, kSegTrailerSize, &tail);
  if (!s.ok()) return s;
  SegmentTrailer t;
  s = DecodeSegmentTrailer(tail, &t);
  if (s.ok() && (t.index_offset < kSegHeaderSize || t.index_offset > size_ - kSegTrailerSize))
    s = Status::Corruption("index offset out of range");
  if (s.ok()) s = GetRange(t.index_offset, size_ - kSegTrailerSize - t.index_offset, &index);
  if (s.ok()) s = DecodeSegmentIndex(head, index, t, size_, &header_, &index_);
  if (!s.ok()) return s.code() == Code::kCorruption ? Status::Corruption("object " + key_ + ": " + s.message()) : s;
  return Status::OK();
}

Status ObjectReader::ReadBlock(size_t i, DecodedBlock* out) {
  if (i >= index_.size()) return Status::Internal("object " + key_ + ": block " + std::to_string(i) + " past the index");
  if (!decoder_) decoder_ = std::make_unique<BlockStreamDecoder>(header_);
  if (header_.flags & kSegFlagStream) {
    if (i < decoder_->next()) decoder_->Reset();
    DecodedBlock skipped;
    while (decoder_->next() < i) {
      Status s = DecodeAt(decoder_->next(), &skipped);
      if (!s.ok()) return s;
    }
  }
  return DecodeAt(i, out);
}

Status ObjectReader::DecodeAt(size_t i, DecodedBlock* out) {
  const BlockIndexEntry& e = index_[i];
  if (e.offset < batch_off_ || e.offset + e.comp_len > batch_off_ + batch_.size()) {
    // Fetch this block and as many following ones as fit in one batch.
    uint64_t end = e.offset + e.comp_len;
    for (size_t j = i + 1; j < index_.size() && index_[j].offset + index_[j].comp_len - e.offset <= kBatchBytes; j++)
      end = index_[j].offset + index_[j].comp_len;
    Status s = GetRange(e.offset, end - e.offset, &batch_);
    if (!s.ok()) return s;
    batch_off_ = e.offset;
  }
  Status s = decoder_->Decode(i, batch_.substr(e.offset - batch_off_, e.comp_len), e, out);
  if (!s.ok()) return Status::Corruption("object " + key_ + " block " + std::to_string(i) + ": " + s.message());
  return Status::OK();
}

}  // namespace replite
