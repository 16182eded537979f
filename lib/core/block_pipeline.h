// BlockPipeline: compresses and writes a segment's blocks on a second
// thread while the capture reads, verifies and hashes the next ones. In a
// large transaction zstd is about half of the capture's CPU; overlapped
// with the rest, a 1 GB transaction is durable sooner (bench/big_txn).
//
// Blocks reach the SegmentBuilder in the order they were added; at most
// kDepth blocks (4 MiB of pages each) wait, so memory stays bounded. The
// thread exists only for a pipeline made `threaded` (captures of more than
// kThreadedBytes of pages) and ends with it: at most one extra thread per
// running sync job.
//
// Not thread-safe: one capture drives a pipeline.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "format/segment.h"
#include "replite/status.h"

namespace replite {

class BlockPipeline {
 public:
  static constexpr size_t kDepth = 2;
  static constexpr uint64_t kThreadedBytes = 32ull << 20;

  BlockPipeline(SegmentBuilder* builder, bool threaded);
  ~BlockPipeline();  // stops the thread; blocks not yet written are dropped
  BlockPipeline(const BlockPipeline&) = delete;
  BlockPipeline& operator=(const BlockPipeline&) = delete;

  // Adds a block (SegmentBuilder::AddBlock's arguments). Takes *pgnos and
  // *pages, leaving them empty (with recycled capacity). An error of an
  // earlier block is returned here or by Drain.
  Status Add(uint64_t txid, int64_t ts_ms, uint32_t db_pages, uint64_t checksum_after, uint32_t flags,
             std::vector<uint32_t>* pgnos, std::string* pages);
  // Waits until every added block is written: the first error, if any.
  Status Drain();

 private:
  struct Block {
    uint64_t txid = 0;
    int64_t ts_ms = 0;
    uint32_t db_pages = 0;
    uint64_t checksum_after = 0;
    uint32_t flags = 0;
    std::vector<uint32_t> pgnos;
    std::string pages;
  };
  void Loop();

  SegmentBuilder* builder_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Block> queue_;          // added, not yet taken by the thread
  std::vector<Block> free_;          // written blocks whose buffers the next Add reuses
  bool busy_ = false;                // the thread is writing a block it took
  bool stop_ = false;
  Status error_;
};

}  // namespace replite
