#include "wal/wal_index.h"

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

void TxPages(const WalScan& scan, const WalTx& tx, std::map<uint32_t, uint64_t>* pages) {
  pages->clear();
  for (uint64_t f = tx.first; f < tx.end; f++) (*pages)[scan.pgnos[f - scan.start]] = f;
}

}  // namespace replite
