#include "core/block_pipeline.h"

#include <utility>

namespace replite {

BlockPipeline::BlockPipeline(SegmentBuilder* builder, bool threaded) : builder_(builder) {
  if (threaded) thread_ = std::thread([this] { Loop(); });
}

BlockPipeline::~BlockPipeline() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Status BlockPipeline::Add(uint64_t txid, int64_t ts_ms, uint32_t db_pages, uint64_t checksum_after, uint32_t flags,
                          std::vector<uint32_t>* pgnos, std::string* pages) {
  if (!thread_.joinable()) {
    if (error_.ok()) error_ = builder_->AddBlock(txid, ts_ms, db_pages, checksum_after, flags, *pgnos, *pages);
    pgnos->clear();
    pages->clear();
    return error_;
  }
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !error_.ok() || queue_.size() < kDepth; });
  if (!error_.ok()) return error_;
  Block b;
  if (!free_.empty()) {
    b = std::move(free_.back());
    free_.pop_back();
  }
  b.txid = txid;
  b.ts_ms = ts_ms;
  b.db_pages = db_pages;
  b.checksum_after = checksum_after;
  b.flags = flags;
  std::swap(b.pgnos, *pgnos);
  std::swap(b.pages, *pages);
  pgnos->clear();
  pages->clear();
  queue_.push_back(std::move(b));
  cv_.notify_all();
  return Status::OK();
}

Status BlockPipeline::Drain() {
  if (!thread_.joinable()) return error_;
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !error_.ok() || (queue_.empty() && !busy_); });
  return error_;
}

void BlockPipeline::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Block b = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    l.unlock();
    Status s = builder_->AddBlock(b.txid, b.ts_ms, b.db_pages, b.checksum_after, b.flags, b.pgnos, b.pages);
    l.lock();
    busy_ = false;
    if (!s.ok() && error_.ok()) error_ = s;
    if (free_.size() < kDepth) free_.push_back(std::move(b));
    cv_.notify_all();
  }
}

}  // namespace replite
