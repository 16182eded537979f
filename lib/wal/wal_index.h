// Frame indexes of one WAL epoch: which frame holds the latest version of
// each page (WalPageIndex), the frames holding the pages a transaction wrote (TxFinalFrames), and the
// page numbers of an epoch's frames kept between captures (WalFrameIndex).
//
// Value types; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "replite/status.h"
#include "wal/wal_reader.h"

namespace replite {

// Page number -> the latest frame holding it, over the frames added (in
// frame order: a later frame of a page replaces an earlier one).
class WalPageIndex {
 public:
  void Set(uint32_t pgno, uint64_t frame) { frames_[pgno] = frame; }
  // Frames [first, first + n) hold pages pgnos[0, n).
  void AddKnown(uint64_t first, const uint32_t* pgnos, size_t n) {
    for (size_t i = 0; i < n; i++) frames_[pgnos[i]] = first + i;
  }
  // Adds frames [from, to) of `wal` by reading their headers; appends each
  // frame's page number to *pgnos if given. kUnavailable if the WAL shrank.
  Status AddFrames(const WalReader& wal, uint64_t from, uint64_t to, std::vector<uint32_t>* pgnos = nullptr);
  bool Find(uint32_t pgno, uint64_t* frame) const {
    auto it = frames_.find(pgno);
    if (it == frames_.end()) return false;
    *frame = it->second;
    return true;
  }
  size_t size() const { return frames_.size(); }
  void Clear() { frames_.clear(); }

 private:
  std::unordered_map<uint32_t, uint64_t> frames_;
};

// The frames of transaction `tx` of `scan` that hold the last version of
// their page in it, in frame order: a page SQLite wrote more than once in
// one transaction (its cache spilled, then the page changed again) has only
// its last frame here. Reading them in this order is sequential.
void TxFinalFrames(const WalScan& scan, const WalTx& tx, std::vector<uint64_t>* frames);

// Page numbers of the WAL frames of one epoch (frame i holds page
// pgnos[i]), kept by the caller between captures of a hot database so that
// a capture does not re-read every frame header before its position to
// find old page versions. Frames of an epoch never change once committed;
// a restart changes the salts, which invalidates the index.
struct WalFrameIndex {
  static constexpr uint64_t kMaxFrames = 1 << 16;  // larger epochs are not indexed (256 KiB)
  uint32_t salt1 = 0, salt2 = 0;
  std::vector<uint32_t> pgnos;
  void Reset() {
    salt1 = salt2 = 0;
    pgnos.clear();
  }
  // Does it cover frames [0, n) of the epoch with these salts?
  bool Covers(const WalHeader& h, uint64_t n) const {
    return salt1 == h.salt1 && salt2 == h.salt2 && pgnos.size() >= n;
  }
};

}  // namespace replite
