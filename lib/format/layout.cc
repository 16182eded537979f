#include "format/layout.h"

#include <random>

namespace replite {

std::string Hex16(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; i--, v >>= 4) s[size_t(i)] = kDigits[v & 15];
  return s;
}

uint64_t NewGenerationNumber(int64_t now_ms) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return (static_cast<uint64_t>(now_ms) << 16) | (rng() & 0xffff) | 1;  // never 0
}

std::string NewGenerationId(int64_t now_ms) { return Hex16(NewGenerationNumber(now_ms)); }

static std::string Join(const std::string& prefix, const std::string& rest) {
  return prefix.empty() ? rest : prefix + "/" + rest;
}

std::string ManifestKey(const std::string& prefix) { return Join(prefix, "manifest"); }
std::string GenerationsPrefix(const std::string& prefix) { return Join(prefix, "generations/"); }
std::string GenerationPrefix(const std::string& prefix, const std::string& gen) {
  return GenerationsPrefix(prefix) + gen + "/";
}
std::string SnapshotKey(const std::string& prefix, const std::string& gen, uint64_t txid) {
  return GenerationPrefix(prefix, gen) + "snapshots/" + Hex16(txid) + ".snap";
}
std::string SegmentKey(const std::string& prefix, const std::string& gen, uint64_t first, uint64_t last) {
  return GenerationPrefix(prefix, gen) + "segments/" + Hex16(first) + "-" + Hex16(last) + ".seg";
}

std::string CompactedKey(const std::string& prefix, const std::string& gen, int level, uint64_t first, uint64_t last) {
  return GenerationPrefix(prefix, gen) + "levels/" + std::to_string(level) + "/" + Hex16(first) + "-" + Hex16(last) +
         ".seg";
}

bool ParseHex16(const std::string& s, uint64_t* v) {
  if (s.size() != 16) return false;
  uint64_t r = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return false;
    r = r << 4 | uint64_t(d);
  }
  *v = r;
  return true;
}

bool ParseObjectKey(const std::string& prefix, const ObjectInfo& info, ObjectRef* out) {
  const std::string gp = GenerationsPrefix(prefix);
  if (info.key.compare(0, gp.size(), gp) != 0) return false;
  std::string rest = info.key.substr(gp.size());  // <gen>/snapshots/x.snap
  size_t slash = rest.find('/');
  if (slash != 16) return false;
  out->generation = rest.substr(0, 16);
  uint64_t dummy;
  if (!ParseHex16(out->generation, &dummy)) return false;
  std::string tail = rest.substr(17);
  out->key = info.key;
  out->size = info.size;
  out->mtime_ms = info.mtime_ms;
  if (tail.compare(0, 10, "snapshots/") == 0 && tail.size() == 10 + 16 + 5 && tail.substr(26) == ".snap") {
    out->kind = ObjectRef::kSnapshot;
    if (!ParseHex16(tail.substr(10, 16), &out->first_txid)) return false;
    out->last_txid = out->first_txid;
    return true;
  }
  out->level = 0;
  if (tail.compare(0, 7, "levels/") == 0 && tail.size() == 9 + 33 + 4 && tail[7] >= '1' &&
      tail[7] <= char('0' + kMaxLevel) && tail[8] == '/') {
    out->level = tail[7] - '0';
    tail = "segments/" + tail.substr(9);  // the same <first>-<last>.seg name as a segment
  }
  if (tail.compare(0, 9, "segments/") == 0 && tail.size() == 9 + 33 + 4 && tail[25] == '-' &&
      tail.substr(42) == ".seg") {
    out->kind = ObjectRef::kSegment;
    if (!ParseHex16(tail.substr(9, 16), &out->first_txid) || !ParseHex16(tail.substr(26, 16), &out->last_txid))
      return false;
    return out->first_txid <= out->last_txid;
  }
  return false;
}

}  // namespace replite
