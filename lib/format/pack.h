// Pack objects: the segments of many databases in one object, with an index
// that lets a reader find one database's segments and read only their bytes
// (docs/FORMAT.md, "Packs", is the specification).
//
//   header (64 B) | member segment objects, back to back | index | trailer (32 B)
//
// A member is a complete segment object (format/segment.h) exactly as it
// would be stored under the database's own prefix: its block offsets are
// relative to its own first byte, so a reader reads the range
// [offset, offset + length) of the pack and treats it as the object.
//
// PackBuilder is not thread-safe; decoding functions are stateless.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "replite/status.h"

namespace replite {

constexpr size_t kPackHeaderSize = 64;
constexpr size_t kPackTrailerSize = 32;
constexpr uint32_t kPackVersion = 1;
constexpr size_t kPackMaxNameBytes = 1024;

struct PackMemberEntry {
  std::string name;        // the database's replica name: the last element of its prefix
  std::string generation;  // 16 characters
  uint64_t first_txid = 0, last_txid = 0;
  uint64_t offset = 0, length = 0;  // of the member segment object in the pack
};

struct PackIndex {
  int64_t created_ms = 0;
  std::vector<PackMemberEntry> members;  // in the order they were added
};

class PackBuilder {
 public:
  explicit PackBuilder(int64_t created_ms);
  // Appends one member segment object; fills in its offset and length.
  Status Add(PackMemberEntry entry, const std::string& segment);
  size_t members() const { return index_.members.size(); }
  uint64_t bytes() const { return buf_.size(); }
  // Writes index and trailer; the builder is then empty. *index_offset
  // (if non-null): where the index starts (readers find it in the key).
  std::string Finish(uint64_t* index_offset = nullptr);

 private:
  PackIndex index_;
  std::string buf_;
};

// Decodes the trailer from the last kPackTrailerSize bytes of a pack of
// `pack_size` bytes: where the index starts and how long it is.
Status DecodePackTrailer(const char* trailer, uint64_t pack_size, uint64_t* index_offset, uint64_t* index_len);
// Verifies and decodes the index bytes (the trailer checks them).
Status DecodePackIndex(const std::string& index_bytes, const char* trailer, uint64_t pack_size, PackIndex* out);
// Decodes a whole pack held in memory (header checked too).
Status DecodePack(const std::string& pack, PackIndex* out);

}  // namespace replite
