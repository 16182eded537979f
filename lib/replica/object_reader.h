// Reads a segment or snapshot from a store in pieces: header, trailer and
// index with small ranged reads, then blocks in batches of at most a few
// MiB. Memory does not depend on the object's size; each read that fails
// with a retryable error is retried from where it stopped.
//
// Not thread-safe; one reader per object.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "format/segment.h"
#include "replite/sys/object_store.h"

namespace replite {

class ObjectReader {
 public:
  // `base`: where the object starts in `key` (a pack member's offset, 0
  // for an object of its own); offsets below are the object's.
  ObjectReader(ObjectStore* store, std::string key, uint64_t size, uint64_t base = 0)
      : store_(store), key_(std::move(key)), size_(size), base_(base) {}
  // With the whole object already fetched (one GET for small objects).
  ObjectReader(ObjectStore* store, std::string key, std::string whole)
      : store_(store), key_(std::move(key)), size_(whole.size()), whole_(std::move(whole)), has_whole_(true) {}

  // Objects up to this size are fetched with one GET.
  static constexpr uint64_t kWholeObjectBytes = 8ull << 20;
  // Fetches a whole object, retrying retryable errors and resuming short reads.
  static Status FetchWhole(ObjectStore* store, const std::string& key, uint64_t size, std::string* out,
                           uint64_t base = 0);
  // Reads and verifies header, index and trailer.
  Status Open();
  const SegmentHeader& header() const { return header_; }
  const std::vector<BlockIndexEntry>& index() const { return index_; }
  // Decodes block i (reading ahead in batches). Blocks of a stream segment
  // (kSegFlagStream) before i that were not read are decoded on the way;
  // going back starts the stream over.
  Status ReadBlock(size_t i, DecodedBlock* out);
  const std::string& key() const { return key_; }
  bool whole() const { return has_whole_; }
  // Bytes [off, off + len) of the object, retrying retryable errors and
  // resuming short reads. Safe to call from several threads at once (the
  // store is; nothing of the reader changes).
  Status GetRange(uint64_t off, uint64_t len, std::string* out) const;

 private:
  Status DecodeAt(size_t i, DecodedBlock* out);
  ObjectStore* store_;
  std::string key_;
  uint64_t size_;
  uint64_t base_ = 0;
  SegmentHeader header_;
  std::vector<BlockIndexEntry> index_;
  std::unique_ptr<BlockStreamDecoder> decoder_;
  std::string batch_;
  uint64_t batch_off_ = 0;
  std::string whole_;
  bool has_whole_ = false;
};

}  // namespace replite
