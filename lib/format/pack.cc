#include "format/pack.h"

#include <cstring>

#include "util/coding.h"
#include "util/hash.h"

namespace replite {
namespace {

constexpr char kMagicPack[8] = {'R', 'P', 'L', 'T', 'P', 'A', 'K', '1'};
constexpr char kMagicPackEnd[8] = {'R', 'P', 'L', 'T', 'P', 'E', 'N', '1'};
constexpr size_t kEntryFixed = 2 + 16 + 4 * 8;  // name length, generation, txids, offset, length

std::string EncodeHeader(int64_t created_ms) {
  std::string h(kMagicPack, 8);
  PutLE32(&h, kPackVersion);
  PutLE32(&h, 0);
  PutLE64(&h, uint64_t(created_ms));
  h.append(32, '\0');
  PutLE64(&h, XXH64(h.data(), h.size(), 0));
  return h;  // 64 bytes
}

}  // namespace

PackBuilder::PackBuilder(int64_t created_ms) {
  index_.created_ms = created_ms;
  buf_ = EncodeHeader(created_ms);
}

Status PackBuilder::Add(PackMemberEntry e, const std::string& segment) {
  if (e.name.empty() || e.name.size() > kPackMaxNameBytes)
    return Status::InvalidArgument("pack member name must be 1.." + std::to_string(kPackMaxNameBytes) + " bytes");
  if (e.generation.size() != 16) return Status::InvalidArgument("pack member generation must be 16 characters");
  e.offset = buf_.size();
  e.length = segment.size();
  buf_ += segment;
  index_.members.push_back(std::move(e));
  return Status::OK();
}

std::string PackBuilder::Finish(uint64_t* index_offset_out) {
  std::string index;
  PutLE32(&index, uint32_t(index_.members.size()));
  for (const auto& m : index_.members) {
    index.push_back(char(m.name.size() & 0xff));
    index.push_back(char(m.name.size() >> 8));
    index += m.generation;
    PutLE64(&index, m.first_txid);
    PutLE64(&index, m.last_txid);
    PutLE64(&index, m.offset);
    PutLE64(&index, m.length);
    index += m.name;
  }
  std::string out = std::move(buf_);
  const uint64_t index_offset = out.size();
  if (index_offset_out) *index_offset_out = index_offset;
  out += index;
  PutLE64(&out, index_offset);
  PutLE32(&out, uint32_t(index.size()));
  PutLE32(&out, uint32_t(index_.members.size()));
  PutLE64(&out, XXH64(index.data(), index.size(), 0));
  out.append(kMagicPackEnd, 8);
  buf_.clear();
  index_.members.clear();
  return out;
}

Status DecodePackTrailer(const char* t, uint64_t pack_size, uint64_t* index_offset, uint64_t* index_len) {
  if (pack_size < kPackHeaderSize + 4 + kPackTrailerSize) return Status::Corruption("pack too short");
  if (std::memcmp(t + 24, kMagicPackEnd, 8) != 0) return Status::Corruption("pack trailer magic missing (truncated?)");
  *index_offset = GetLE64(t);
  *index_len = GetLE32(t + 8);
  if (*index_offset < kPackHeaderSize || *index_offset + *index_len + kPackTrailerSize != pack_size)
    return Status::Corruption("pack trailer: index out of bounds");
  return Status::OK();
}

Status DecodePackIndex(const std::string& ix, const char* t, uint64_t pack_size, PackIndex* out) {
  uint64_t index_offset, index_len;
  Status s = DecodePackTrailer(t, pack_size, &index_offset, &index_len);
  if (!s.ok()) return s;
  if (ix.size() != index_len) return Status::Corruption("pack index: wrong length");
  if (XXH64(ix.data(), ix.size(), 0) != GetLE64(t + 16)) return Status::Corruption("pack index: checksum mismatch");
  const uint32_t count = GetLE32(ix.data());
  if (count != GetLE32(t + 12)) return Status::Corruption("pack index: member count mismatch");
  out->members.clear();
  size_t p = 4;
  for (uint32_t i = 0; i < count; i++) {
    if (p + kEntryFixed > ix.size()) return Status::Corruption("pack index: truncated entry");
    PackMemberEntry e;
    const size_t name_len = uint8_t(ix[p]) | size_t(uint8_t(ix[p + 1])) << 8;
    e.generation.assign(ix.data() + p + 2, 16);
    e.first_txid = GetLE64(ix.data() + p + 18);
    e.last_txid = GetLE64(ix.data() + p + 26);
    e.offset = GetLE64(ix.data() + p + 34);
    e.length = GetLE64(ix.data() + p + 42);
    p += kEntryFixed;
    if (name_len == 0 || name_len > kPackMaxNameBytes || p + name_len > ix.size())
      return Status::Corruption("pack index: bad member name");
    e.name.assign(ix.data() + p, name_len);
    p += name_len;
    if (e.offset < kPackHeaderSize || e.offset + e.length > index_offset || e.first_txid > e.last_txid)
      return Status::Corruption("pack index: member " + e.name + " out of bounds");
    out->members.push_back(std::move(e));
  }
  if (p != ix.size()) return Status::Corruption("pack index: trailing bytes");
  return Status::OK();
}

Status DecodePack(const std::string& pack, PackIndex* out) {
  if (pack.size() < kPackHeaderSize + 4 + kPackTrailerSize) return Status::Corruption("pack too short");
  if (std::memcmp(pack.data(), kMagicPack, 8) != 0) return Status::Corruption("not a pack (magic)");
  if (XXH64(pack.data(), 56, 0) != GetLE64(pack.data() + 56)) return Status::Corruption("pack header: checksum mismatch");
  if (GetLE32(pack.data() + 8) != kPackVersion)
    return Status::Corruption("pack version " + std::to_string(GetLE32(pack.data() + 8)) +
                              " (written by a newer replite?)");
  out->created_ms = int64_t(GetLE64(pack.data() + 16));
  const char* t = pack.data() + pack.size() - kPackTrailerSize;
  uint64_t index_offset, index_len;
  Status s = DecodePackTrailer(t, pack.size(), &index_offset, &index_len);
  if (!s.ok()) return s;
  return DecodePackIndex(pack.substr(index_offset, index_len), t, pack.size(), out);
}

}  // namespace replite
