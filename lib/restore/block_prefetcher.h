// BlockPrefetcher: the blocks a restore wants from one opened object, in
// index order, fetched with ranged GETs (batches of at most kBatchBytes)
// and decoded on up to `threads` threads ahead of the caller, each page
// hashed (PageHash) on the way unless the caller hashes what it keeps, so
// that it can sum the content checksum as it writes instead of reading the
// file back.
//
// Blocks of a stream segment (kSegFlagStream) decode only in order: one
// thread then, which still overlaps fetching and decoding with the
// caller's writes. An object already fetched whole is decoded in the
// caller's thread (threads are for overlap, not worth it for small ones).
//
// Memory: at most threads + 1 batches in flight, whatever the object's
// size. The first error in index order is what Next returns, after the
// blocks before it; the threads stop at the destructor.
//
// Thread-safety: one consumer thread calls Next.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "format/segment.h"
#include "replica/object_reader.h"
#include "util/thread_annotations.h"

namespace replite {

struct ReadyBlock {
  size_t index = 0;             // in the object's block index
  DecodedBlock block;
  std::vector<uint64_t> hashes;  // PageHash of each page of the block
};

class BlockPrefetcher {
 public:
  static constexpr uint64_t kBatchBytes = 4ull << 20;  // compressed bytes per ranged GET

  // Called with each wanted block right after it is decoded and hashed, on
  // the thread that decoded it (blocks of one batch in order, batches
  // concurrently): a caller whose writes do not depend on their order
  // writes the pages there, while they are in that core's cache. Its
  // error is the block's.
  using OnDecoded = std::function<Status(ReadyBlock*)>;

  // `rd` is opened and outlives this. want[i]: block i is needed (others
  // are not fetched, unless a stream needs them decoded on the way).
  // With `hash`, ReadyBlock::hashes holds each page's PageHash (else it is
  // empty: a caller that writes only some pages hashes those).
  BlockPrefetcher(const ObjectReader* rd, const std::vector<bool>& want, int threads, OnDecoded on_decoded = {},
                  bool hash = true);
  ~BlockPrefetcher();
  BlockPrefetcher(const BlockPrefetcher&) = delete;
  BlockPrefetcher& operator=(const BlockPrefetcher&) = delete;

  // The next wanted block; *done at the end (then `out` is untouched).
  Status Next(ReadyBlock* out, bool* done);

 private:
  struct Batch {
    size_t first = 0, end = 0;  // blocks [first, end)
  };
  struct Result {
    Status status;
    std::vector<ReadyBlock> blocks;  // the wanted ones, in order
  };
  // Fetches and decodes batch b with `dec`.
  Result Run(size_t b, BlockStreamDecoder* dec) const;
  void Loop();

  const ObjectReader* rd_;
  std::vector<bool> want_;
  OnDecoded on_decoded_;
  bool hash_;
  std::vector<Batch> batches_;
  size_t window_ = 1;
  std::vector<std::thread> threads_;
  std::unique_ptr<BlockStreamDecoder> inline_dec_;  // no threads: decoded by Next

  Mutex mu_;
  std::condition_variable cv_;
  size_t next_claim_ GUARDED_BY(mu_) = 0;  // next batch a thread takes
  size_t consumed_ GUARDED_BY(mu_) = 0;    // batches Next has taken
  bool stop_ GUARDED_BY(mu_) = false;
  std::map<size_t, Result> ready_ GUARDED_BY(mu_);

  // Next's own: the batch it reads from.
  Result current_;
  size_t pos_ = 0;
  bool have_current_ = false;
};

}  // namespace replite
