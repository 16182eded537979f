#include "wal/wal_index.h"

#include <algorithm>
#include <unordered_set>

namespace replite {

Status WalPageIndex::AddFrames(const WalReader& wal, uint64_t from, uint64_t to, std::vector<uint32_t>* pgnos) {
  for (uint64_t f = from; f < to; f++) {
    WalFrameHeader fh;
    Status s = wal.ReadFrameHeader(f, &fh);
    if (!s.ok()) return s;
    frames_[fh.pgno] = f;
    if (pgnos) pgnos->push_back(fh.pgno);
  }
  return Status::OK();
}

void TxFinalFrames(const WalScan& scan, const WalTx& tx, std::vector<uint64_t>* frames) {
  frames->clear();
  std::unordered_set<uint32_t> seen;
  seen.reserve(static_cast<size_t>(tx.end - tx.first));
  for (uint64_t f = tx.end; f-- > tx.first;)
    if (seen.insert(scan.pgnos[f - scan.start]).second) frames->push_back(f);
  std::reverse(frames->begin(), frames->end());
}

}  // namespace replite
