#include "restore/block_prefetcher.h"

#include <algorithm>

#include "util/hash.h"

namespace replite {

BlockPrefetcher::BlockPrefetcher(const ObjectReader* rd, const std::vector<bool>& want, int threads,
                                 OnDecoded on_decoded, bool hash)
    : rd_(rd), want_(want), on_decoded_(std::move(on_decoded)), hash_(hash) {
  const std::vector<BlockIndexEntry>& idx = rd->index();
  const bool stream = (rd->header().flags & kSegFlagStream) != 0;
  // A stream decodes from its first block to the last wanted one.
  size_t last = 0;
  for (size_t i = 0; i < idx.size() && i < want_.size(); i++)
    if (want_[i]) last = i + 1;
  for (size_t i = 0; i < last;) {
    if (!stream && !want_[i]) {
      i++;
      continue;
    }
    Batch b{i, i + 1};
    while (b.end < last && (stream || want_[b.end]) &&
           idx[b.end].offset + idx[b.end].comp_len - idx[i].offset <= kBatchBytes)
      b.end++;
    batches_.push_back(b);
    i = b.end;
  }
  if (stream) threads = 1;
  threads = std::max(0, std::min<int>(threads, int(batches_.size())));
  if (rd->whole()) threads = 0;
  if (threads == 0) {
    inline_dec_ = std::make_unique<BlockStreamDecoder>(rd->header());
    return;
  }
  window_ = size_t(threads) + 1;
  for (int t = 0; t < threads; t++) threads_.emplace_back([this] { Loop(); });
}

BlockPrefetcher::~BlockPrefetcher() {
  {
    MutexLock l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

BlockPrefetcher::Result BlockPrefetcher::Run(size_t b, BlockStreamDecoder* dec) const {
  Result r;
  const Batch& bt = batches_[b];
  const std::vector<BlockIndexEntry>& idx = rd_->index();
  const uint64_t off = idx[bt.first].offset;
  std::string bytes;
  r.status = rd_->GetRange(off, idx[bt.end - 1].offset + idx[bt.end - 1].comp_len - off, &bytes);
  if (!r.status.ok()) return r;
  const uint32_t ps = rd_->header().page_size;
  for (size_t i = bt.first; i < bt.end; i++) {
    const BlockIndexEntry& e = idx[i];
    ReadyBlock rb;
    rb.index = i;
    Status s = dec->Decode(i, bytes.data() + (e.offset - off), e.comp_len, e, &rb.block);
    if (!s.ok()) {
      r.status = Status::Corruption("object " + rd_->key() + " block " + std::to_string(i) + ": " + s.message());
      return r;
    }
    if (!want_[i]) continue;  // a stream block decoded on the way
    if (hash_) {
      rb.hashes.resize(rb.block.pgnos.size());
      for (size_t k = 0; k < rb.block.pgnos.size(); k++)
        rb.hashes[k] = PageHash(rb.block.pgnos[k], rb.block.pages.data() + k * ps, ps);
    }
    if (on_decoded_) {
      // Still in this thread's cache: the caller writes it here.
      r.status = on_decoded_(&rb);
      if (!r.status.ok()) return r;
    }
    r.blocks.push_back(std::move(rb));
  }
  return r;
}

void BlockPrefetcher::Loop() {
  BlockStreamDecoder dec(rd_->header());
  for (;;) {
    size_t b;
    {
      MutexLock l(mu_);
      cv_.wait(l.native(), [&]() REQUIRES(mu_) {
        return stop_ || next_claim_ >= batches_.size() || next_claim_ < consumed_ + window_;
      });
      if (stop_ || next_claim_ >= batches_.size()) return;
      b = next_claim_++;
    }
    Result r = Run(b, &dec);
    MutexLock l(mu_);
    const bool failed = !r.status.ok();
    ready_.emplace(b, std::move(r));
    if (failed) next_claim_ = batches_.size();  // nothing after a failure is needed
    cv_.notify_all();
  }
}

Status BlockPrefetcher::Next(ReadyBlock* out, bool* done) {
  *done = false;
  for (;;) {
    if (have_current_ && pos_ < current_.blocks.size()) {
      *out = std::move(current_.blocks[pos_++]);
      return Status::OK();
    }
    // The blocks of a batch before its damaged one come first.
    if (have_current_ && !current_.status.ok()) return current_.status;
    size_t taken;
    {
      MutexLock l(mu_);
      taken = consumed_;
    }
    if (taken >= batches_.size()) {
      *done = true;
      return Status::OK();
    }
    if (inline_dec_) {
      current_ = Run(taken, inline_dec_.get());
      MutexLock l(mu_);
      consumed_++;
    } else {
      MutexLock l(mu_);
      cv_.wait(l.native(), [&]() REQUIRES(mu_) { return ready_.count(consumed_) > 0; });
      auto it = ready_.find(consumed_);
      current_ = std::move(it->second);
      ready_.erase(it);
      consumed_++;
      cv_.notify_all();
    }
    have_current_ = true;
    pos_ = 0;
  }
}

}  // namespace replite
